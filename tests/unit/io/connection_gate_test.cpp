// SPDX-License-Identifier: Apache-2.0
// io::ConnectionGate: the global and per-source-IP caps of a listener kind (issue 11).
#include <doctest/doctest.h>

#include <vector>

#include "turnbridge/io/connection_gate.hpp"

using namespace turnbridge;
using namespace turnbridge::io;

namespace {
IpAddress ip(const char* s) { return *IpAddress::parse(s); }
}  // namespace

TEST_CASE("the per-IP cap refuses one source while others still get in") {
    StreamStats stats;
    ConnectionGate gate(StreamKind::Sip, stats);
    gate.set_limits({10, 3});
    std::vector<GateTicket> held;
    for (int i = 0; i < 3; ++i) held.push_back(gate.admit(ip("127.0.0.3")));
    for (const auto& t : held) CHECK(static_cast<bool>(t));
    CHECK_FALSE(gate.admit(ip("127.0.0.3")));
    CHECK(static_cast<bool>(gate.admit(ip("127.0.0.4"))));  // admitted, then released at once
    const auto c = stats.snapshot();
    CHECK(c.refused[2][static_cast<std::size_t>(Refusal::PerIp)] == 1);
    CHECK(c.refused[2][static_cast<std::size_t>(Refusal::Global)] == 0);
    CHECK(c.open[2] == 3);
    CHECK(gate.open_from(ip("127.0.0.3")) == 3);
}

TEST_CASE("the global cap refuses every source once full, and a closed connection frees its slot") {
    StreamStats stats;
    ConnectionGate gate(StreamKind::Turn, stats);
    gate.set_limits({4, 0});
    std::vector<GateTicket> held;
    for (int i = 0; i < 4; ++i) held.push_back(gate.admit(ip(i % 2 ? "10.0.0.1" : "10.0.0.2")));
    CHECK(gate.open() == 4);
    CHECK_FALSE(gate.admit(ip("10.0.0.9")));
    CHECK(stats.snapshot().refused[0][static_cast<std::size_t>(Refusal::Global)] == 1);
    held.front().reset();
    held.front().reset();  // idempotent: one slot back, not two
    CHECK(gate.open() == 3);
    GateTicket again = gate.admit(ip("10.0.0.9"));
    CHECK(static_cast<bool>(again));
    CHECK_FALSE(gate.admit(ip("10.0.0.9")));
}

TEST_CASE("a moved ticket releases its slot exactly once") {
    StreamStats stats;
    ConnectionGate gate(StreamKind::Admin, stats);
    gate.set_limits({2, 2});
    {
        GateTicket a = gate.admit(ip("::1"));
        GateTicket b = std::move(a);
        CHECK_FALSE(a);
        CHECK(gate.open() == 1);
        GateTicket c;
        c = std::move(b);
        CHECK(gate.open() == 1);
    }
    CHECK(gate.open() == 0);
    CHECK(stats.snapshot().open[3] == 0);
}

TEST_CASE("IPv6 sources are counted per /64 (RFC 4291 §2.5.4): one host cannot multiply the per-IP cap") {
    StreamStats stats;
    ConnectionGate gate(StreamKind::WebSocket, stats);
    gate.set_limits({100, 2});
    GateTicket a = gate.admit(ip("2001:db8:1:2::1"));
    GateTicket b = gate.admit(ip("2001:db8:1:2::ffff:1"));
    CHECK(a);
    CHECK(b);
    CHECK_FALSE(gate.admit(ip("2001:db8:1:2:abcd::7")));
    CHECK(static_cast<bool>(gate.admit(ip("2001:db8:1:3::1"))));
}

TEST_CASE("lowered limits apply to new connections; open ones stay") {
    StreamStats stats;
    ConnectionGate gate(StreamKind::Turn, stats);
    gate.set_limits({0, 0});  // 0 = no cap
    std::vector<GateTicket> held;
    for (int i = 0; i < 50; ++i) held.push_back(gate.admit(ip("192.0.2.1")));
    CHECK(gate.open() == 50);
    gate.set_limits({10, 5});
    CHECK(gate.open() == 50);
    CHECK_FALSE(gate.admit(ip("192.0.2.2")));
}
