// SPDX-License-Identifier: Apache-2.0
#pragma once
// Outbound AI agent calls (issue 17): `POST /api/v1/calls {realm, to, from, agent}` on the admin
// API (control thread) becomes an AgentDial posted to one gateway worker, whose SipRouter calls
// `to` through the realm's trunk and connects the agent only after the trunk's 200 OK
// (sip_router_agent_dial.cpp). The worker reports each step back as a DialUpdate through
// DialReports (thread-safe; a few per call, never per packet).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "turnbridge/config/agent_url.hpp"

namespace turnbridge::gateway {

struct AgentDial {
    std::string id;       // the API's call id ("dial-..."), the key of its updates
    std::string realm;
    std::string to;       // the number called through the trunk
    std::string from;     // our caller id toward the trunk (From user)
    config::AgentUrl url; // the agent's Media Streams WebSocket
    // A name of [realm.X.gateway.agents]: its Authorization and static customParameters
    // (nullopt: gateway.agent_authorization, no parameters).
    std::optional<std::string> authorization;
    std::vector<std::pair<std::string, std::string>> parameters;
    // The API's "media_format", else the agent's media_format (a name), else nullopt:
    // gateway.agent_media_format.
    std::optional<config::AgentMediaFormat> format;
};

struct DialUpdate {
    enum class State { Dialing, Ringing, Answered, Completed, Busy, NoAnswer, Failed };
    std::string id;
    State state = State::Dialing;
    int sip_code = 0;        // the trunk's final status (ours: 503 when it could not be reached)
    std::string call_id;     // the SIP Call-ID of our INVITE ("" before it left)
    std::string end_reason;  // what the call record says
};

// RFC 3261 §21 classes as the API reports a call that was never answered: busy for 486, 600 and
// 603; no-answer for 408, 480 and 487 (our ring timeout cancels with 487); failed otherwise.
inline DialUpdate::State unanswered_state(int sip_code) {
    if (sip_code == 486 || sip_code == 600 || sip_code == 603) return DialUpdate::State::Busy;
    if (sip_code == 408 || sip_code == 480 || sip_code == 487) return DialUpdate::State::NoAnswer;
    return DialUpdate::State::Failed;
}

inline std::string_view to_string(DialUpdate::State s) {
    switch (s) {
        case DialUpdate::State::Dialing: return "dialing";
        case DialUpdate::State::Ringing: return "ringing";
        case DialUpdate::State::Answered: return "answered";
        case DialUpdate::State::Completed: return "completed";
        case DialUpdate::State::Busy: return "busy";
        case DialUpdate::State::NoAnswer: return "no-answer";
        case DialUpdate::State::Failed: return "failed";
    }
    return "failed";
}

inline bool is_final(DialUpdate::State s) {
    return s != DialUpdate::State::Dialing && s != DialUpdate::State::Ringing && s != DialUpdate::State::Answered;
}

inline bool is_final_text(std::string_view s) {
    return s == "completed" || s == "busy" || s == "no-answer" || s == "failed";
}

// Where workers report their dials' progress (the control thread's table of API calls).
class DialReports {
public:
    virtual ~DialReports() = default;
    virtual void on_dial_update(const DialUpdate& u) = 0;   // any thread
};

}  // namespace turnbridge::gateway
