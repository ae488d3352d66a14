// SPDX-License-Identifier: Apache-2.0
// sip::Call, transfers the trunk asks for (issue 14).
// A REFER from the trunk (RFC 3515): the trunk is the transferor and we are the referee. The
// "new call" §2.4.4 has us make goes to a user of our realm, so we make it inside the B2BUA:
// the user's browsers ring (forked as for an inbound call, each with an offer for a browser
// that takes the media over, MediaSdp::new_browser_offer), the first to answer becomes the
// browser leg, the old browser gets a BYE, and the trunk's dialog and media stay as they were.
// On an outbound call the browser leg is uas_ (the INVITE we answered) and the trunk's is
// uac_.front(): the answering browser's leg takes uas_'s place, because every part of the Call
// tells the legs apart by that slot (relayed re-INVITEs, BYE, refreshes); we are the UAC of
// the new browser's dialog, which changes nothing in-dialog (RFC 3261 §12.2 is symmetric). The trunk hears how it went in NOTIFYs (message/sipfrag, §2.4.5): 100 at
// once, 180 when a browser rings, then 200 or the failure (486 busy, 603 declined, 480, 408
// after kTransferWait). One transfer at a time per call (491, §2.4.7 leaves it to us).
// An INVITE with Replaces naming the trunk's dialog (RFC 3891 §3: the trunk moving our call to
// a new dialog, as an SBC does when a call is handed to another of its nodes): the new dialog
// becomes the trunk leg, its offer answered by the media side, the old dialog BYEd.
#include <algorithm>

#include "call_internal.hpp"
#include "turnbridge/sip/call.hpp"
#include "turnbridge/sip/refer.hpp"

