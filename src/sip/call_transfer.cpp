// SPDX-License-Identifier: Apache-2.0
// sip::Call's blind transfer (issue 14, RFC 3515). The browser's REFER on a call bridged to a
// trunk goes to the trunk as our REFER, its target in the trunk's number format as
// <sip:NUMBER@trunk-host> or <tel:+E164> (TrunkAccount::refer_to), with Referred-By; the trunk's
// NOTIFYs (message/sipfrag, §2.4.4) come back to the browser as ours, and the BYE the trunk sends
// after a transfer that worked ends the browser's leg as any BYE does.
// A trunk that will not transfer (transfer_falls_back: 403, 405, 501...): we call the target
// ourselves, through the same trunk, with the media session the trunk leg has now; when it
// answers, the old trunk leg gets a BYE and the new one takes its place, so the browser is
// talking to the target (NOTIFY 200). On an inbound call the trunk leg is uas_ (the INVITE we
// answered) and the new one a dialog we start, sent as an outbound call's INVITE would be
// (TrunkRouter: the trunk the number picks, its targets, account and failover; the trunk's
// Contact over the inbound flow only when the router has no reachable target). Once answered
// it takes uas_'s place, because every part of the Call tells the legs apart by that slot
// (in-dialog requests, BYE, session refresh, re-INVITEs), as call_refer_in.cpp swaps a new
// browser in on an outbound call; we are its UAC, which changes
// nothing in-dialog (RFC 3261 §12.2 is symmetric). The old dialog is forgotten once BYEd: its
// crossing BYE gets 481 and ends nothing (§15.1.2). A 503 or 408 first moves our call to the trunk's
// next target, as the call's own INVITE would fail over; a refusal leaves the call as it was (the
// NOTIFY carries it). One transfer at a time per call (491 to another REFER, RFC 3515 §2.4.7
// leaves it to us); each gives up after kTransferWait. A Refer-To with Replaces (attended
// transfer) is call_attended.cpp's.
#include <algorithm>

#include "call_internal.hpp"
#include "turnbridge/sip/call.hpp"
#include "turnbridge/sip/digest.hpp"
#include "turnbridge/sip/refer.hpp"

