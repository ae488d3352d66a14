// SPDX-License-Identifier: Apache-2.0
// The agent's hand-over (issue 17, turnbridge's extension of Media Streams:
// {"event":"transfer","to":"bob"}): the caller talking to an agent is moved to a browser user of
// the realm, every registration of that user ringing (the forking of inbound DIDs), or to a
// number through the realm's trunk.
//
// The caller's dialog stays where it is (the agent call's UAS dialog, sip_router_agents.cpp) and
// so does its media address: the agent host stops the agent's stream (`stop`, then the
// WebSocket closes) and turns the call's RTP socket into a relay. The new side is an ordinary
// sip::Call whose caller leg is inside the router: its INVITE is the caller's INVITE with the
// relay's SDP as the offer, taken on kHandoverFlow, and what the call sends on that flow is
// answered here as the caller would (ACK for its 200, 200 for its BYE). So the call's code is
// the one every inbound (to a user) or outbound (to a number, SDP passed through) call runs,
// and the caller sees no re-INVITE.
// The caller is a trunk call or a browser's call to an agent name (sip_router_agent_browser.cpp):
// for the relay both are the same G.711 RTP, a browser's being its CallMedia's trunk side (ICE,
// DTLS-SRTP and Opus toward the browser go on unchanged). So a browser caller handed to a user
// talks Opus -> PCMU -> relay -> PCMU -> Opus with the other browser, and one handed to a number
// Opus -> PCMU -> relay -> the trunk, as an ordinary browser->trunk call.
// Ends: either side's BYE ends both. A refusal (480, 486, 603...) or nobody taking it within
// agent_ring_timeout sends the caller BYE with a Reason (RFC 3326) and the end reason
// "handover failed: <status>".
#include <fmt/format.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/agent_port.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/gateway/sdp.hpp"
#include "turnbridge/gateway/trunk_choice.hpp"
#include "turnbridge/gateway/trunk_identity.hpp"

