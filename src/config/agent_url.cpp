// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/config/agent_url.hpp"

#include <charconv>

#include "turnbridge/base/address.hpp"

namespace turnbridge::config {
namespace {

// RFC 1123 §2.1 / RFC 952: letters, digits and hyphens in dot-separated labels of 1-63
// characters, not starting or ending with a hyphen, 253 characters at most (a final dot allowed).
bool valid_host_name(std::string_view h) {
    if (h.ends_with('.')) h.remove_suffix(1);
    if (h.empty() || h.size() > 253) return false;
    std::size_t label = 0;
    char prev = '.';
    for (char c : h) {
        if (c == '.') {
            if (label == 0 || prev == '-') return false;
            label = 0;
        } else {
            const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
            if (!alnum && !(c == '-' && label != 0)) return false;
            if (++label > 63) return false;
        }
        prev = c;
    }
    return prev != '-';
}

}  // namespace

std::optional<AgentUrl> parse_agent_url(std::string_view entry, std::string& why) {
    why.clear();
    if (!entry.starts_with(kAgentPrefix)) return std::nullopt;
    std::string_view s = entry.substr(kAgentPrefix.size());
    AgentUrl u;
    u.text = std::string(s);
    // RFC 6455 §3: ws-URI and wss-URI.
    if (s.starts_with("wss://")) u.secure = true, s.remove_prefix(6);
    else if (s.starts_with("ws://")) s.remove_prefix(5);
    else return why = "expected agent:ws://HOST:PORT/PATH or agent:wss://...", std::nullopt;
    const auto slash = s.find_first_of("/?");
    std::string_view authority = s.substr(0, slash);
    if (slash != std::string_view::npos) u.target = std::string(s.substr(slash));
    if (!u.target.starts_with("/")) u.target = "/" + u.target;
    if (u.target.find('#') != std::string::npos || u.target.find_first_of(" \r\n") != std::string::npos)
        return why = "the agent URL's path has a fragment or a space", std::nullopt;
    std::string_view port;
    if (authority.starts_with("[")) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return why = "unclosed [ in the agent URL's host", std::nullopt;
        u.host = std::string(authority.substr(1, close - 1));
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return why = "expected :PORT after ]", std::nullopt;
            port = authority.substr(close + 2);
        }
    } else {
        const auto colon = authority.rfind(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    }
    if (u.host.empty()) return why = "the agent URL has no host", std::nullopt;
    // A name is looked up when a call needs the agent (server.dns_servers, A/AAAA).
    if (!IpAddress::parse(u.host) && !valid_host_name(u.host))
        return why = "the agent URL's host must be an IP address or a host name", std::nullopt;
    u.port = u.secure ? 443 : 80;
    if (!port.empty()) {
        unsigned p = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
            return why = "the agent URL's port must be 1-65535", std::nullopt;
        u.port = static_cast<std::uint16_t>(p);
    }
    return u;
}

std::optional<AgentMediaFormat> parse_agent_media_format(std::string_view s) {
    if (s == "mulaw") return AgentMediaFormat::Mulaw;
    if (s == "l16") return AgentMediaFormat::L16;
    return std::nullopt;
}

}  // namespace turnbridge::config
