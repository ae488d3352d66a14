// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/call.hpp"

#include <algorithm>

#include "turnbridge/sip/digest.hpp"

namespace turnbridge::sip {
namespace {

// "sip:alice@example.org;x" -> "alice"
std::string user_of(const std::string& uri) {
    const auto colon = uri.find(':');
    const auto at = uri.find('@');
    if (colon == std::string::npos || at == std::string::npos || at < colon) return {};
    return uri.substr(colon + 1, at - colon - 1);
}

Message new_invite(const std::string& ruri, const LocalAddress& local, const std::string& from, const std::string& to,
                   const std::string& sdp, const Random& random) {
    auto r = Message::request("INVITE", ruri);
    auto m = r ? std::move(*r) : std::move(*Message::request("INVITE", "sip:invalid.invalid"));
    m.push_via(local.transport, local.sent_by, new_branch(random));
    m.set_from(from + ";tag=" + new_tag(random));
    m.set_to(to);
    m.set_call_id(local.call_id_prefix + new_call_id(random, "turnbridge"));
    m.set_cseq(1, "INVITE");
    m.add_contact(local.contact);
    m.set_max_forwards(70);
    m.set_body("application/sdp", sdp);
    return m;
}

}  // namespace

Call::Call(Time now, const std::string& browser_tx, const Message& invite, LegAddress browser, LegAddress trunk,
           TrunkAccount account, MediaSdp& media, Random random, TransactionLayer& layer, std::vector<Action>& out)
    : outbound_(true), media_(media), random_(std::move(random)), account_(std::move(account)) {
    uas_.address = std::move(browser);
    uas_.invite_tx = browser_tx;
    uas_invite_.emplace(invite.clone());
    uas_tag_ = new_tag(random_);
    const auto offer = media_.map_offer(true, invite.body());
    if (!offer) {
        answer_uas(now, 488, {}, layer, out);
        return;
    }
    auto user = user_of(invite.to() ? invite.to()->uri : std::string());
    if (user.empty()) user = user_of(invite.request_uri());
    const std::string ruri = account_.scheme + ":" + user + "@" + account_.host + account_.uri_params;
    if (user.empty() || !is_valid_uri(ruri)) {
        answer_uas(now, 404, {}, layer, out);
        return;
    }
    const auto from_user = account_.caller_id.empty() ? user_of(invite.from()->uri) : account_.caller_id;
    Leg leg;
    leg.address = std::move(trunk);
    auto m = new_invite(ruri, leg.address.local, "<sip:" + from_user + "@" + leg.address.local.sent_by + ">",
                        "<" + account_.scheme + ":" + user + "@" + account_.host + ">", *offer, random_);
    // libosip2 cannot write every body it was given (found by tests/fuzz/sip_router.cpp): such an
    // INVITE is refused here rather than sent as nothing, with a copy that is no message at all.
    if (m.serialize().empty()) {
        answer_uas(now, 488, {}, layer, out);
        return;
    }
    uac_.push_back(std::move(leg));
    send_uac_invite(now, uac_.back(), std::move(m), layer, out);
}

Call::Call(Time now, const std::string& trunk_tx, const Message& invite, LegAddress trunk,
           const std::vector<Binding>& bindings, std::string_view callee, std::string_view realm,
           LocalAddress browser_local, MediaSdp& media, Random random, TransactionLayer& layer, std::vector<Action>& out)
    : outbound_(false), media_(media), random_(std::move(random)) {
    uas_.address = std::move(trunk);
    uas_.invite_tx = trunk_tx;
    uas_invite_.emplace(invite.clone());
    uas_tag_ = new_tag(random_);
    if (bindings.empty()) {
        answer_uas(now, 480, {}, layer, out);
        return;
    }
    const auto offer = media_.map_offer(false, invite.body());
    if (!offer) {
        answer_uas(now, 488, {}, layer, out);
        return;
    }
    const auto caller = user_of(invite.from() ? invite.from()->uri : std::string());
    const std::string domain(realm);
    for (const auto& b : bindings) {
        if (!is_valid_uri(b.contact)) continue;
        Leg leg;
        leg.address = LegAddress{b.transport, true, browser_local};
        auto m = new_invite(b.contact, browser_local, "<sip:" + (caller.empty() ? "anonymous" : caller) + "@" + domain + ">",
                            "<sip:" + std::string(callee) + "@" + domain + ">", *offer, random_);
        if (m.serialize().empty()) continue;   // as above: libosip2 cannot write it
        uac_.push_back(std::move(leg));
        send_uac_invite(now, uac_.back(), std::move(m), layer, out);
    }
    if (uac_.empty()) answer_uas(now, 480, {}, layer, out);
}

void Call::send_uac_invite(Time now, Leg& leg, Message invite, TransactionLayer& layer, std::vector<Action>& out) {
    leg.invite.emplace(invite.clone());
    leg.final = 0;
    leg.invite_tx = layer.send_request(now, leg.address.transport, leg.address.reliable, std::move(invite), out);
}

void Call::answer_uas(Time now, int status, std::string_view sdp, TransactionLayer& layer, std::vector<Action>& out) {
    if (uas_.final) return;
    auto r = Message::response(*uas_invite_, status, {}, uas_tag_);
    if (status < 300) r.add_contact(uas_.address.local.contact);
    if (!sdp.empty()) r.set_body("application/sdp", sdp);
    layer.respond(now, uas_.invite_tx, std::move(r), out);
    if (status < 200) {
        if (state_ == State::Calling) state_ = State::Early;
        return;
    }
    uas_.final = final_status_ = status;
    if (status < 300) {
        if (auto d = Dialog::from_uas(*uas_invite_, uas_tag_, uas_.address.local)) {
            uas_.dialog.emplace(std::move(*d));
            uas_.dialog->on_final_sent(status);
        }
        state_ = State::Confirmed;
    } else {
        state_ = State::Ended;
    }
}

Call::Leg* Call::uac_by_tx(const std::string& tx, std::size_t* index) {
    for (std::size_t i = 0; i < uac_.size(); ++i)
        if (uac_[i].invite_tx == tx) {
            if (index) *index = i;
            return &uac_[i];
        }
    return nullptr;
}

bool Call::owns(const std::string& tx) const {
    if (tx.empty()) return false;
    if (tx == uas_.invite_tx) return true;
    for (const auto& l : uac_)
        if (l.invite_tx == tx) return true;
    return std::find(other_tx_.begin(), other_tx_.end(), tx) != other_tx_.end();
}

bool Call::matches(const Message& m) const {
    if (uas_.dialog && uas_.dialog->matches(m)) return true;
    for (const auto& l : uac_)
        if (l.dialog && l.dialog->matches(m)) return true;
    return false;
}

void Call::on_response(Time now, const std::string& tx, const Message& r, TransactionLayer& layer, std::vector<Action>& out) {
    if (reinvite_ && tx == reinvite_->out_tx) {
        if (r.status() >= 200) reinvite_answered(now, r, layer, out);
        return;
    }
    std::size_t i = 0;
    Leg* leg = uac_by_tx(tx, &i);
    if (!leg || r.status() == 100) return;  // BYE answers and the like need nothing
    const int status = r.status();
    if (status < 200) {
        if (!r.to_tag().empty()) {
            if (!leg->dialog) {
                if (auto d = Dialog::from_uac(*leg->invite, r, leg->address.local)) leg->dialog.emplace(std::move(*d));
            } else {
                leg->dialog->on_response(r);
            }
        }
        if (winner_ || state_ == State::Ended) return;
        // 180 once (forks ring together); 183 with SDP is early media and always goes through.
        std::optional<std::string> sdp;
        if (!r.body().empty()) sdp = media_.map_answer(!outbound_, r.body());
        if (sdp) answer_uas(now, status, *sdp, layer, out);
        else if (!provisional_sent_) answer_uas(now, 180, {}, layer, out);
        provisional_sent_ = true;
        return;
    }
    uac_final(now, i, r, layer, out);
}

void Call::uac_final(Time now, std::size_t i, const Message& r, TransactionLayer& layer, std::vector<Action>& out) {
    Leg& leg = uac_[i];
    const int status = r.status();
    leg.final = status;
    if (status < 300) {
        if (!leg.dialog) {
            if (auto d = Dialog::from_uac(*leg.invite, r, leg.address.local)) leg.dialog.emplace(std::move(*d));
        } else {
            leg.dialog->on_response(r);
        }
        if (!leg.dialog) return;
        // RFC 3261 §13.2.2.4: the UAC core ACKs every 2xx itself.
        layer.send_stateless(leg.address.transport, leg.dialog->make_ack(leg.invite->cseq(), random_), out);
        const auto answer = media_.map_answer(!outbound_, r.body());
        if (winner_ || state_ == State::Ended || !answer) {
            // A second fork answering, a call cancelled meanwhile, or SDP we cannot bridge.
            bye(now, leg, layer, out);
            if (!answer && !winner_) answer_uas(now, 488, {}, layer, out);
            return;
        }
        winner_ = i;
        for (auto& other : uac_)  // RFC 3261 §16.7 step 10 behaviour: cancel the losing forks
            if (&other != &leg && other.final == 0) layer.cancel(now, other.invite_tx, out);
        answer_uas(now, 200, *answer, layer, out);
        return;
    }
    if ((status == 401 || status == 407) && outbound_ && !leg.auth_tried && !account_.username.empty()) {
        if (auto a = answer_challenge(r, "INVITE", leg.invite->request_uri(), account_.username, account_.password, random_)) {
            // RFC 3261 §22.2: the same INVITE again, next CSeq, new branch, with credentials.
            auto retry = leg.invite->clone();
            retry.pop_via();
            retry.push_via(leg.address.local.transport, leg.address.local.sent_by, new_branch(random_));
            retry.set_cseq(leg.invite->cseq() + 1, "INVITE");
            retry.add_auth_header(a->header, a->value);
            leg.auth_tried = true;
            send_uac_invite(now, leg, std::move(retry), layer, out);
            return;
        }
    }
    if (std::any_of(uac_.begin(), uac_.end(), [](const Leg& l) { return l.final == 0; }) || winner_) return;
    int mapped = status;
    if (outbound_) {
        if (status < 400) mapped = 480;                          // no redirects through the gateway
        else if (status == 401 || status == 407) mapped = 503;   // the trunk refused our credentials
    } else {
        // Every browser said no: busy if any was busy, declined if one declined, else unavailable.
        mapped = 480;
        for (const auto& l : uac_) {
            if (l.final == 486 || l.final == 600) mapped = 486;
            else if (l.final == 603 && mapped != 486) mapped = 603;
        }
    }
    answer_uas(now, mapped, {}, layer, out);
}

void Call::on_timeout(Time now, const std::string& tx, TransactionLayer& layer, std::vector<Action>& out) {
    std::size_t i = 0;
    if (Leg* leg = uac_by_tx(tx, &i)) {
        // Timer B: no final response in 64*T1. A trunk that never answers is a service that is
        // down: the browser hears 503 within that budget (RFC 3261 §21.5.4; issue 4). A browser
        // that never answers a forked inbound call is a request timeout (408, §16.7 step 6).
        auto fake = Message::response(*leg->invite, outbound_ ? 503 : 408);
        uac_final(now, i, fake, layer, out);
        return;
    }
    if (reinvite_ && tx == reinvite_->out_tx) {
        // No answer to the relayed re-INVITE: the sender hears 408 and, as §12.2.1.2 ends a
        // dialog whose peer timed out, the call ends.
        reinvite_answered(now, Message::response(*reinvite_->in, 408), layer, out);
        hang_up(now, layer, out);
        return;
    }
    if (tx == uas_.invite_tx) hang_up(now, layer, out);  // Timer H/L: the UAS leg never ACKed
}

void Call::on_transport_error(Time now, const std::string& tx, TransactionLayer& layer, std::vector<Action>& out) {
    std::size_t i = 0;
    if (Leg* leg = uac_by_tx(tx, &i)) {
        if (leg->final == 0) uac_final(now, i, Message::response(*leg->invite, 503), layer, out);
        return;
    }
    on_timeout(now, tx, layer, out);
}

void Call::on_cancel(Time now, const std::string& invite_tx, TransactionLayer& layer, std::vector<Action>& out) {
    if (invite_tx != uas_.invite_tx || uas_.final) return;
    answer_uas(now, 487, {}, layer, out);  // RFC 3261 §9.2
    for (auto& l : uac_)
        if (l.final == 0) layer.cancel(now, l.invite_tx, out);
}

void Call::on_request(Time now, const std::string& tx, const Message& r, TransactionLayer& layer, std::vector<Action>& out) {
    const bool from_uas = uas_.dialog && uas_.dialog->matches(r);
    Leg* leg = from_uas ? &uas_ : nullptr;
    for (auto& l : uac_)
        if (!leg && l.dialog && l.dialog->matches(r)) leg = &l;
    if (!leg) {
        if (!tx.empty()) layer.respond(now, tx, Message::response(r, 481, {}, "tb-none"), out);
        return;
    }
    if (auto err = leg->dialog->on_request(r)) {
        if (!tx.empty()) layer.respond(now, tx, Message::response(r, code(err->code), err->what), out);
        return;
    }
    const auto method = r.method();
    if (method == "ACK") return;
    if (method == "BYE") {
        layer.respond(now, tx, Message::response(r, 200), out);
        end_other_side(now, from_uas, layer, out);
        return;
    }
    if (method == "INVITE") return relay_reinvite(now, tx, r, from_uas, layer, out);
    // Deviation: UPDATE is not bridged (JsSIP and trunks use re-INVITE for hold); refusing keeps the dialog.
    layer.respond(now, tx, Message::response(r, method == "UPDATE" ? 501 : 200), out);
}

void Call::relay_reinvite(Time now, const std::string& tx, const Message& r, bool from_uas, TransactionLayer& layer,
                          std::vector<Action>& out) {
    Leg& in = from_uas ? uas_ : uac_[winner_.value_or(0)];
    Leg* to = from_uas ? (winner_ ? &uac_[*winner_] : nullptr) : &uas_;
    // Offerless re-INVITEs would need an offer from the media side; none is asked for yet.
    const auto offer = r.body().empty() ? std::nullopt : media_.map_offer(is_browser(in), r.body());
    if (!to || !to->dialog || state_ != State::Confirmed || reinvite_ || !offer) {
        const int status = reinvite_ ? 491 : 488;
        layer.respond(now, tx, Message::response(r, status), out);
        in.dialog->on_final_sent(status);
        return;
    }
    auto m = to->dialog->make_request("INVITE", random_);
    m.set_body("application/sdp", *offer);
    ReInvite ri{from_uas, tx, "", r.clone(), m.cseq()};
    ri.out_tx = layer.send_request(now, to->address.transport, to->address.reliable, std::move(m), out);
    other_tx_.push_back(ri.out_tx);
    reinvite_.emplace(std::move(ri));
}

void Call::reinvite_answered(Time now, const Message& r, TransactionLayer& layer, std::vector<Action>& out) {
    auto ri = std::move(*reinvite_);
    reinvite_.reset();
    Leg& in = ri.from_uas ? uas_ : uac_[winner_.value_or(0)];
    Leg& to = ri.from_uas ? uac_[winner_.value_or(0)] : uas_;
    to.dialog->on_response(r);
    int status = r.status();
    std::optional<std::string> answer;
    if (status < 300) {
        layer.send_stateless(to.address.transport, to.dialog->make_ack(ri.out_cseq, random_), out);
        answer = media_.map_answer(is_browser(to), r.body());
        if (!answer) status = 488;  // the other leg took it, but we cannot bridge its answer
    }
    auto resp = Message::response(*ri.in, status, {}, in.dialog->local_tag());
    if (answer) {
        resp.add_contact(in.address.local.contact);
        resp.set_body("application/sdp", *answer);
    }
    layer.respond(now, ri.in_tx, std::move(resp), out);
    in.dialog->on_final_sent(status);
}

void Call::bye(Time now, Leg& leg, TransactionLayer& layer, std::vector<Action>& out) {
    // Only answered legs get a BYE; unanswered ones are CANCELled (or were refused).
    if (!leg.dialog || leg.dialog->state() == Dialog::State::Terminated || leg.final < 200 || leg.final >= 300) return;
    other_tx_.push_back(layer.send_request(now, leg.address.transport, leg.address.reliable,
                                           leg.dialog->make_request("BYE", random_), out));
}

void Call::end_other_side(Time now, bool from_uas, TransactionLayer& layer, std::vector<Action>& out) {
    if (from_uas) {
        for (auto& l : uac_) bye(now, l, layer, out);
    } else {
        bye(now, uas_, layer, out);
        for (auto& l : uac_) bye(now, l, layer, out);  // the leg that hung up is Terminated already
    }
    state_ = State::Ended;
}

void Call::hang_up(Time now, TransactionLayer& layer, std::vector<Action>& out) {
    if (!uas_.final) answer_uas(now, 480, {}, layer, out);
    for (auto& l : uac_)
        if (l.final == 0) layer.cancel(now, l.invite_tx, out);
    bye(now, uas_, layer, out);
    for (auto& l : uac_) bye(now, l, layer, out);
    state_ = State::Ended;
}

}  // namespace turnbridge::sip
