// SPDX-License-Identifier: Apache-2.0
// sip::Call, attended transfer (issue 14; RFC 5589 §7 from the transferor's side, RFC 3891).
// The browser user has two calls bridged to trunk parties, A and B, and from A sends
// REFER with Refer-To: <sip:...?Replaces=<B's browser dialog>> (JsSIP's refer(target,
// {replaces: B}), SIP.js alike). A UA would send the target an INVITE with Replaces; here the
// target is our own call B, so we do what that INVITE would lead to without sending it: A's
// trunk party and B's talk to each other through the gateway (the router joins the two trunk
// legs' media, MediaSdp::join_trunk) and both browser legs end, as with Asterisk's chan_pjsip.
// The browser hears 202, NOTIFY 100 and 200 (message/sipfrag, RFC 3515 §2.4.5), then a BYE on
// each of its two dialogs. The trunk dialogs stay as they are (no re-INVITE: their media address
// does not change); a BYE from either party ends both calls (the router).
// Refusals, before anything changes: a Replaces naming this call 400, an early-only one 403,
// either call in a transfer or re-INVITE 491 (answers to the REFER); a dialog of no call of this
// user (the router never joins another user's call) and the other call on another worker or media
// that cannot be joined are 202 then a final NOTIFY 481 or 503: both calls go on.
#include "call_internal.hpp"
#include "turnbridge/sip/call.hpp"
#include "turnbridge/sip/refer.hpp"

namespace turnbridge::sip {
namespace {

std::string_view why(int status) {
    switch (status) {
        case 400: return "Replaces names this call";
        case 403: return "Forbidden";
        case 491: return "Transfer in progress";
        case 501: return "Attended transfer not supported";
        default: return "Cannot join these calls now";
    }
}

}  // namespace

bool Call::has_browser_dialog(const Replaces& r) const {
    const Leg* b = browser_leg_const();
    if (b == nullptr || !b->dialog || b->dialog->call_id() != r.call_id) return false;
    const auto& local = b->dialog->local_tag();
    const auto& remote = b->dialog->remote_tag();
    return (r.to_tag == local && r.from_tag == remote) || (r.to_tag == remote && r.from_tag == local);
}

bool Call::joinable() const {
    const Leg* b = browser_leg_const();
    const Leg* t = outbound_ ? (uac_.empty() ? nullptr : &uac_.front()) : &uas_;
    const auto confirmed = [](const Leg* l) { return l && l->dialog && l->dialog->state() == Dialog::State::Confirmed; };
    return state_ == State::Confirmed && !joined_ && !transfer_ && !takeover_ && !reinvite_ && confirmed(b) &&
           confirmed(t);
}

void Call::release_browser(Time now, TransactionLayer& layer, std::vector<Action>& out) {
    joined_ = true;
    if (Leg* b = browser_leg()) bye(now, *b, layer, out);
}

void Call::on_attended_refer(Time now, const std::string& tx, const Message& r, Leg& leg, const Replaces& replaces,
                             TransactionLayer& layer, std::vector<Action>& out) {
    const auto answer = [&](int status) {
        layer.respond(now, tx, Message::response(r, status, status == 202 ? std::string_view() : why(status),
                                                 leg.dialog->local_tag()), out);
    };
    if (has_browser_dialog(replaces)) return answer(400);
    if (replaces.early_only) return answer(403);   // RFC 3891 §3: it names an early dialog, never joined
    if (!joinable()) return answer(491);
    const int status = attended_ ? attended_(now, replaces, layer, out) : 501;
    const auto notify = [&](int s) {
        auto m = leg.dialog->make_request("NOTIFY", random_);
        make_refer_notify(m, s, r.cseq());
        other_tx_.push_back(layer.send_request(now, leg.address.transport, leg.address.reliable, std::move(m), out));
    };
    if (status == 481 || status == 503) {
        // What the INVITE with Replaces would have got (RFC 3891 §3: 481 for no matching dialog),
        // reported as the REFER's outcome (RFC 3515 §2.4.5): a 481 to the REFER itself would tell
        // the browser that this call's dialog is gone (JsSIP takes it as a dialog error).
        answer(202);
        return notify(status);
    }
    if (status != 0) return answer(status);
    answer(202);
    joined_ = true;
    // RFC 3515 §2.4.5: the first NOTIFY at once; the join is done, so the final one follows.
    notify(100);
    notify(200);
    bye(now, leg, layer, out);   // the browser's leg of this call ends; the trunk leg is joined
}

}  // namespace turnbridge::sip
