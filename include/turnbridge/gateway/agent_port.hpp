// SPDX-License-Identifier: Apache-2.0
#pragma once
// The seam between SipRouter's agent calls (sip_router_agents.cpp, issue 17) and the host that
// runs their WebSocket and RTP (host/agent_host.hpp). The router answers the trunk's INVITE once
// the host reports the agent's WebSocket up (SipRouter::agent_answered: 200 with the host's SDP
// answer), or 503 when it fails first (agent_failed); after the answer, a failure is a BYE.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "turnbridge/config/agent_url.hpp"
#include "turnbridge/gateway/sip_router.hpp"

namespace turnbridge::gateway {

struct AgentOpen {
    std::string key;          // the call's Call-ID: the host's name for it in both directions
    config::AgentUrl url;
    std::string realm;
    std::string from;         // the caller's number ("anonymous" when withheld)
    std::string to;           // the DID called
    std::string offer_sdp;    // the trunk's SDP offer
    std::uint32_t connect_timeout_s = 3;
    std::uint32_t playout_frames = 500;
    std::string authorization;   // the Authorization header value of the upgrade ("" = none)
    std::string user;            // a browser caller's user name ("" for a trunk caller)
    std::vector<std::pair<std::string, std::string>> parameters;   // static customParameters
    bool record = true;          // false: the router writes the call's record (a browser's call)
    // The agent's media format (an agent's media_format, else gateway.agent_media_format), and
    // whether the trunk leg may be G.722 (the realm's codecs have "g722"): an L16 agent then
    // takes G.722 at 16 kHz first (agent_trunk_codecs).
    config::AgentMediaFormat format = config::AgentMediaFormat::Mulaw;
    bool g722 = false;
};

// The realm's codecs have "g722" (G.722 toward its trunk is allowed).
bool allows_g722(const config::Gateway& g);

class AgentPort {
public:
    virtual ~AgentPort() = default;
    // Starts connecting to the agent and opens the call's RTP socket; false: cannot (503 now).
    virtual bool open_agent(const AgentOpen& open) = 0;
    // Outbound (POST /api/v1/calls, sip_router_agent_dial.cpp): the call's RTP socket and our
    // offer (agent_trunk_codecs) for the trunk's INVITE (`open.offer_sdp` unused); nullopt: cannot (503).
    virtual std::optional<std::string> offer_agent(const AgentOpen& /*open*/) { return std::nullopt; }
    // ... the trunk answered 200 OK with `answer_sdp`: now connect to the agent. False: the
    // answer is unusable (the call is hung up). Then as inbound: answered or failed, then close.
    virtual bool connect_agent(const std::string& /*key*/, const std::string& /*answer_sdp*/) { return false; }
    // The call has ended in signaling (BYE, CANCEL, a failure, shutdown): stop the stream (the
    // agent gets `stop`), free the call's sockets, write its record from `summary`.
    virtual void close_agent(const std::string& key, const CallSummary& summary) = 0;
    // Hand-over (agent_transfer.cpp): the agent gets `stop` and its stream closes, and the call's
    // RTP socket becomes a relay between the caller and whoever takes the call; returns the
    // SDP that names that socket (the answer the caller got), nullopt if the stream is not up.
    virtual std::optional<std::string> hand_over(const std::string& /*key*/) { return std::nullopt; }
    // Where the relay sends the caller's audio: the SDP answer of the leg that took the call.
    virtual void relay_to(const std::string& /*key*/, const std::string& /*sdp*/) {}
};

}  // namespace turnbridge::gateway