namespace turnbridge::sip {
namespace {

// "sip:u@host:port;x" -> "host:port"
std::string hostport_of(std::string_view uri) {
    uri = uri.substr(uri.find(':') + 1);
    if (const auto at = uri.find('@'); at != std::string_view::npos) uri = uri.substr(at + 1);
    return std::string(uri.substr(0, uri.find_first_of(";?>")));
}

std::string host_only(std::string_view hostport) {
    if (!hostport.empty() && hostport.front() == '[') return std::string(hostport.substr(0, hostport.find(']') + 1));
    std::string h(hostport.substr(0, hostport.find(':')));
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return h;
}

}  // namespace

void Call::on_refer(Time now, const std::string& tx, const Message& r, Leg& leg, TransactionLayer& layer,
                    std::vector<Action>& out) {
    const auto refuse = [&](int status, std::string_view why) {
        layer.respond(now, tx, Message::response(r, status, why, leg.dialog->local_tag()), out);
    };
    // RFC 3515 §2.4.2 leaves accepting a REFER to policy: we take the browser's on an answered call.
    if (joined_) return refuse(403, "Call already transferred");   // issue 14: call_attended.cpp
    if (!is_browser(leg)) return on_trunk_refer(now, tx, r, layer, out);   // call_refer_in.cpp
    if (state_ != State::Confirmed) return refuse(403, "Call not answered");
    if (transfer_ || takeover_) return refuse(491, "Transfer in progress");
    const auto target = refer_target(r);
    if (!target) return refuse(400, "Bad Refer-To");   // RFC 3515 §2.4.1
    if (target->replaces) return on_attended_refer(now, tx, r, leg, *target->replaces, layer, out);
    // Only a telephone number, named as a tel: URI or in our realm's or the trunk's domain: the
    // gateway is no open relay to other domains.
    if (!target->host.empty() && target->host != domain_ && target->host != host_only(account_.host))
        return refuse(403, "Foreign transfer target");
    const auto digits = phone_digits(target->user);
    if (!digits) return refuse(403, "Transfer target is no number");
    Leg* trunk = trunk_leg();
    if (trunk == nullptr || !trunk->dialog || trunk->dialog->state() != Dialog::State::Confirmed)
        return refuse(481, "No trunk dialog");

    Transfer t;
    t.in_tx = tx;
    t.in.emplace(r.clone());
    t.number = *digits;
    t.give_up = now + kTransferWait;
    auto refer = trunk->dialog->make_request("REFER", random_);
    const auto dialled = trunk_dialled(*digits);
    refer.add_header("Refer-To", account_.refer_to == TrunkAccount::ReferTo::Tel
                                     ? "<tel:" + format_number(*digits, true, account_.plan) + ">"
                                     : "<" + trunk_uri(dialled, hostport_of(trunk->dialog->remote_target())) + ">");
    // RFC 3892: who asked for it, as the trunk knows us in this dialog.
    const auto self = outbound_ ? trunk->invite->from() : uas_invite_->to();
    if (self) refer.add_header("Referred-By", "<" + self->uri + ">");
    refer.add_header("Allow", "INVITE, ACK, CANCEL, BYE, UPDATE, PRACK, OPTIONS, REFER, NOTIFY");
    t.out_tx = layer.send_request(now, trunk->address.transport, trunk->address.reliable, std::move(refer), out);
    other_tx_.push_back(t.out_tx);
    transfer_.emplace(std::move(t));
}

void Call::on_notify(Time now, const std::string& tx, const Message& r, Leg& leg, TransactionLayer& layer,
                     std::vector<Action>& out) {
    const auto respond = [&](int status) {
        layer.respond(now, tx, Message::response(r, status, {}, leg.dialog->local_tag()), out);
    };
    // RFC 6665 §4.1.3: a NOTIFY for no subscription of ours gets 481; RFC 3515 §2.4.4 the refer
    // event only, from the trunk, after it accepted our REFER.
    const auto event = r.header("event");
    if (is_browser(leg) || !transfer_ || !transfer_->answered || transfer_->fallback || !event ||
        !event->starts_with("refer"))
        return respond(481);
    const auto status = sipfrag_status(r.body());
    if (!status) return respond(400);
    respond(200);
    const auto state = r.header("subscription-state");
    const bool terminated = *status >= 200 || (state && state->starts_with("terminated"));
    const int relayed = *status >= 200 || !terminated ? *status : 200;
    // A trunk's NOTIFY storm is not the browser's: each news once, a few per transfer.
    if (!terminated && (relayed == transfer_->last_relayed || transfer_->relayed >= kTransferNotifies)) {
        ++notifies_dropped_;
        return;
    }
    transfer_->last_relayed = relayed;
    ++transfer_->relayed;
    notify_browser(now, relayed, layer, out);
    if (terminated) transfer_.reset();
}

bool Call::transfer_response(Time now, const std::string& tx, const Message& r, TransactionLayer& layer,
                             std::vector<Action>& out) {
    if (tx == transfer_->out_tx) {
        if (r.status() >= 200) refer_answered(now, r, layer, out);
        return true;
    }
    if (transfer_->fallback && tx == transfer_->fallback->invite_tx) {
        fallback_response(now, r, layer, out);
        return true;
    }
    return false;
}

bool Call::transfer_failed(Time now, const std::string& tx, int status, TransactionLayer& layer,
                           std::vector<Action>& out) {
    if (tx == transfer_->out_tx) {
        refer_answered(now, Message::response(*transfer_->in, status), layer, out);
        return true;
    }
    if (transfer_->fallback && tx == transfer_->fallback->invite_tx) {
        fallback_response(now, Message::response(*transfer_->fallback->invite, status), layer, out);
        return true;
    }
    return false;
}

void Call::answer_refer(Time now, int status, TransactionLayer& layer, std::vector<Action>& out) {
    Leg* browser = browser_leg();
    if (transfer_->answered || browser == nullptr || !browser->dialog) return;
    transfer_->answered = true;
    layer.respond(now, transfer_->in_tx, Message::response(*transfer_->in, status, {}, browser->dialog->local_tag()), out);
}

void Call::refer_answered(Time now, const Message& r, TransactionLayer& layer, std::vector<Action>& out) {
    const int status = r.status();
    if (Leg* trunk = trunk_leg(); trunk && trunk->dialog) trunk->dialog->on_response(r);
    transfer_->out_tx.clear();
    if (status < 300) {
        answer_refer(now, 202, layer, out);   // §2.4.2: the trunk's NOTIFYs follow
        return;
    }
    if (transfer_falls_back(status) && state_ == State::Confirmed) {
        answer_refer(now, 202, layer, out);
        notify_browser(now, 100, layer, out);   // §2.4.5: the first NOTIFY comes at once
        start_fallback(now, layer, out);
        return;
    }
    // Refused for a reason a call of ours would not fix (404, 486...): the browser hears why.
    answer_refer(now, status == 408 ? 408 : status == 481 ? 481 : 603, layer, out);
    transfer_.reset();
}

void Call::start_fallback(Time now, TransactionLayer& layer, std::vector<Action>& out) {
    Leg* trunk = trunk_leg();
    auto offer = media_.current_offer(false);
    if (!offer || !trunk || !trunk->dialog || (outbound_ ? !trunk->invite : !uas_invite_)) {
        notify_browser(now, 503, layer, out);
        transfer_.reset();
        return;
    }
    const Leg& old = *trunk;
    Leg leg;
    // Inbound: out as an outbound call goes, through the trunk the router picks for the number
    // (its targets, failover, credentials, number format); a carrier takes calls at its
    // termination targets, not at the address it originates from. None reachable: the trunk's
    // Contact over the flow its INVITE came on, the last resort.
    if (!outbound_ && trunk_router_) transfer_->route = trunk_router_(transfer_->number);
    const TrunkAccount* acc = transfer_->route ? &transfer_->route->account : nullptr;
    const TrunkAccount& account = acc != nullptr ? *acc : account_;
    leg.address = transfer_->route ? transfer_->route->leg : old.address;
    const auto dialled = trunk_dialled(transfer_->number, acc);
    const auto target = trunk_uri(dialled, hostport_of(old.dialog->remote_target()), acc);
    std::string from;
    if (outbound_) {
        // The caller the trunk knows already (our first INVITE's, or an earlier fallback's).
        const auto f = old.invite->from();
        from = "<" + (f ? f->uri : "") + ">";
    } else {
        // Inbound: we call as the number the trunk called (its To, the DID the browser answered),
        // or the account's caller ID, in the trunk's number format (issue 13).
        const auto to = uas_invite_->to();
        const auto user = format_number(account.caller_id.empty() ? user_of(to ? to->uri : "") : account.caller_id,
                                        account.e164_plus, account.plan);
        const bool phone = account.user_phone && is_phone_user(user);
        from = "<sip:" + user + "@" + leg.address.local.sent_by + (phone ? ";user=phone" : "") + ">";
    }
    auto m = new_invite(target + account.uri_params, leg.address.local, from, "<" + target + ">", *offer, random_);
    if (outbound_) {
        for (auto name : {"P-Asserted-Identity", "Remote-Party-ID"})
            if (auto v = old.invite->header(name)) m.add_header(name, *v);
    } else if (account.identity == TrunkAccount::Identity::Pai) {
        m.add_header("P-Asserted-Identity", from);   // RFC 3325 §9.1, as the outbound INVITE has it
    } else if (account.identity == TrunkAccount::Identity::Rpid) {
        m.add_header("Remote-Party-ID", from + ";party=calling;screen=yes;privacy=off");
    }
    add_trunk_headers(m, false);
    if (m.serialize().empty()) {   // libosip2 could not write it (see the constructor)
        notify_browser(now, 503, layer, out);
        transfer_.reset();
        return;
    }
    transfer_->give_up = now + kTransferWait;
    transfer_->fallback.emplace(std::move(leg));
    send_uac_invite(now, *transfer_->fallback, std::move(m), layer, out);
    other_tx_.push_back(transfer_->fallback->invite_tx);
}

void Call::fallback_response(Time now, const Message& r, TransactionLayer& layer, std::vector<Action>& out) {
    Leg& leg = *transfer_->fallback;
    const int status = r.status();
    if (status == 100) return;
    if (status < 200) {
        // RFC 3262 is not offered to the target's early dialog: the fallback INVITE asks nothing
        // of it but the answer. The browser hears that it rings, once.
        if (!transfer_->notified_ringing) notify_browser(now, status == 183 ? 183 : 180, layer, out);
        transfer_->notified_ringing = true;
        return;
    }
    leg.final = status;
    const TrunkAccount* acc = transfer_->route ? &transfer_->route->account : nullptr;
    if ((status == 401 || status == 407) && retry_with_credentials(now, leg, r, layer, out, acc)) {
        other_tx_.push_back(leg.invite_tx);
        return;
    }
    if (fails_over(status) && fallback_next_target(now, leg, layer, out)) return;
    if (status >= 300) {
        notify_browser(now, status, layer, out);   // the browser stays with the party it had
        transfer_.reset();
        return;
    }
    if (auto d = Dialog::from_uac(*leg.invite, r, leg.address.local)) leg.dialog.emplace(std::move(*d));
    if (!leg.dialog) {
        notify_browser(now, 502, layer, out);
        transfer_.reset();
        return;
    }
    layer.send_stateless(leg.address.transport, leg.dialog->make_ack(leg.invite->cseq(), random_), out);
    // The target's answer becomes the trunk leg's session (address, codec): the browser's leg is untouched.
    if (!media_.take_answer(false, r.body())) {
        bye(now, leg, layer, out);
        notify_browser(now, 488, layer, out);
        transfer_.reset();
        return;
    }
    Leg& old = *trunk_leg();
    bye(now, old, layer, out);   // the party the browser transferred away
    if (!outbound_) {
        // The old trunk leg's server transaction may still retransmit; owns() keeps knowing it.
        // Our reliable provisionals were its dialog's (RFC 3262): none is owed on the new one.
        other_tx_.push_back(old.invite_tx);
        rseq_ = 0;
        unacked_.reset();
    }
    old = std::move(leg);
    if (transfer_->route) {
        // The trunk leg is now a call through the routed trunk: its account (credentials for a
        // challenged refresh, the host of a later transfer's REFER and fallback) is the call's.
        TrunkAccount routed = std::move(transfer_->route->account);
        routed.timers = account_.timers;   // the session timer already armed keeps its settings
        account_ = std::move(routed);
    }
    timer_.answered(now, r);   // RFC 4028 §7.2 on the new trunk dialog
    trunk_allows_update_ = r.has_option_tag("allow", "UPDATE");
    trunk_rseq_.reset();
    refresh_tx_.clear();
    transfer_->fallback.reset();
    notify_browser(now, 200, layer, out);
    transfer_.reset();
}

bool Call::fallback_next_target(Time now, Leg& leg, TransactionLayer& layer, std::vector<Action>& out) {
    // As the call's own INVITE fails over (call_failover.cpp, RFC 3263 §4.3): a 503, 408, a
    // failed connection or Timer B moves our call to the target to the trunk's next target (the
    // ones after the target the call is on), same Call-ID and From tag, the next CSeq.
    // Inbound: the routed trunk's other targets (TrunkRoute::next).
    const NextTarget& next = transfer_->route ? transfer_->route->next : next_target_;
    if (!next) return false;
    auto to = next();
    if (!to) return false;
    auto retry = reissue_invite(leg, to->local);
    leg.address = std::move(*to);
    leg.dialog.reset();
    leg.auth_tried = false;
    send_uac_invite(now, leg, std::move(retry), layer, out);
    other_tx_.push_back(leg.invite_tx);
    return true;
}

void Call::notify_browser(Time now, int status, TransactionLayer& layer, std::vector<Action>& out) {
    Leg* browser = browser_leg();
    if (browser == nullptr || !browser->dialog || browser->dialog->state() == Dialog::State::Terminated) return;
    auto m = browser->dialog->make_request("NOTIFY", random_);
    make_refer_notify(m, status, transfer_ && transfer_->in ? transfer_->in->cseq() : 0);
    other_tx_.push_back(layer.send_request(now, browser->address.transport, browser->address.reliable, std::move(m), out));
}

void Call::drop_transfer(Time now, TransactionLayer& layer, std::vector<Action>& out) {
    if (!transfer_) return;
    if (!transfer_->answered) answer_refer(now, 487, layer, out);
    if (auto& f = transfer_->fallback) {
        if (f->final == 0) layer.cancel(now, f->invite_tx, out);
        else bye(now, *f, layer, out);
    }
    transfer_.reset();
}

}  // namespace turnbridge::sip
