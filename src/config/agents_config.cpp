// SPDX-License-Identifier: Apache-2.0
// [realm."X".gateway.agents] (issue 17): the numbers and names a browser user of the realm may
// dial to reach an AI voice agent over Twilio Media Streams.
#include <algorithm>
#include <fmt/format.h>

#include "gateway_config.hpp"

namespace turnbridge::config::detail {
namespace {

// Bounds: each parameter goes into every `start` message (one WebSocket text message).
constexpr std::size_t kMaxParameters = 16;
constexpr std::size_t kMaxParameterBytes = 256;

// What a browser can put in its Request-URI user part and we can match: like a DID.
bool valid_name(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               std::string_view("+*#._-").find(c) != std::string_view::npos;
    });
}

bool one_line(std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; }

AgentUrl agent_url(const Reader& r, const Field& f) {
    std::string text = r.as_string(f);
    if (!text.starts_with(kAgentPrefix)) text = std::string(kAgentPrefix) + text;
    std::string why;
    auto url = parse_agent_url(text, why);
    if (!url) r.fail(f, why.empty() ? "expected ws://HOST:PORT/PATH or wss://..." : why);
    return std::move(*url);
}

}  // namespace

AgentMediaFormat agent_media_format(const Reader& r, const Field& f) {
    const std::string text = r.as_string(f);
    const auto format = parse_agent_media_format(text);
    if (!format)
        r.fail(f, fmt::format(R"(expected "mulaw" (8 kHz, Twilio's audio/x-mulaw) or "l16" (16 kHz linear), got "{}")", text));
    return *format;
}

std::map<std::string, AgentEntry> load_agents(const Reader& r, const Field& f, const std::string& fallback_auth,
                                              AgentMediaFormat fallback_format) {
    std::map<std::string, AgentEntry> agents;
    r.as_table(f);
    for (const auto& e : r.entries(f)) {
        if (!valid_name(e.name))
            r.fail(e, fmt::format(R"(expected a name or number a browser dials ("ai", "+15550199"), got "{}")", e.name));
        AgentEntry a;
        a.authorization = fallback_auth;
        a.media_format = fallback_format;
        if (e.node && e.node->is_string()) {
            a.url = agent_url(r, e);
        } else {
            const auto& t = r.as_table(e);
            r.only_keys(t, e.key, {"url", "authorization", "parameters", "media_format"});
            const auto url = r.get(t, e.key, "url");
            if (!url) r.fail(e, R"(expected url = "ws://HOST:PORT/PATH" (or wss://))");
            a.url = agent_url(r, *url);
            if (auto v = r.get(t, e.key, "authorization")) {
                a.authorization = r.as_string(*v);
                if (a.authorization.empty() || !one_line(a.authorization))
                    r.fail(*v, "expected one line (an HTTP header value such as \"Bearer TOKEN\"), not empty");
            }
            if (auto v = r.get(t, e.key, "media_format")) a.media_format = agent_media_format(r, *v);
            if (auto p = r.get(t, e.key, "parameters")) {
                const auto entries = r.entries(*p);
                if (entries.size() > kMaxParameters)
                    r.fail(*p, fmt::format("expected at most {} parameters, got {}", kMaxParameters, entries.size()));
                for (const auto& kv : entries) {
                    static constexpr std::string_view kOwn[] = {"from", "to", "realm", "user"};
                    if (std::find(std::begin(kOwn), std::end(kOwn), kv.name) != std::end(kOwn))
                        r.fail(kv, fmt::format(R"("{}" is set by turnbridge (from, to, realm and user are))", kv.name));
                    std::string v = r.as_string(kv);
                    if (kv.name.size() > kMaxParameterBytes || v.size() > kMaxParameterBytes)
                        r.fail(kv, fmt::format("expected a name and value of at most {} bytes", kMaxParameterBytes));
                    a.parameters.emplace_back(kv.name, std::move(v));
                }
            }
        }
        agents.emplace(e.name, std::move(a));
    }
    return agents;
}

}  // namespace turnbridge::config::detail