namespace turnbridge::gateway {
namespace {

// "bob", "sip:bob@example.org" -> "bob"
std::string target_user(std::string_view to) {
    if (to.starts_with("sip:")) to.remove_prefix(4);
    return std::string(to.substr(0, to.find('@')));
}

// "+15557001", "15557001": a number for the trunk (digits, an optional leading +).
bool is_number(std::string_view s) {
    if (s.starts_with('+')) s.remove_prefix(1);
    return !s.empty() && s.size() <= 32 && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// The first codec of the SDP's audio ("PCMU"), "-" if none: for a relayed call's record.
std::string first_codec(std::string_view sdp) {
    const auto parsed = parse_sdp(sdp);
    if (!parsed) return "-";
    for (const auto& m : parsed->media)
        if (m.media == "audio" && m.port != 0 && !m.codecs.empty()) return m.codecs.front().name;
    return "-";
}

// RFC 3326: why the caller's call ends, for the BYE after a failed hand-over.
std::string failure_reason(int status) {
    return fmt::format("SIP ;cause={} ;text=\"hand-over failed\"", status);
}

}  // namespace

// The caller's INVITE as our own call takes it on kHandoverFlow: a Via of ours (its branch must
// not match the trunk's finished transaction), no session timer or 100rel (nobody would refresh
// or PRACK), and the relay's SDP as the offer. The server transaction's key, "" if none.
std::string SipRouter::handover_invite(sip::Time now, AgentCall& a, const std::string& relay, const std::string& to) {
    auto invite = a.invite->clone();
    if (!to.empty()) invite.set_to(to);
    invite.pop_via();
    invite.push_via("TCP", "handover.invalid", sip::new_branch(random_));
    for (const char* h : {"Session-Expires", "Min-SE", "Require", "Supported", "Record-Route"}) invite.remove_header(h);
    invite.set_body("application/sdp", relay);
    std::vector<sip::Action> in;
    layer_.on_message(now, kHandoverFlow, true, invite.clone(), in);
    std::string tx;
    for (auto& x : in)
        if (auto* r = std::get_if<sip::RequestIn>(&x)) tx = r->tx;
    if (!tx.empty()) a.handover_invite.emplace(std::move(invite));
    return tx;
}

// A number: our own call through the realm's trunk, its SDP passed through unchanged (the relay
// is G.711 RTP already), the relay then joining the caller and the called number's media.
void SipRouter::agent_transfer_to_trunk(sip::Time now, AgentCall& a, const config::Realm& realm,
                                        const std::string& number, std::vector<sip::Action>& out) {
    const std::string key = a.summary.call_id;
    auto trunk = trunk_leg(realm);
    if (!trunk) {
        log::warn("agent: call {}: transfer to {} ignored: the trunk cannot be reached", key, number);
        ++transfers_[kTransferIgnored];
        return;
    }
    const auto relay = agents_->hand_over(key);
    if (!relay) return void(++transfers_[kTransferIgnored]);
    const std::string tx = handover_invite(now, a, *relay, "<sip:" + number + "@" + realm.name + ">");
    if (tx.empty()) return void(++transfers_[kTransferIgnored]);
    ++transfers_[kTransferNumber];
    a.handover_until = now + std::chrono::seconds(realm.gateway.agent_ring_timeout);
    const auto& gw = realm.gateway;
    CallEntry& e = calls_.emplace_back();
    e.trunk_flow = trunk->leg.transport;
    e.media = pass_through_media(realm, true);
    e.agent_key = key;
    e.summary.realm = realm.name;
    e.summary.account = a.media ? a.summary.account : "agent";   // a browser's: its user, as its own call
    e.summary.outbound = true;
    e.summary.remote = number;
    e.summary.started = now;
    e.summary.trunk = gw.trunk_name;   // issue 14: the trunk the number's prefix chose
    sip::TrunkAccount account{trunk->hostport, trunk->uri_params, gw.trunk_username, gw.trunk_password,
                              gw.caller_id, trunk->scheme, {}, false, gw.rel100};
    account.timers.enabled = false;
    if (a.media) account = with_identity(gw, *a.handover_invite, std::move(account));   // the user's caller id
    log::event(log::Level::Info, "call.started", {realm.name, e.summary.account, {}, key, {}, {}, number, {}, std::nullopt},
               fmt::format("agent: call {}: handed over to {} through the trunk", key, number));
    std::vector<sip::Action> more;
    e.call = std::make_unique<sip::Call>(now, tx, *a.handover_invite, sip::LegAddress{kHandoverFlow, true, a.local},
                                         trunk->leg, std::move(account), *e.media, random_, layer_, more);
    process(now, 0, nullptr, more, out);
}

void SipRouter::agent_transfer(sip::Time now, const std::string& key, const std::string& to,
                               std::vector<sip::Action>& out) {
    auto it = agent_calls_.find(key);
    if (it == agent_calls_.end() || agents_ == nullptr) return;
    AgentCall& a = it->second;
    const config::Realm* realm = gateway_realm(a.summary.realm);
    const std::string user = target_user(to);
    // Not answered yet, handed over already, or nowhere to go.
    if (!a.dialog || a.handover_invite || realm == nullptr || user.empty()) return void(++transfers_[kTransferIgnored]);
    const auto bindings = shared_->with_registrar([&](sip::Registrar& reg) { return reg.lookup(user + "@" + realm->name); });
    if (bindings.empty()) {
        // The trunk the number's prefix picks, as a browser's call to it (issue 14, trunk_choice.hpp).
        if (is_number(user)) return agent_transfer_to_trunk(now, a, choose_trunk(*realm, user), user, out);
        log::info("agent: call {}: transfer to {} ignored: no registered browser of that user in {}", key, to, realm->name);
        return void(++transfers_[kTransferIgnored]);
    }
    auto media = media_(*realm, false);
    if (!media) {
        log::warn("agent: call {}: transfer to {} ignored: no media ports", key, to);
        return void(++transfers_[kTransferIgnored]);
    }
    const auto relay = agents_->hand_over(key);
    if (!relay) return void(++transfers_[kTransferIgnored]);
    const std::string tx = handover_invite(now, a, *relay);
    if (tx.empty()) return void(++transfers_[kTransferIgnored]);   // cannot happen: a fresh branch
    ++transfers_[kTransferUser];
    a.handover_until = now + std::chrono::seconds(realm->gateway.agent_ring_timeout);
    const sip::LocalAddress browser_local =
        marked({"WS", local_.ws_host, "<sip:turnbridge@" + local_.ws_host + ";transport=ws>", {}});
    CallEntry& e = calls_.emplace_back();
    e.trunk_flow = kHandoverFlow;
    for (const auto& b : bindings) e.browser_flows.push_back(b.transport);
    e.media = std::move(media);
    e.routed = {user};
    e.agent_key = key;
    e.summary.realm = realm->name;
    e.summary.outbound = false;
    e.summary.remote = a.summary.remote;
    e.summary.started = now;
    e.summary.trunk = a.summary.trunk;   // issue 14: the trunk the caller came from ("" for a browser)
    sip::TrunkAccount account;
    account.timers.enabled = false;
    account.rel100 = false;
    log::event(log::Level::Info, "call.started", {realm->name, user, {}, key, {}, {}, a.summary.remote, {}, std::nullopt},
               fmt::format("agent: call {}: handed over to {} ({} registration{})", key, user, bindings.size(),
                           bindings.size() == 1 ? "" : "s"));
    std::vector<sip::Action> more;
    e.call = std::make_unique<sip::Call>(now, tx, *a.handover_invite, sip::LegAddress{kHandoverFlow, true, a.local},
                                         std::move(account), bindings, user, realm->name, browser_local, *e.media,
                                         random_, layer_, more);
    process(now, 0, nullptr, more, out);
}

// What the hand-over's sip::Call sends toward the caller, answered as the trunk would.
void SipRouter::on_handover_send(sip::Time now, sip::Send& s, std::vector<sip::Action>& out) {
    auto m = sip::Message::parse(s.bytes);
    if (!m) return;
    const std::string key = m->call_id();
    auto a = agent_calls_.find(key);
    auto e = std::find_if(calls_.begin(), calls_.end(), [&](const CallEntry& c) { return c.agent_key == key; });
    std::vector<sip::Action> in;
    if (!m->is_request()) {
        if (m->cseq_method() != "INVITE" || m->status() < 200 || a == agent_calls_.end() || !a->second.handover_invite)
            return;
        AgentCall& call = a->second;
        if (m->status() >= 300) {   // nobody took it: no browser answered, the number refused
            log::info("agent: call {}: the hand-over failed ({}); hanging up", key, m->status());
            ++transfers_[kTransferFailed];
            agent_bye(now, call, out, failure_reason(m->status()));
            return end_agent(now, key, fmt::format("handover failed: {}", m->status()));
        }
        if (call.handover_acked || e == calls_.end()) return;   // a 2xx retransmission
        call.handover_acked = true;
        agents_->relay_to(key, m->body());   // the caller's audio goes to the new side's media now
        // A number's call passes the SDP through: its record's codecs are the relay's and the
        // trunk's (a user's CallMedia names its own).
        if (e->summary.outbound) e->summary.codecs = first_codec(call.handover_invite->body()) + "/" + first_codec(m->body());
        // RFC 3261 §13.2.2.4: the ACK for the 2xx, as the caller's UA would send it.
        auto dialog = sip::Dialog::from_uac(*call.handover_invite, *m, call.local);
        if (!dialog) return;
        e->call->on_request(now, "", dialog->make_ack(call.handover_invite->cseq(), random_), layer_, in);
        return process(now, 0, nullptr, in, out);
    }
    const auto method = m->method();
    if (method == "ACK") return;
    // A BYE (the browser hung up), a relayed re-INVITE or anything else: 200, as a trunk would;
    // an offer gets the relay's session again (RFC 3264 §8: unchanged).
    auto ok = sip::Message::response(*m, 200, {}, m->to_tag().empty() ? sip::new_tag(random_) : std::string());
    if (method == "INVITE" && a != agent_calls_.end() && a->second.handover_invite)
        ok.set_body("application/sdp", a->second.handover_invite->body());
    layer_.on_message(now, kHandoverFlow, true, std::move(ok), in);
    process(now, 0, nullptr, in, out);
    if (method != "BYE") return;
    if (a = agent_calls_.find(key); a != agent_calls_.end()) {   // found again: process() ran
        agent_bye(now, a->second, out);
        end_agent(now, key, "bye-browser");
    }
}

// agent_ring_timeout: a hand-over nobody took in time is given up (the browsers or the number
// get CANCEL); the caller is hung up with a Reason, as for a refusal.
void SipRouter::expire_handovers(sip::Time now, std::vector<sip::Action>& out) {
    std::vector<std::string> due;
    for (const auto& [key, a] : agent_calls_)
        if (a.handover_invite && !a.handover_acked && a.handover_until <= now) due.push_back(key);
    for (const auto& key : due) {
        log::info("agent: call {}: the hand-over was not answered in time", key);
        agent_calls_.at(key).summary.end_reason = "handover failed: no answer";
        hang_up_handover(now, key, "no-answer", out);   // its final answer toward the caller may end it already
        auto a = agent_calls_.find(key);
        if (a == agent_calls_.end()) continue;
        ++transfers_[kTransferFailed];
        agent_bye(now, a->second, out, failure_reason(480));
        end_agent(now, key, "handover failed: no answer");
    }
}

void SipRouter::hang_up_handover(sip::Time now, const std::string& key, const std::string& why,
                                 std::vector<sip::Action>& out) {
    for (auto& e : calls_) {
        if (e.agent_key != key || e.call->state() == sip::Call::State::Ended) continue;
        if (e.summary.end_reason.empty()) e.summary.end_reason = why;
        std::vector<sip::Action> in;
        e.call->hang_up(now, layer_, in);
        process(now, 0, nullptr, in, out);
    }
}

}  // namespace turnbridge::gateway
