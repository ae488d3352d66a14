// SPDX-License-Identifier: Apache-2.0
// SipRouter's AI agent calls (issue 17): a trunk INVITE to a DID routed to "agent:ws://..." is
// a UAS call of the router's own (no browser leg). It waits (100 Trying) while the host opens
// the agent's WebSocket, and gets 200 with the host's answer (PCMU; for an L16 agent G.722 or
// PCMA when offered, agent_audio.hpp) once it is up, 503 when it is
// refused or times out (gateway.agent_connect_timeout). After the answer, the trunk's BYE ends
// it (the agent gets `stop`), and the agent closing it sends BYE (RFC 3261 §15.1.1).
#include <fmt/format.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/agent_audio.hpp"
#include "turnbridge/gateway/agent_port.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/sip/numbers.hpp"

namespace turnbridge::gateway {
namespace {

// "sip:+15550100@host;x" -> "+15550100"
std::string uri_user(std::string_view uri) {
    if (auto colon = uri.find(':'); colon != std::string_view::npos) uri.remove_prefix(colon + 1);
    const auto at = uri.find('@');
    return at == std::string_view::npos ? std::string() : std::string(uri.substr(0, at));
}

}  // namespace

void SipRouter::on_agent_invite(sip::Time now, const SipFlow& flow, sip::RequestIn& r, const config::Realm& realm,
                                const std::string& target, const std::string& did, std::vector<sip::Action>& out) {
    std::string why;
    const auto url = config::parse_agent_url(target, why);
    if (agents_ == nullptr || !url) return reply(now, r.tx, r.request, 503, out, "No Agent");
    const std::string key = r.request.call_id();
    if (agent_calls_.contains(key)) return;   // the transaction layer answers retransmissions
    using T = config::SipTrunk::Transport;
    const T transport = flow.secure ? T::Tls : flow.reliable ? T::Tcp : T::Udp;
    AgentCall a;
    a.tx = r.tx;
    a.flow = flow.id;
    a.reliable = flow.reliable;
    a.local = marked(trunk_local(transport, r.request.request_uri().starts_with("sips:"), flow.local, "turnbridge"));
    a.to_tag = sip::new_tag(random_);
    a.summary.realm = realm.name;
    a.summary.call_id = key;
    a.summary.account = "agent";
    a.summary.outbound = false;
    a.summary.trunk = realm.gateway.trunk_name;
    const auto from = r.request.from();
    a.summary.remote = sip::caller_withheld(r.request) ? "anonymous" : from ? uri_user(from->uri) : std::string();
    a.summary.started = now;
    AgentOpen open{key, *url, realm.name, a.summary.remote, did, std::string(r.request.body()),
                   realm.gateway.agent_connect_timeout, realm.gateway.agent_playout_frames,
                   realm.gateway.agent_authorization, {}, {}, true, realm.gateway.agent_media_format,
                   allows_g722(realm.gateway)};   // every field: -Wmissing-field-initializers
    // RFC 3261 §21.4.26: an offer the agent's leg cannot take (G.729 alone, no audio) is the
    // trunk's problem, not the agent's: 488, and no agent is dialled.
    if (const auto why = agent_offer_error(open.offer_sdp, open.format, open.g722)) {
        log::info("agent: call {} -> {}: the trunk's offer cannot be taken ({}); 488", key, url->text, *why);
        return reply(now, r.tx, r.request, 488, out);
    }
    if (!agents_->open_agent(open)) {
        log::warn("agent: call {} -> {}: cannot open the agent's stream", key, url->text);
        return reply(now, r.tx, r.request, 503, out, "Agent Unavailable");
    }
    reply(now, r.tx, r.request, 100, out);
    shared_->call_started(worker_, realm.name, "", key);
    log::event(log::Level::Info, "call.started", {realm.name, {}, {}, key, {}, {}, a.summary.remote, {}, std::nullopt},
               fmt::format("call: trunk {} -> {} (agent {})", flow.peer.to_string(), did, url->text));
    a.invite.emplace(std::move(r.request));
    agent_calls_.emplace(key, std::move(a));
}

void SipRouter::agent_respond(sip::Time now, const std::string& tx, sip::Message response, std::vector<sip::Action>& out) {
    std::vector<sip::Action> in;
    layer_.respond(now, tx, std::move(response), in);
    for (auto& a : in)
        if (auto* s = std::get_if<sip::Send>(&a)) out.push_back(std::move(*s));
}

void SipRouter::agent_answered(sip::Time now, const std::string& key, const std::string& answer_sdp,
                               std::vector<sip::Action>& out) {
    auto it = agent_calls_.find(key);
    if (it == agent_calls_.end() || it->second.dialog) return;
    AgentCall& a = it->second;
    std::string answer = answer_sdp;
    if (a.media) {   // a browser's call: the agent host's G.711 answer, as the browser's answer
        auto mapped = a.media->map_answer(false, answer_sdp);
        if (!mapped) return agent_failed(now, key, "the browser's media cannot take the agent's answer", out);
        answer = std::move(*mapped);
    }
    auto dialog = sip::Dialog::from_uas(*a.invite, a.to_tag, a.local);
    if (!dialog) return agent_failed(now, key, "the INVITE has no usable Contact", out);
    a.dialog = std::move(*dialog);
    a.dialog->on_final_sent(200);
    a.answer_sdp = answer;
    auto ok = sip::Message::response(*a.invite, 200, {}, a.to_tag);
    ok.add_contact(a.local.contact);
    ok.set_body("application/sdp", answer);
    a.summary.status = 200;
    a.summary.answered = now;
    agent_respond(now, a.tx, std::move(ok), out);
}

void SipRouter::agent_bye(sip::Time now, AgentCall& a, std::vector<sip::Action>& out, const std::string& reason) {
    std::vector<sip::Action> in;
    auto bye = a.dialog->make_request("BYE", random_);
    if (!reason.empty()) bye.add_header("Reason", reason);
    layer_.send_request(now, a.flow, a.reliable, std::move(bye), in);
    for (auto& x : in)
        if (auto* s = std::get_if<sip::Send>(&x)) out.push_back(std::move(*s));
}

void SipRouter::agent_failed(sip::Time now, const std::string& key, const std::string& why, std::vector<sip::Action>& out) {
    auto it = agent_calls_.find(key);
    if (it == agent_calls_.end()) return dial_failed(now, key, why, out);   // an outbound call's agent
    AgentCall& a = it->second;
    log::info("agent: call {}: {}", key, why);
    if (a.dialog) {
        agent_bye(now, a, out);
    } else {
        a.summary.status = 503;
        agent_respond(now, a.tx, sip::Message::response(*a.invite, 503, "Agent Unavailable", a.to_tag), out);
    }
    const std::string k = key;   // `key` may be the entry's own, erased by end_agent
    end_agent(now, k, "agent: " + why);
    hang_up_handover(now, k, "agent: " + why, out);
}

void SipRouter::end_agent(sip::Time now, std::string key, std::string reason) {
    auto it = agent_calls_.find(key);
    if (it == agent_calls_.end()) return;
    CallSummary summary = std::move(it->second.summary);
    auto media = std::move(it->second.media);
    const std::string counted = std::move(it->second.counted_user);
    agent_calls_.erase(it);
    summary.ended = now;
    if (summary.end_reason.empty()) summary.end_reason = std::move(reason);
    shared_->call_ended(now, worker_, summary.realm, counted, key);
    if (agents_ != nullptr) agents_->close_agent(key, summary);
    if (media && ended_) ended_(summary, media.get());   // a browser's call: its record, its media freed
}

bool SipRouter::on_agent_request(sip::Time now, sip::RequestIn& r, std::vector<sip::Action>& out) {
    auto it = agent_calls_.find(r.request.call_id());
    if (it == agent_calls_.end()) return false;
    AgentCall& a = it->second;
    const auto method = r.request.method();
    if (r.tx.empty()) return true;   // the ACK for our 2xx
    if (!a.dialog || !a.dialog->matches(r.request)) {
        reply(now, r.tx, r.request, 481, out);
        return true;
    }
    if (method == "BYE") {
        agent_respond(now, r.tx, sip::Message::response(r.request, 200), out);
        const std::string key = it->first;
        const bool browser = a.media != nullptr;
        end_agent(now, key, browser ? "bye-browser" : "bye-trunk");
        hang_up_handover(now, key, browser ? "bye-caller" : "bye-trunk", out);   // issue 17: a caller handed over
        return true;
    }
    if (method == "INVITE" || method == "UPDATE") {   // a refresh: the same answer (RFC 3264 §8)
        auto ok = sip::Message::response(r.request, 200);
        ok.add_contact(a.local.contact);
        if (!r.request.body().empty() || method == "INVITE") ok.set_body("application/sdp", a.answer_sdp);
        agent_respond(now, r.tx, std::move(ok), out);
        return true;
    }
    reply(now, r.tx, r.request, method == "OPTIONS" || method == "INFO" ? 200 : 501, out);
    return true;
}

bool SipRouter::on_agent_cancel(sip::Time now, const std::string& invite_tx, std::vector<sip::Action>& out) {
    for (auto& [key, a] : agent_calls_) {
        if (a.tx != invite_tx || a.dialog) continue;
        a.summary.status = 487;
        agent_respond(now, a.tx, sip::Message::response(*a.invite, 487, {}, a.to_tag), out);   // RFC 3261 §9.2
        end_agent(now, std::string(key), "cancel");
        return true;
    }
    return false;
}

void SipRouter::stop_agents(sip::Time now, std::vector<sip::Action>& out) {
    while (!agent_calls_.empty()) {
        auto& [key, a] = *agent_calls_.begin();
        if (a.dialog) agent_bye(now, a, out);
        else agent_respond(now, a.tx, sip::Message::response(*a.invite, 503, "Shutting Down", a.to_tag), out);
        end_agent(now, std::string(key), "shutdown");
    }
}

}  // namespace turnbridge::gateway
