// SPDX-License-Identifier: Apache-2.0
#include "streams_config.hpp"

#include <fmt/format.h>

namespace turnbridge::config::detail {
namespace {

constexpr std::int64_t kMaxConnections = 1'000'000;
constexpr std::int64_t kMaxSeconds = 86'400;
constexpr std::int64_t kMaxBytes = 1ll << 30;

struct KindKeys {
    std::string_view prefix;
    StreamKindLimits Streams::*limits;
};
constexpr KindKeys kKinds[] = {
    {"turn", &Streams::turn}, {"ws", &Streams::ws}, {"sip", &Streams::sip}, {"admin", &Streams::admin}};

}  // namespace

Streams load_streams(const Reader& r, const Field& f) {
    const auto& t = r.as_table(f);
    r.only_keys(t, "streams",
                {"turn_max_connections", "turn_max_connections_per_ip", "turn_idle_timeout", "ws_max_connections",
                 "ws_max_connections_per_ip", "ws_idle_timeout", "sip_max_connections", "sip_max_connections_per_ip",
                 "sip_idle_timeout", "admin_max_connections", "admin_max_connections_per_ip", "admin_idle_timeout",
                 "admin_reserved_connections", "handshake_timeout", "message_timeout", "write_timeout",
                 "write_soft_limit", "write_hard_limit", "ws_max_message", "ws_max_fragments"});
    Streams s;
    auto u32 = [&](std::string_view key, std::int64_t min, std::int64_t max, std::uint32_t& out) {
        if (auto v = r.get(t, "streams", key)) out = static_cast<std::uint32_t>(r.as_integer(*v, min, max));
    };
    auto seconds = [&](std::string_view key, std::int64_t min, std::chrono::seconds& out) {
        if (auto v = r.get(t, "streams", key)) out = std::chrono::seconds(r.as_integer(*v, min, kMaxSeconds));
    };
    for (const auto& k : kKinds) {
        StreamKindLimits& l = s.*k.limits;
        u32(fmt::format("{}_max_connections", k.prefix), 1, kMaxConnections, l.max_connections);
        u32(fmt::format("{}_max_connections_per_ip", k.prefix), 0, kMaxConnections, l.max_connections_per_ip);
        seconds(fmt::format("{}_idle_timeout", k.prefix), 0, l.idle_timeout);
    }
    u32("admin_reserved_connections", 0, kMaxConnections, s.admin_reserved_connections);
    seconds("handshake_timeout", 1, s.handshake_timeout);
    seconds("message_timeout", 1, s.message_timeout);
    seconds("write_timeout", 1, s.write_timeout);
    u32("write_soft_limit", 1024, kMaxBytes, s.write_soft_limit);
    u32("write_hard_limit", 1024, kMaxBytes, s.write_hard_limit);
    u32("ws_max_message", 1024, 16 * 1024 * 1024, s.ws_max_message);
    u32("ws_max_fragments", 1, 1'000'000, s.ws_max_fragments);
    // Errors name the key that has to change.
    if (s.admin_reserved_connections >= s.admin.max_connections) {
        const auto v = r.get(t, "streams", "admin_reserved_connections");
        r.fail(v ? v->line() : f.line(), "streams.admin_reserved_connections",
               fmt::format("expected fewer than streams.admin_max_connections ({})", s.admin.max_connections));
    }
    if (s.write_hard_limit <= s.write_soft_limit) {
        const auto v = r.get(t, "streams", "write_hard_limit");
        r.fail(v ? v->line() : f.line(), "streams.write_hard_limit",
               fmt::format("expected more than streams.write_soft_limit ({})", s.write_soft_limit));
    }
    return s;
}

}  // namespace turnbridge::config::detail
