// SPDX-License-Identifier: Apache-2.0
// The agent's hand-over (issue 17, turnbridge's extension of Media Streams:
// {"event":"transfer","to":"bob"}): a trunk caller talking to an agent is moved to a browser
// user of the realm, every registration of that user ringing (the forking of inbound DIDs).
//
// The trunk's dialog stays where it is (the agent call's UAS dialog, sip_router_agents.cpp) and
// so does its media address: the agent host stops the agent's stream (`stop`, then the
// WebSocket closes) and turns the call's RTP socket into a relay. The browser side is an
// ordinary inbound sip::Call and CallMedia, whose "trunk" leg is inside the router: its INVITE
// is the caller's INVITE with the relay's SDP as the offer, taken on kHandoverFlow, and what the
// call sends on that flow is answered here as a trunk would (ACK for its 200, 200 for its BYE).
// So the call's code is the one every inbound call runs, and the trunk sees no re-INVITE.
// Ends: the browser's BYE (or a refused fork: 480, 486, 603...) sends BYE to the trunk; the
// trunk's BYE hangs up the browser. A number ("+15557001", no user of that name registered) is
// called through the realm's trunk the same way, as an outbound call whose browser side is the
// caller: the SDP passes through, and the relay joins the two trunk legs' RTP.
#include <fmt/format.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/agent_port.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/gateway/trunk_choice.hpp"

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
        return;
    }
    const auto relay = agents_->hand_over(key);
    if (!relay) return;
    const std::string tx = handover_invite(now, a, *relay, "<sip:" + number + "@" + realm.name + ">");
    if (tx.empty()) return;
    const auto& gw = realm.gateway;
    CallEntry& e = calls_.emplace_back();
    e.trunk_flow = trunk->leg.transport;
    e.media = pass_through_media(realm, true);
    e.agent_key = key;
    e.summary.realm = realm.name;
    e.summary.account = "agent";
    e.summary.outbound = true;
    e.summary.remote = number;
    e.summary.started = now;
    sip::TrunkAccount account{trunk->hostport, trunk->uri_params, gw.trunk_username, gw.trunk_password,
                              gw.caller_id, trunk->scheme, {}, false, gw.rel100};
    account.timers.enabled = false;
    log::event(log::Level::Info, "call.started", {realm.name, "agent", {}, key, {}, {}, number, {}, std::nullopt},
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
    if (!a.dialog || a.handover_invite) return;   // not answered yet, or handed over already
    if (a.media) {
        log::info("agent: call {}: transfer to {} ignored: a browser's call is not handed over (not done yet)", key, to);
        return;
    }
    const config::Realm* realm = gateway_realm(a.summary.realm);
    const std::string user = target_user(to);
    if (realm == nullptr || user.empty()) return;
    const auto bindings = shared_->with_registrar([&](sip::Registrar& reg) { return reg.lookup(user + "@" + realm->name); });
    if (bindings.empty()) {
        // The trunk the number's prefix picks, as a browser's call to it (issue 14, trunk_choice.hpp).
        if (is_number(user)) return agent_transfer_to_trunk(now, a, choose_trunk(*realm, user), user, out);
        log::info("agent: call {}: transfer to {} ignored: no registered browser of that user in {}", key, to, realm->name);
        return;
    }
    auto media = media_(*realm, false);
    if (!media) {
        log::warn("agent: call {}: transfer to {} ignored: no media ports", key, to);
        return;
    }
    const auto relay = agents_->hand_over(key);
    if (!relay) return;
    const std::string tx = handover_invite(now, a, *relay);
    if (tx.empty()) return;   // cannot happen: a fresh branch
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
        if (m->status() >= 300) {   // no browser took it
            log::info("agent: call {}: the hand-over failed ({}); hanging up", key, m->status());
            agent_bye(now, call, out);
            return end_agent(now, key, fmt::format("handover failed: {}", m->status()));
        }
        if (call.handover_acked || e == calls_.end()) return;   // a 2xx retransmission
        call.handover_acked = true;
        agents_->relay_to(key, m->body());   // the caller's audio goes to the browser's media now
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