namespace turnbridge::sip {
namespace {

// What the trunk hears when no browser answered: busy if one was busy (RFC 3261 §21.4.24),
// declined if one declined, a timeout as itself, else unavailable.
int fork_failure(int so_far, int status) {
    if (status == 486 || status == 600 || so_far == 486) return 486;
    if (status == 603 || so_far == 603) return 603;
    if (status == 408 || so_far == 408) return 408;
    return 480;
}

}  // namespace

void Call::on_trunk_refer(Time now, const std::string& tx, const Message& r, TransactionLayer& layer,
                          std::vector<Action>& out) {
    const Leg* trunk = trunk_leg();
    const std::string tag = trunk && trunk->dialog ? trunk->dialog->local_tag() : std::string();
    const auto refuse = [&](int status, std::string_view why) {
        layer.respond(now, tx, Message::response(r, status, why, tag), out);
    };
    if (!refer_lookup_) return refuse(403, "Transfer from the trunk not supported");
    if (state_ != State::Confirmed || !winner_) return refuse(403, "Call not answered");
    if (transfer_ || takeover_) return refuse(491, "Transfer in progress");
    const auto target = refer_target(r);
    if (!target) return refuse(400, "Bad Refer-To");   // RFC 3515 §2.4.1
    if (target->replaces) return refuse(501, "Attended transfer from the trunk not supported");
    auto who = refer_lookup_(*target);
    if (!who) return refuse(403, "Transfer target not in this realm");
    auto offer = media_.new_browser_offer();
    if (!offer) return refuse(503, "Media cannot move now");
    refuse(202, {});   // §2.4.2: accepted; the NOTIFYs tell the rest
    const Leg& old = *browser_leg();
    // The new browser sees the far end as the old one did: the trunk's caller (inbound, the From
    // of our INVITE to the old browser) or the number called (outbound, the To the browser's
    // INVITE had; after an earlier transfer, again the From of our INVITE to that browser).
    const auto old_from = old.invite ? old.invite->from() : uas_invite_ ? uas_invite_->to() : std::nullopt;
    const std::string from = old_from ? "<" + old_from->uri + ">" : std::string(kAnonymousFrom);
    const LocalAddress local = old.address.local;
    const TransportId old_flow = old.address.transport;
    takeover_.emplace(Takeover{r.cseq(), who->user, uac_.size(), false, now + kTransferWait});
    notify_trunk(now, 100, layer, out);   // §2.4.5: the first NOTIFY comes at once
    for (const auto& b : who->bindings) {
        // The browser being transferred away does not ring for its own call.
        if (b.transport == old_flow || !is_valid_uri(b.contact)) continue;
        Leg leg;
        leg.address = LegAddress{b.transport, true, local};
        auto m = new_invite(b.contact, local, from, "<sip:" + who->user + "@" + domain_ + ">", *offer, random_);
        if (m.serialize().empty()) continue;   // libosip2 could not write it (see the constructor)
        uac_.push_back(std::move(leg));
        send_uac_invite(now, uac_.back(), std::move(m), layer, out);
    }
    if (uac_.size() == takeover_->first_fork) end_takeover(now, 480, layer, out);   // no browser to ring
}

bool Call::takeover_response(Time now, const std::string& tx, const Message& r, TransactionLayer& layer,
                             std::vector<Action>& out) {
    std::size_t i = 0;
    if (!uac_by_tx(tx, &i) || i < takeover_->first_fork) return false;
    if (r.status() < 200) {
        if (r.status() > 100 && !takeover_->notified_ringing) notify_trunk(now, 180, layer, out);
        takeover_->notified_ringing = r.status() > 100 || takeover_->notified_ringing;
        return true;
    }
    takeover_answered(now, i, r, layer, out);
    return true;
}

bool Call::takeover_failed(Time now, const std::string& tx, int status, TransactionLayer& layer,
                           std::vector<Action>& out) {
    std::size_t i = 0;
    Leg* leg = uac_by_tx(tx, &i);
    if (!leg || i < takeover_->first_fork || leg->final != 0 || !leg->invite) return false;
    takeover_answered(now, i, Message::response(*leg->invite, status), layer, out);
    return true;
}

void Call::takeover_answered(Time now, std::size_t i, const Message& r, TransactionLayer& layer,
                             std::vector<Action>& out) {
    Leg& leg = uac_[i];
    const int status = r.status();
    leg.final = status;
    const auto pending = [&] {
        for (std::size_t j = takeover_->first_fork; j < uac_.size(); ++j)
            if (uac_[j].final == 0) return true;
        return false;
    };
    if (status >= 300) {
        if (pending()) return;   // another browser of the user may still answer
        int why = 0;
        for (std::size_t j = takeover_->first_fork; j < uac_.size(); ++j) why = fork_failure(why, uac_[j].final);
        end_takeover(now, why, layer, out);   // the call stays with the browser it had
        return;
    }
    if (!leg.dialog) {
        if (auto d = Dialog::from_uac(*leg.invite, r, leg.address.local)) leg.dialog.emplace(std::move(*d));
    } else {
        leg.dialog->on_response(r);
    }
    if (!leg.dialog) return;
    layer.send_stateless(leg.address.transport, leg.dialog->make_ack(leg.invite->cseq(), random_), out);
    if (!media_.take_new_browser(r.body())) {
        bye(now, leg, layer, out);   // an answer we cannot take: that browser is not the one
        if (!pending()) end_takeover(now, 488, layer, out);
        return;
    }
    for (std::size_t j = takeover_->first_fork; j < uac_.size(); ++j)
        if (j != i && uac_[j].final == 0) layer.cancel(now, uac_[j].invite_tx, out);   // RFC 3261 §16.7 step 10
    if (outbound_) {
        // The new browser's leg becomes uas_ (see the top of this file); the old browser's,
        // BYEd, stays in the slot it leaves, one more leg that is not the call's.
        bye(now, uas_, layer, out);
        std::swap(uas_, uac_[i]);
    } else {
        bye(now, uac_[*winner_], layer, out);   // the browser the trunk transferred away
        winner_ = i;
    }
    taken_over_by_ = takeover_->user;
    end_takeover(now, 200, layer, out);
}

void Call::end_takeover(Time now, int status, TransactionLayer& layer, std::vector<Action>& out) {
    notify_trunk(now, status, layer, out);
    takeover_.reset();
}

void Call::notify_trunk(Time now, int status, TransactionLayer& layer, std::vector<Action>& out) {
    Leg* trunk = trunk_leg();
    if (!trunk || !trunk->dialog || trunk->dialog->state() == Dialog::State::Terminated) return;
    auto m = trunk->dialog->make_request("NOTIFY", random_);
    make_refer_notify(m, status, takeover_ ? takeover_->refer_cseq : 0);
    other_tx_.push_back(layer.send_request(now, trunk->address.transport, trunk->address.reliable, std::move(m), out));
}

void Call::drop_takeover(Time now, TransactionLayer& layer, std::vector<Action>& out) {
    if (!takeover_) return;
    for (std::size_t j = takeover_->first_fork; j < uac_.size(); ++j)
        if (uac_[j].final == 0) layer.cancel(now, uac_[j].invite_tx, out);
    takeover_.reset();
}

bool Call::replaces_trunk_dialog(const Message& invite) const {
    const auto v = invite.header("replaces");
    const auto rep = v ? parse_replaces(*v) : std::nullopt;
    const Leg* trunk = outbound_ ? (uac_.empty() ? nullptr : &uac_.front()) : &uas_;
    // RFC 3891 §3: the to-tag names our end of the dialog, the from-tag the peer's; an early-only
    // Replaces does not take a confirmed dialog (486, which the caller answers as no match).
    return rep && !rep->early_only && trunk && trunk->dialog && state_ == State::Confirmed &&
           trunk->dialog->state() == Dialog::State::Confirmed && trunk->dialog->call_id() == rep->call_id &&
           trunk->dialog->local_tag() == rep->to_tag && trunk->dialog->remote_tag() == rep->from_tag;
}

void Call::replace_trunk_dialog(Time now, const std::string& tx, const Message& invite, LegAddress trunk,
                                TransactionLayer& layer, std::vector<Action>& out) {
    Leg& old = *trunk_leg();
    const auto tag = new_tag(random_);
    const auto refuse = [&](int status) { layer.respond(now, tx, Message::response(invite, status, {}, tag), out); };
    // The new dialog's offer is the trunk leg's new session (address, codec): answered here, as
    // a re-INVITE moving the media would be; the browser hears nothing of it.
    const auto a = invite.body().empty() ? MediaSdp::LocalAnswer{MediaSdp::LocalAnswer::Kind::Refused, {}}
                                         : media_.answer_locally(false, invite.body(), true);
    if (a.kind != MediaSdp::LocalAnswer::Kind::Answered) return refuse(488);
    auto d = Dialog::from_uas(invite, tag, trunk.local);
    if (!d) return refuse(400);
    auto resp = Message::response(invite, 200, {}, tag);
    resp.add_contact(trunk.local.contact);
    resp.add_header("Allow", "INVITE, ACK, CANCEL, BYE, UPDATE, PRACK, OPTIONS, REFER, NOTIFY");
    timer_.answer(now, invite, resp);   // RFC 4028 on the new dialog
    resp.set_body("application/sdp", a.sdp);
    layer.respond(now, tx, std::move(resp), out);
    Leg leg;
    leg.address = std::move(trunk);
    leg.invite_tx = tx;
    leg.final = 200;
    leg.dialog.emplace(std::move(*d));
    leg.dialog->on_final_sent(200);
    bye(now, old, layer, out);   // §3: the replaced dialog ends with a BYE
    other_tx_.push_back(old.invite_tx);
    old = std::move(leg);
    trunk_allows_update_ = invite.has_option_tag("allow", "UPDATE");
}

}  // namespace turnbridge::sip
