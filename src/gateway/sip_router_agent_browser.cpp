// SPDX-License-Identifier: Apache-2.0
// SipRouter's browser calls to AI agents (issue 17): a browser user of a realm dials a name of
// [realm.X.gateway.agents] ("ai", "+15550199"). The call is an agent call like a trunk DID's
// (sip_router_agents.cpp: 100 Trying while the agent's WebSocket comes up, 200 once it is, 503
// if it does not), with the browser as the UAS leg and the browser media of a gateway call:
// ICE-lite, DTLS-SRTP and Opus toward the browser, transcoded to the PCMU RTP the agent host
// takes on its own socket (CallMedia's "trunk" leg, over the media address). Its record is the
// router's, with codecs "<browser codec>/agent".
#include <fmt/format.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/agent_port.hpp"
#include "turnbridge/gateway/sip_router.hpp"

namespace turnbridge::gateway {

void SipRouter::on_agent_browser_invite(sip::Time now, const SipFlow& flow, sip::RequestIn& r, const config::Realm& realm,
                                        const std::string& caller, const std::string& name,
                                        const config::AgentEntry& agent, std::vector<sip::Action>& out) {
    const std::string key = r.request.call_id();
    if (agents_ == nullptr) return reply(now, r.tx, r.request, 503, out, "No Agent");
    if (agent_calls_.contains(key)) return;
    auto media = media_(realm, true);
    if (!media) return reply(now, r.tx, r.request, 503, out, "No Media Ports");
    // The browser's offer as a G.711 offer toward the agent host's RTP socket.
    const auto offer = media->map_offer(true, std::string(r.request.body()));
    if (!offer) return reply(now, r.tx, r.request, 488, out);
    AgentCall a;
    a.tx = r.tx;
    a.flow = flow.id;
    a.reliable = true;
    const std::string transport = flow.secure ? "WSS" : "WS";
    a.local = marked({transport, local_.ws_host, "<sip:turnbridge@" + local_.ws_host + ";transport=ws>", {}});
    a.to_tag = sip::new_tag(random_);
    a.summary.realm = realm.name;
    a.summary.call_id = key;
    a.summary.account = caller;
    a.summary.outbound = true;
    a.summary.remote = name;
    a.summary.started = now;
    a.summary.agent = true;
    a.summary.agent_format = agent.media_format;
    a.media = std::move(media);
    AgentOpen open{key, agent.url, realm.name, caller, name, *offer, realm.gateway.agent_connect_timeout,
                   realm.gateway.agent_playout_frames, agent.authorization, caller, agent.parameters, false,
                   agent.media_format, allows_g722(realm.gateway)};
    if (!agents_->open_agent(open)) {
        log::warn("agent: call {} -> {}: cannot open the agent's stream", key, agent.url.text);
        a.summary.status = 503;
        a.summary.ended = now;
        a.summary.end_reason = "agent: cannot open the stream";
        if (ended_) ended_(a.summary, a.media.get());
        return reply(now, r.tx, r.request, 503, out, "Agent Unavailable");
    }
    reply(now, r.tx, r.request, 100, out);
    a.counted_user = caller;
    shared_->call_started(worker_, realm.name, caller, key);
    log::event(log::Level::Info, "call.started", {realm.name, caller, {}, key, {}, {}, name, {}, std::nullopt},
               fmt::format("call: {}@{} -> {} (agent {})", caller, realm.name, name, agent.url.text));
    a.invite.emplace(std::move(r.request));
    agent_calls_.emplace(key, std::move(a));
}

bool SipRouter::hang_up_agent(sip::Time now, const sip::MediaSdp* media, const std::string& why,
                              std::vector<sip::Action>& out) {
    for (auto& [key, a] : agent_calls_) {
        if (a.media.get() != media) continue;
        if (a.summary.end_reason.empty()) a.summary.end_reason = "media: " + why;
        agent_failed(now, std::string(key), "the browser's media failed: " + why, out);
        return true;
    }
    return false;
}

// The browser's WebSocket is gone: nothing can be sent on it; the agent gets `stop`, or the
// side it was handed over to is hung up.
void SipRouter::agent_flow_closed(sip::Time now, sip::TransportId id, std::vector<sip::Action>& out) {
    std::vector<std::string> gone;
    for (const auto& [key, a] : agent_calls_)
        if (a.media && a.flow == id) gone.push_back(key);
    for (auto& key : gone) {
        log::info("agent: call {}: the browser's connection closed", key);
        end_agent(now, key, "browser-gone");
        hang_up_handover(now, key, "browser-gone", out);
    }
}

}  // namespace turnbridge::gateway
