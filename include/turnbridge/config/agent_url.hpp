// SPDX-License-Identifier: Apache-2.0
#pragma once
// The route target of an AI voice agent (issue 17): "agent:ws://HOST[:PORT]/PATH" or
// "agent:wss://...", where HOST is an IP literal ([v6] in brackets) or a host name (RFC 1123),
// resolved when a call needs it (A/AAAA through server.dns_servers or the system's resolver;
// "localhost" is 127.0.0.1 without a lookup). The gateway speaks Twilio Media Streams v1 over
// that WebSocket.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnbridge::config {

inline constexpr std::string_view kAgentPrefix = "agent:";

struct AgentUrl {
    bool secure = false;     // wss: TLS toward the agent
    std::string host;        // as written (no brackets): the Host header and the TLS name
    std::uint16_t port = 0;  // 80 / 443 unless given
    std::string target = "/";   // path and query
    std::string text;        // the URL, for logs
};

// How an agent's audio travels in `media` (issue 17): Twilio Media Streams' audio/x-mulaw at
// 8 kHz (160 bytes per 20 ms), or, as Plivo Audio Streams names it (Twilio has no linear
// format), audio/x-l16 at 16 kHz: signed 16-bit little-endian samples, 640 bytes per 20 ms.
// Config: an agent's `media_format`, gateway.agent_media_format; POST /api/v1/calls "media_format".
enum class AgentMediaFormat : std::uint8_t { Mulaw, L16 };
// "mulaw" or "l16"; nullopt for anything else.
std::optional<AgentMediaFormat> parse_agent_media_format(std::string_view s);
constexpr std::string_view to_string(AgentMediaFormat f) { return f == AgentMediaFormat::L16 ? "l16" : "mulaw"; }

// A route entry that starts with "agent:" (else nullopt and `why` empty); a malformed one gives
// nullopt with `why` set.
std::optional<AgentUrl> parse_agent_url(std::string_view entry, std::string& why);

}  // namespace turnbridge::config
