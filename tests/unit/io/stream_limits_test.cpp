// SPDX-License-Identifier: Apache-2.0
// [streams] limits fitted to the process's file descriptor limit (issue 11: 1,100 idle SIP/TCP
// connections used up 1,024 descriptors and every Allocate failed with 508).
#include <doctest/doctest.h>

#include "turnbridge/io/stream_limits.hpp"

using namespace turnbridge;
using namespace turnbridge::io;

TEST_CASE("caps that do not fit the descriptor limit are scaled down, leaving the reserve free") {
    std::array<GateLimits, kStreamKinds> l{GateLimits{8192, 128}, GateLimits{4096, 64}, GateLimits{1024, 32}, GateLimits{}};
    CHECK(fit_to_fd_limit(l, 1024, 300));
    std::uint64_t total = 0;
    for (const auto& g : l) total += g.max_connections;
    CHECK(total <= 1024 - 300);
    CHECK(l[0].max_connections > l[1].max_connections);  // in proportion
    CHECK(l[2].max_connections >= 1);
    CHECK(l[0].max_per_ip == 128);                       // per-IP caps untouched
    CHECK(l[3].max_connections == 0);                    // an unused kind stays unused

    SUBCASE("caps that fit are left alone") {
        std::array<GateLimits, kStreamKinds> small{GateLimits{100, 1}, GateLimits{100, 1}, GateLimits{}, GateLimits{}};
        CHECK_FALSE(fit_to_fd_limit(small, 1'048'576, 17'000));
        CHECK(small[0].max_connections == 100);
    }
}

TEST_CASE("the gates take the [streams] defaults for the kinds a configuration listens on") {
    config::Config cfg;
    cfg.listen.push_back(*Endpoint::parse("127.0.0.1:3478"));
    cfg.relay_port_min = 50000;
    cfg.relay_port_max = 50099;
    StreamGates gates;
    gates.apply(cfg, 1'048'576);
    CHECK(gates.gate(StreamKind::Turn).limits().max_connections == cfg.streams.turn.max_connections);
    CHECK(gates.gate(StreamKind::Admin).limits().max_per_ip == cfg.streams.admin.max_connections_per_ip);
    gates.apply(cfg, 2048);
    CHECK(gates.gate(StreamKind::Turn).limits().max_connections <= 2048 - 100 - 256);
    CHECK(gates.gate(StreamKind::Admin).limits().max_connections == cfg.streams.admin.max_connections);
}

TEST_CASE("guard limits of each kind come from [streams]") {
    config::Streams s;
    s.ws.idle_timeout = std::chrono::seconds(77);
    s.message_timeout = std::chrono::seconds(3);
    const auto g = guard_limits(s, StreamKind::WebSocket);
    CHECK(g.idle_ms == 77'000);
    CHECK(g.message_ms == 3000);
    CHECK(g.write_hard == s.write_hard_limit);
    CHECK(guard_limits(s, StreamKind::Turn).idle_ms == 30'000);
}
