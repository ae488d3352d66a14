// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/call.hpp"

#include <algorithm>
#include <cstdio>

#include "turnbridge/sip/digest.hpp"
#include "turnbridge/sip/refer.hpp"
#include "call_internal.hpp"

namespace turnbridge::sip {
namespace {

using namespace std::chrono_literals;

// What we do in a dialog toward a trunk (RFC 3261 §20.5); UPDATE per RFC 3311.
constexpr std::string_view kAllow = "INVITE, ACK, CANCEL, BYE, UPDATE, PRACK, OPTIONS";
// RFC 3262 §3: reliable provisionals are retransmitted at T1, doubling, for 64*T1.
constexpr Duration kT1 = std::chrono::milliseconds(500);

bool has_100rel(const Message& m, std::string_view header) {
    return m.has_option_tag(header, "100rel");
}

// "RAck: 1 314 INVITE" (RFC 3262 §7.2) -> {1, 314}; nullopt when malformed or not for an INVITE.
std::optional<std::pair<std::uint32_t, std::uint32_t>> parse_rack(const Message& m) {
    const auto v = m.header("rack");
    if (!v) return std::nullopt;
    unsigned long rseq = 0, cseq = 0;
    char method[16] = {};
    if (std::sscanf(v->c_str(), "%lu %lu %15s", &rseq, &cseq, method) != 3 || std::string_view(method) != "INVITE" ||
        rseq == 0 || rseq > 0xffffffffUL || cseq > 0xffffffffUL)
        return std::nullopt;
    return std::pair{static_cast<std::uint32_t>(rseq), static_cast<std::uint32_t>(cseq)};
}

std::optional<std::uint32_t> parse_rseq(const Message& m) {
    const auto v = m.header("rseq");
    if (!v || v->empty() || v->size() > 10 || v->find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    const auto n = std::stoul(*v);
    if (n == 0 || n > 0xffffffffUL) return std::nullopt;
    return static_cast<std::uint32_t>(n);
}

// "1234#" -> "1234%23": '#' is no unreserved character of a SIP user part (RFC 3261 §25.1).
std::string escape_user(std::string_view user) {
    std::string out;
    for (char c : user) out += c == '#' ? std::string_view("%23") : std::string_view(&c, 1);
    return out;
}

bool allows(const Message& m, std::string_view method) { return m.has_option_tag("allow", method); }

}  // namespace

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
    if (!sdp.empty()) m.set_body("application/sdp", sdp);
    return m;
}

Call::Call(Time now, const std::string& browser_tx, const Message& invite, LegAddress browser, LegAddress trunk,
           TrunkAccount account, MediaSdp& media, Random random, TransactionLayer& layer, std::vector<Action>& out)
    : outbound_(true), media_(media), random_(std::move(random)), account_(std::move(account)),
      timer_(account_.timers) {
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
    // The number format the trunk wants (issue 13): "+" policy, then its tech prefix.
    // RFC 3261 §19.1.1: ";user=phone" after the host of a URI whose user is a number, when asked.
    const auto phone_param = [this](std::string_view u) {
        return std::string(account_.user_phone && is_phone_user(u) ? ";user=phone" : "");
    };
    const std::string dialled = user.empty() ? user : trunk_dialled(user);
    const std::string ruri = trunk_uri(dialled) + account_.uri_params;
    if (const auto target = parse_refer_to(invite.request_uri())) domain_ = target->host;
    if (user.empty() || !is_valid_uri(ruri)) {
        answer_uas(now, 404, {}, layer, out);
        return;
    }
    const auto from_user = format_number(account_.caller_id.empty() ? user_of(invite.from()->uri) : account_.caller_id,
                                         account_.e164_plus, account_.plan);
    Leg leg;
    leg.address = std::move(trunk);
    const std::string caller = "<sip:" + from_user + "@" + leg.address.local.sent_by + phone_param(from_user) + ">";
    // A late offer (RFC 3261 §13.2.1): no SDP now; the browser's offer waits for the trunk's.
    auto m = new_invite(ruri, leg.address.local, caller, "<" + trunk_uri(dialled) + ">",
                        account_.late_offer ? std::string() : *offer, random_);
    // RFC 3325 §9.1 / Remote-Party-ID: the caller asserted to a trunk that trusts us.
    if (account_.identity == TrunkAccount::Identity::Pai) m.add_header("P-Asserted-Identity", caller);
    else if (account_.identity == TrunkAccount::Identity::Rpid)
        m.add_header("Remote-Party-ID", caller + ";party=calling;screen=yes;privacy=off");
    add_trunk_headers(m, false);
    // libosip2 cannot write every body it was given (found by tests/fuzz/sip_router.cpp): such an
    // INVITE is refused here rather than sent as nothing, with a copy that is no message at all.
    if (m.serialize().empty() || (!account_.late_offer && m.body().empty())) {
        answer_uas(now, 488, {}, layer, out);
        return;
    }
    uac_.push_back(std::move(leg));
    send_uac_invite(now, uac_.back(), std::move(m), layer, out);
}

Call::Call(Time now, const std::string& trunk_tx, const Message& invite, LegAddress trunk, TrunkAccount account,
           const std::vector<Binding>& bindings, std::string_view callee, std::string_view realm,
           LocalAddress browser_local, MediaSdp& media, Random random, TransactionLayer& layer, std::vector<Action>& out)
    : outbound_(false), media_(media), random_(std::move(random)), account_(std::move(account)), timer_(account_.timers),
      domain_(realm) {
    uas_.address = std::move(trunk);
    uas_.invite_tx = trunk_tx;
    uas_invite_.emplace(invite.clone());
    uas_tag_ = new_tag(random_);
    trunk_allows_update_ = allows(invite, "UPDATE");
    if (has_100rel(invite, "require") && !account_.rel100) {
        // RFC 3261 §8.2.2.3: an extension we do not do (this realm turned 100rel off).
        auto r = Message::response(invite, 420, {}, uas_tag_);
        r.add_header("Unsupported", "100rel");
        layer.respond(now, trunk_tx, std::move(r), out);
        uas_.final = final_status_ = 420;
        state_ = State::Ended;
        return;
    }
    uas_reliable_ = account_.rel100 && (has_100rel(invite, "require") || has_100rel(invite, "supported"));
    if (timer_.too_small(invite)) {
        answer_uas(now, 422, {}, layer, out);   // RFC 4028 §8.1: Session Interval Too Small
        return;
    }
    if (bindings.empty()) {
        answer_uas(now, 480, {}, layer, out);
        return;
    }
    // A late offer (no SDP, RFC 3261 §13.2.1): the media side offers the browser our own session;
    // the trunk gets our offer in the 200 and answers in the ACK.
    const auto offer = media_.map_offer(false, invite.body());
    if (!offer) {
        answer_uas(now, 488, {}, layer, out);
        return;
    }
    uas_.answer_in_ack = invite.body().empty();
    const auto caller = uri_user(invite.from() ? invite.from()->uri : std::string());
    const std::string domain(realm);
    // RFC 3323/3325: a withheld caller reaches the browser as anonymous, whatever else we know.
    const std::string from = caller.empty() || caller_withheld(invite) ? std::string(kAnonymousFrom)
                                                                       : "<sip:" + caller + "@" + domain + ">";
    for (const auto& b : bindings) {
        if (!is_valid_uri(b.contact)) continue;
        Leg leg;
        leg.address = LegAddress{b.transport, true, browser_local};
        auto m = new_invite(b.contact, browser_local, from,
                            "<sip:" + std::string(callee) + "@" + domain + ">", *offer, random_);
        if (m.serialize().empty()) continue;   // as above: libosip2 cannot write it
        uac_.push_back(std::move(leg));
        send_uac_invite(now, uac_.back(), std::move(m), layer, out);
    }
    if (uac_.empty()) answer_uas(now, 480, {}, layer, out);
}

std::string Call::trunk_dialled(std::string_view number, const TrunkAccount* account) const {
    const TrunkAccount& a = account != nullptr ? *account : account_;
    return escape_user(a.tech_prefix) + format_number(number, a.e164_plus, a.plan);
}

std::string Call::trunk_uri(const std::string& dialled, std::string_view fallback_host, const TrunkAccount* account) const {
    const TrunkAccount& a = account != nullptr ? *account : account_;
    // RFC 3261 §19.1.1: ";user=phone" after the host of a URI whose user is a number, when asked.
    return a.scheme + ":" + dialled + "@" + (a.host.empty() ? std::string(fallback_host) : a.host) +
           (a.user_phone && is_phone_user(dialled) ? ";user=phone" : "");
}

Message Call::reissue_invite(const Leg& leg, const LocalAddress& local) {
    auto retry = leg.invite->clone();
    retry.pop_via();
    retry.push_via(local.transport, local.sent_by, new_branch(random_));
    retry.set_cseq(leg.invite->cseq() + 1, "INVITE");
    return retry;
}

bool Call::retry_with_credentials(Time now, Leg& leg, const Message& r, TransactionLayer& layer, std::vector<Action>& out,
                                  const TrunkAccount* account) {
    const TrunkAccount& acc = account != nullptr ? *account : account_;
    if (leg.auth_tried || acc.username.empty()) return false;
    auto a = answer_challenge(r, "INVITE", leg.invite->request_uri(), acc.username, acc.password, random_);
    if (!a) return false;
    auto retry = reissue_invite(leg, leg.address.local);
    retry.add_auth_header(a->header, a->value);
    leg.auth_tried = true;
    send_uac_invite(now, leg, std::move(retry), layer, out);
    return true;
}

void Call::send_uac_invite(Time now, Leg& leg, Message invite, TransactionLayer& layer, std::vector<Action>& out) {
    leg.invite.emplace(invite.clone());
    leg.final = 0;
    leg.invite_tx = layer.send_request(now, leg.address.transport, leg.address.reliable, std::move(invite), out);
}

void Call::answer_uas(Time now, int status, std::string_view sdp, TransactionLayer& layer, std::vector<Action>& out) {
    if (uas_.final) return;
    const bool reliable = uas_reliable_ && status > 100 && status < 200;
    // RFC 3262 §3: one unacknowledged reliable provisional at a time; the next one waits (dropped).
    if (reliable && unacked_) return;
    auto r = Message::response(*uas_invite_, status, {}, uas_tag_);
    if (status < 300) r.add_contact(uas_.address.local.contact);
    if (status == 422) timer_.add_422(r);
    if (!outbound_ && status >= 200 && status < 300) {
        r.add_header("Allow", kAllow);
        timer_.answer(now, *uas_invite_, r);
    }
    if (!sdp.empty()) r.set_body("application/sdp", sdp);
    if (reliable) {
        // RFC 3262 §3: Require: 100rel and an RSeq; the early dialog exists now, for the PRACK.
        if (!uas_.dialog)
            if (auto d = Dialog::from_uas(*uas_invite_, uas_tag_, uas_.address.local)) uas_.dialog.emplace(std::move(*d));
        r.add_header("Require", "100rel");
        r.add_header("RSeq", std::to_string(++rseq_));
        unacked_.emplace(Unacked{r.clone(), now + kT1, now + 64 * kT1, kT1});
    }
    layer.respond(now, uas_.invite_tx, std::move(r), out);
    if (status < 200) {
        if (state_ == State::Calling) state_ = State::Early;
        return;
    }
    unacked_.reset();   // the final response ends the provisionals' retransmissions
    uas_.final = final_status_ = status;
    if (status < 300) {
        if (!uas_.dialog)
            if (auto d = Dialog::from_uas(*uas_invite_, uas_tag_, uas_.address.local)) uas_.dialog.emplace(std::move(*d));
        if (uas_.dialog) uas_.dialog->on_final_sent(status);
        state_ = State::Confirmed;
    } else {
        if (uas_.dialog) uas_.dialog->terminate();
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

Call::Leg* Call::trunk_leg() {
    if (!outbound_) return &uas_;
    return uac_.empty() ? nullptr : &uac_.front();
}

void Call::add_trunk_headers(Message& m, bool refresh) const {
    m.add_header("Allow", kAllow);
    timer_.add_to_request(m, refresh);
    if (!refresh && account_.rel100) {
        // RFC 3262 §4, in one Supported header with `timer`: some peers (sipp) read only the first.
        const auto timer = m.header("supported");
        m.remove_header("Supported");
        m.add_header("Supported", timer ? "100rel, " + *timer : std::string("100rel"));
    }
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
    if (transfer_ && transfer_response(now, tx, r, layer, out)) return;   // issue 14
    if (takeover_ && takeover_response(now, tx, r, layer, out)) return;
    if (!refresh_tx_.empty() && tx == refresh_tx_) {
        if (r.status() >= 200) refresh_answered(now, r, layer, out);
        return;
    }
    if (reinvite_ && tx == reinvite_->out_tx) {
        if (r.status() >= 200) reinvite_answered(now, r, layer, out);
        return;
    }
    if (!outbound_ && tx == uas_.invite_tx && uas_.invite) {
        // Issue 14: after a transfer fallback an inbound call's trunk leg is a dialog we started
        // (call_transfer.cpp); its 2xx retransmitted gets its ACK again (RFC 3261 §13.2.2.4).
        if (r.status() >= 200 && r.status() < 300 && uas_.dialog)
            layer.send_stateless(uas_.address.transport, uas_.dialog->make_ack(uas_.invite->cseq(), random_), out);
        return;
    }
    std::size_t i = 0;
    Leg* leg = uac_by_tx(tx, &i);
    if (leg) leg->trying_by.reset();   // the target is alive: no failover for silence (issue 14)
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
        if (outbound_) {
            const auto kind = reliability(*leg, r);
            if (kind == Reliability::Repeated) return;   // a retransmission: its PRACK retransmits
            std::string prack_sdp;
            // RFC 3262 §5: after our late offer, the trunk's offer in a reliable 18x is answered
            // in the PRACK, and the browser gets its answer in this provisional (early media).
            if (kind == Reliability::New && account_.late_offer && !early_answer_ && !r.body().empty() && !winner_ &&
                state_ != State::Ended)
                if (auto both = media_.answer_late_offer(r.body())) {
                    prack_sdp = std::move(both->to_trunk);
                    early_answer_ = std::move(both->to_browser);
                }
            if (kind == Reliability::New) send_prack(now, *leg, r, prack_sdp, layer, out);
            if (!prack_sdp.empty()) {
                answer_uas(now, status, *early_answer_, layer, out);
                provisional_sent_ = true;
                return;
            }
        }
        if (winner_ || state_ == State::Ended) return;
        // 180 once (forks ring together); 183 with SDP is early media and always goes through
        // (but for a late offer it would be the trunk's offer, which the 2xx repeats).
        std::optional<std::string> sdp;
        if (!r.body().empty() && !(outbound_ && account_.late_offer)) sdp = media_.map_answer(!outbound_, r.body());
        if (sdp) answer_uas(now, status, *sdp, layer, out);
        else if (!provisional_sent_) answer_uas(now, 180, {}, layer, out);
        provisional_sent_ = true;
        return;
    }
    uac_final(now, i, r, layer, out);
}

void Call::uac_final(Time now, std::size_t i, const Message& r, TransactionLayer& layer, std::vector<Action>& out) {
    if (outbound_ && try_next_target(now, i, r.status(), layer, out)) return;   // issue 14
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
        // RFC 3261 §13.2.2.4: the UAC core ACKs every 2xx itself; after a late offer the ACK
        // carries our answer (§13.2.1).
        std::optional<std::string> answer;
        std::string ack_sdp;
        if (outbound_ && account_.late_offer && early_answer_ && !winner_ && state_ != State::Ended) {
            answer = early_answer_;   // offer and answer were done in the 18x and its PRACK (RFC 3262 §5)
        } else if (outbound_ && account_.late_offer && !winner_ && state_ != State::Ended) {
            if (auto both = media_.answer_late_offer(r.body())) {
                ack_sdp = std::move(both->to_trunk);
                answer = std::move(both->to_browser);
            }
        } else {
            answer = media_.map_answer(!outbound_, r.body());
        }
        layer.send_stateless(leg.address.transport, leg.dialog->make_ack(leg.invite->cseq(), random_, ack_sdp), out);
        if (outbound_ && !winner_) {
            timer_.answered(now, r);   // RFC 4028 §7.2
            trunk_allows_update_ = allows(r, "UPDATE");
        }
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
    if (status == 422 && outbound_ && !leg.timer_retried && timer_.on_422(r)) {
        // RFC 4028 §7.3: the same INVITE again with the Session-Expires the 422's Min-SE asks for.
        auto retry = reissue_invite(leg, leg.address.local);
        for (auto name : {"Allow", "Supported", "Session-Expires", "Min-SE"}) retry.remove_header(name);
        add_trunk_headers(retry, false);
        leg.timer_retried = true;
        send_uac_invite(now, leg, std::move(retry), layer, out);
        return;
    }
    if ((status == 401 || status == 407) && outbound_ && retry_with_credentials(now, leg, r, layer, out)) return;
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
    if (transfer_ && transfer_failed(now, tx, 408, layer, out)) return;   // issue 14
    if (takeover_ && takeover_failed(now, tx, 408, layer, out)) return;
    std::size_t i = 0;
    if (Leg* leg = uac_by_tx(tx, &i)) {
        // Timer B: no final response in 64*T1. A trunk that never answers is a service that is
        // down: the browser hears 503 within that budget (RFC 3261 §21.5.4; issue 4). A browser
        // that never answers a forked inbound call is a request timeout (408, §16.7 step 6).
        auto fake = Message::response(*leg->invite, outbound_ ? 503 : 408);
        uac_final(now, i, fake, layer, out);
        return;
    }
    if (!refresh_tx_.empty() && tx == refresh_tx_) {
        // §12.2.1.2: no answer to our refresh: the dialog is gone, and with it the session.
        refresh_tx_.clear();
        end_reason_ = "session-expired";
        hang_up(now, layer, out);
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
    if (transfer_ && transfer_failed(now, tx, 503, layer, out)) return;   // issue 14
    if (takeover_ && takeover_failed(now, tx, 503, layer, out)) return;
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
    if (method == "ACK") {
        // RFC 3261 §14.2: the answer to the offer our 2xx carried (an SDP-less re-INVITE).
        if (leg->answer_in_ack && !r.body().empty()) media_.take_answer(is_browser(*leg), r.body());
        leg->answer_in_ack = false;
        return;
    }
    if (method == "BYE") {
        layer.respond(now, tx, Message::response(r, 200), out);
        // A leg that is not the call's ends nothing: a browser transferred away (issue 14; on an
        // outbound call it sits in uac_ then), or a trunk fork that lost.
        if (!from_uas && winner_ && leg != &uac_[*winner_]) return;
        if (joined_ && is_browser(*leg)) return;   // issue 14: the browser left a joined call
        end_other_side(now, from_uas, layer, out);
        return;
    }
    if (method == "PRACK") return on_prack(now, tx, r, *leg, layer, out);
    if (method == "REFER") return on_refer(now, tx, r, *leg, layer, out);     // issue 14
    if (method == "NOTIFY") return on_notify(now, tx, r, *leg, layer, out);
    if ((method == "INVITE" || method == "UPDATE") && answer_in_dialog(now, tx, r, *leg, layer, out)) return;
    if (method == "INVITE") return relay_reinvite(now, tx, r, from_uas, layer, out);
    layer.respond(now, tx, Message::response(r, 200), out);
}

bool Call::answer_in_dialog(Time now, const std::string& tx, const Message& r, Leg& leg, TransactionLayer& layer,
                            std::vector<Action>& out) {
    const bool invite = r.method() == "INVITE";
    const bool from_browser = is_browser(leg);
    if (!from_browser && timer_.too_small(r)) {
        respond_in_dialog(now, tx, r, leg, 422, {}, layer, out);   // RFC 4028 §8.1
        return true;
    }
    if (state_ != State::Confirmed) {
        if (invite) return false;   // relay_reinvite refuses it
        // RFC 3311 §5.2: an UPDATE in an early dialog; no offer is taken before the call is answered.
        respond_in_dialog(now, tx, r, leg, r.body().empty() ? 200 : 488, {}, layer, out);
        return true;
    }
    if (r.body().empty()) {
        // RFC 4028 §7.4 / RFC 3311: an SDP-less UPDATE is a refresh and changes nothing. An
        // SDP-less re-INVITE gets our current session as the offer, its answer in the ACK.
        if (!invite) {
            respond_in_dialog(now, tx, r, leg, 200, {}, layer, out);
            return true;
        }
        auto offer = media_.current_offer(from_browser);
        if (!offer) return false;
        leg.answer_in_ack = true;
        respond_in_dialog(now, tx, r, leg, 200, *offer, layer, out);
        return true;
    }
    if (reinvite_) {
        respond_in_dialog(now, tx, r, leg, 491, {}, layer, out);   // RFC 3311 §5.2: an offer is pending
        return true;
    }
    // Joined (issue 14, attended transfer): no browser leg to relay to, so the media side answers.
    auto a = media_.answer_locally(from_browser, r.body(), !invite || joined_);
    if (a.kind == MediaSdp::LocalAnswer::Kind::Relay && invite) return false;
    if (a.kind == MediaSdp::LocalAnswer::Kind::Answered) respond_in_dialog(now, tx, r, leg, 200, a.sdp, layer, out);
    else respond_in_dialog(now, tx, r, leg, 488, {}, layer, out);   // SDP we cannot read or answer
    return true;
}

void Call::respond_in_dialog(Time now, const std::string& tx, const Message& r, Leg& leg, int status,
                             std::string_view sdp, TransactionLayer& layer, std::vector<Action>& out) {
    auto resp = Message::response(r, status, {}, leg.dialog->local_tag());
    if (status == 422) timer_.add_422(resp);
    if (status >= 200 && status < 300) {
        resp.add_contact(leg.address.local.contact);
        if (!is_browser(leg)) {
            resp.add_header("Allow", kAllow);
            timer_.answer(now, r, resp);   // a refresh (RFC 4028 §9): timing starts again
        }
    }
    if (!sdp.empty()) resp.set_body("application/sdp", sdp);
    layer.respond(now, tx, std::move(resp), out);
    if (r.method() == "INVITE") leg.dialog->on_final_sent(status);
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
    if (!is_browser(*to)) add_trunk_headers(m, true);   // RFC 4028 §7.4: a re-INVITE refreshes
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
        else if (!is_browser(to)) timer_.answered(now, r);
    }
    auto resp = Message::response(*ri.in, status, {}, in.dialog->local_tag());
    if (answer) {
        resp.add_contact(in.address.local.contact);
        resp.set_body("application/sdp", *answer);
        if (!is_browser(in)) {
            resp.add_header("Allow", kAllow);
            timer_.answer(now, *ri.in, resp);
        }
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
    drop_transfer(now, layer, out);
    drop_takeover(now, layer, out);
    if (from_uas) {
        for (auto& l : uac_) bye(now, l, layer, out);
    } else {
        bye(now, uas_, layer, out);
        for (auto& l : uac_) bye(now, l, layer, out);  // the leg that hung up is Terminated already
    }
    state_ = State::Ended;
}

void Call::hang_up(Time now, TransactionLayer& layer, std::vector<Action>& out) {
    drop_transfer(now, layer, out);
    drop_takeover(now, layer, out);
    if (!uas_.final) answer_uas(now, 480, {}, layer, out);
    for (auto& l : uac_)
        if (l.final == 0) layer.cancel(now, l.invite_tx, out);
    bye(now, uas_, layer, out);
    for (auto& l : uac_) bye(now, l, layer, out);
    state_ = State::Ended;
}

}  // namespace turnbridge::sip

namespace turnbridge::sip {

void Call::send_refresh(Time now, TransactionLayer& layer, std::vector<Action>& out) {
    Leg* leg = trunk_leg();
    if (leg == nullptr || !leg->dialog || state_ != State::Confirmed) return;
    if (reinvite_) {
        timer_.retry_at(now + 1s);   // a relayed re-INVITE is in flight; it refreshes too
        return;
    }
    // RFC 4028 §7.4: an UPDATE when the trunk allows it (no SDP, nothing renegotiated), else a
    // re-INVITE with our current session (same o= version: nothing changes, RFC 3264 §8).
    std::optional<std::string> offer;
    if (!trunk_allows_update_) offer = media_.current_offer(false);
    auto m = leg->dialog->make_request(trunk_allows_update_ ? "UPDATE" : "INVITE", random_);
    if (offer) m.set_body("application/sdp", *offer);
    add_trunk_headers(m, true);
    refresh_is_invite_ = !trunk_allows_update_;
    refresh_cseq_ = m.cseq();
    refresh_tx_ = layer.send_request(now, leg->address.transport, leg->address.reliable, std::move(m), out);
    other_tx_.push_back(refresh_tx_);
}

void Call::refresh_answered(Time now, const Message& r, TransactionLayer& layer, std::vector<Action>& out) {
    refresh_tx_.clear();
    Leg* leg = trunk_leg();
    if (leg == nullptr || !leg->dialog) return;
    leg->dialog->on_response(r);
    const int status = r.status();
    if (refresh_is_invite_ && status < 300) {
        layer.send_stateless(leg->address.transport, leg->dialog->make_ack(refresh_cseq_, random_), out);
        if (!r.body().empty()) media_.take_answer(false, r.body());
    }
    if (status < 300) return timer_.answered(now, r);
    if (status == 422 && timer_.on_422(r)) return send_refresh(now, layer, out);   // RFC 4028 §7.3
    if (status == 481 || status == 408) {
        // §12.2.1.2: the trunk no longer knows the dialog.
        end_reason_ = "session-expired";
        hang_up(now, layer, out);
        return;
    }
    // RFC 3261 §14.1: 491 means glare, try again in a moment; any other refusal, again later
    // (still before the session expires, when the call ends).
    timer_.retry_at(now + (status == 491 ? 2s : 10s));
}

void Call::on_timer(Time now, TransactionLayer& layer, std::vector<Action>& out) {
    check_trying(now, layer, out);   // issue 14: a silent UDP target
    if (transfer_ && transfer_->give_up <= now) {
        // No final NOTIFY from the trunk, or no final answer to our own call: the transfer is over.
        if (transfer_->answered) notify_browser(now, 408, layer, out);
        drop_transfer(now, layer, out);
    }
    if (takeover_ && takeover_->give_up <= now) {
        // No browser of the user answered in time: the trunk hears 408, the call stays as it was.
        for (std::size_t j = takeover_->first_fork; j < uac_.size(); ++j)
            if (uac_[j].final == 0) layer.cancel(now, uac_[j].invite_tx, out);
        end_takeover(now, 408, layer, out);
    }
    if (unacked_ && unacked_->give_up <= now) {
        // RFC 3262 §3: no PRACK in 64*T1: the INVITE is refused with a 5xx, the browsers cancelled.
        unacked_.reset();
        answer_uas(now, 504, {}, layer, out);
        for (auto& l : uac_)
            if (l.final == 0) layer.cancel(now, l.invite_tx, out);
    } else if (unacked_ && unacked_->next <= now) {
        layer.respond(now, uas_.invite_tx, unacked_->response.clone(), out);
        unacked_->interval *= 2;
        unacked_->next = std::min(now + unacked_->interval, unacked_->give_up);
    }
    if (state_ != State::Confirmed || !timer_.active()) return;
    if (const auto at = timer_.expires_at(); at && *at <= now) {
        // RFC 4028 §10: no refresh came (or none of ours was answered): BYE both legs.
        end_reason_ = "session-expired";
        timer_.stop();
        hang_up(now, layer, out);
        return;
    }
    if (const auto at = timer_.refresh_at(); at && *at <= now && refresh_tx_.empty()) {
        timer_.retry_at(timer_.expires_at().value_or(now));   // one refresh at a time
        send_refresh(now, layer, out);
    }
}

std::optional<Time> Call::next_wake() const {
    auto t = next_wake_untransferred();
    for (const auto give_up : {transfer_ ? std::optional<Time>(transfer_->give_up) : std::nullopt,
                               takeover_ ? std::optional<Time>(takeover_->give_up) : std::nullopt})
        if (give_up && (!t || *give_up < *t)) t = give_up;
    return t;
}

std::optional<Time> Call::next_wake_untransferred() const {
    for (const auto& l : uac_)
        if (l.trying_by) return l.trying_by;   // only before any answer: nothing else is due yet
    if (unacked_) return unacked_->next;
    if (state_ != State::Confirmed || !timer_.active()) return std::nullopt;
    auto t = timer_.expires_at();
    if (const auto r = timer_.refresh_at(); r && refresh_tx_.empty() && (!t || *r < *t)) t = r;
    return t;
}

}  // namespace turnbridge::sip

namespace turnbridge::sip {

Call::Reliability Call::reliability(const Leg& leg, const Message& r) const {
    if (!account_.rel100 || !has_100rel(r, "require")) return Reliability::Unreliable;
    const auto rseq = parse_rseq(r);
    if (!rseq || !leg.dialog) return Reliability::Unreliable;   // RFC 3262 §4: without an RSeq it is not reliable
    // §4: a retransmission (or an old one) is not acknowledged again: the PRACK's own
    // transaction retransmits. Beyond the next number: out of order, dropped until the gap fills.
    if (pracks_sent_ >= kMaxPracks && (!trunk_rseq_ || *rseq > *trunk_rseq_)) {   // a flood: no PRACK each
        ++reliable_dropped_;
        return Reliability::Repeated;
    }
    if (trunk_rseq_ && *rseq != *trunk_rseq_ + 1) return Reliability::Repeated;
    return Reliability::New;
}

void Call::send_prack(Time now, Leg& leg, const Message& r, const std::string& sdp, TransactionLayer& layer,
                      std::vector<Action>& out) {
    trunk_rseq_ = parse_rseq(r);
    ++pracks_sent_;
    auto prack = leg.dialog->make_request("PRACK", random_);
    prack.add_header("RAck", std::to_string(*trunk_rseq_) + " " + std::to_string(r.cseq()) + " INVITE");
    if (!sdp.empty()) prack.set_body("application/sdp", sdp);
    other_tx_.push_back(layer.send_request(now, leg.address.transport, leg.address.reliable, std::move(prack), out));
}

void Call::on_prack(Time now, const std::string& tx, const Message& r, Leg& leg, TransactionLayer& layer,
                    std::vector<Action>& out) {
    // RFC 3262 §3: a PRACK that matches no reliable provisional of ours gets 481. One for a
    // provisional already acknowledged, or overtaken by the final response, is answered 200.
    const auto rack = parse_rack(r);
    const bool ours = &leg == &uas_ && !outbound_ && rack && rseq_ != 0 && rack->first <= rseq_ &&
                      uas_invite_ && rack->second == uas_invite_->cseq();
    if (!ours) {
        layer.respond(now, tx, Message::response(r, 481, "No matching reliable provisional", leg.dialog->local_tag()), out);
        return;
    }
    if (unacked_ && rack->first == rseq_) unacked_.reset();
    layer.respond(now, tx, Message::response(r, 200, {}, leg.dialog->local_tag()), out);
}

}  // namespace turnbridge::sip
