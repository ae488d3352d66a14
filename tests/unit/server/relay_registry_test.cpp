// SPDX-License-Identifier: Apache-2.0
// Relay port allocation (RFC 8656 §7.2): an Allocate that finds no free port fails fast.
#include "turnbridge/server/relay_registry.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <set>

using namespace turnbridge;
using namespace turnbridge::server;

namespace {

// Counts bind() calls; ports in `foreign` are another process's (EADDRINUSE). The fds are
// never real: the tests make no reservations, so the registry closes none of them.
struct FakeBind {
    int calls = 0;
    std::set<std::uint16_t> foreign;
    RelayRegistry::BindFn fn() {
        return [this](const IpAddress&, std::uint16_t port) {
            ++calls;
            return foreign.contains(port) ? -EADDRINUSE : 100000 + port;
        };
    }
};

const IpAddress kIp = *IpAddress::parse("192.0.2.1");

}  // namespace

TEST_CASE("An Allocate that finds every relay port held fails with 508 without a single bind() call") {
    FakeBind fake;
    RelayRegistry registry(fake.fn());
    const PortRange range{50000, 50999};
    std::uint64_t token = 0;
    std::set<std::uint16_t> ports;
    for (int i = 0; i < 1000; ++i) {
        auto r = registry.bind(kIp, range, false, false, token);
        REQUIRE(r);
        ports.insert(r->local.port);
    }
    CHECK(ports.size() == 1000);
    CHECK(fake.calls == 1000);  // each port probed once: held ports are skipped without a syscall
    auto refused = registry.bind(kIp, range, false, false, token);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == StunCode::InsufficientCapacity);
    CHECK(fake.calls == 1000);
    // A port given back is found again, with one bind() call.
    registry.release(Endpoint{kIp, 50500});
    auto again = registry.bind(kIp, range, false, false, token);
    REQUIRE(again);
    CHECK(again->local.port == 50500);
    CHECK(fake.calls == 1001);
}

TEST_CASE("Ports held by other processes are probed at most kMaxBindAttempts times per Allocate") {
    FakeBind fake;
    for (std::uint16_t p = 50000; p < 51000; ++p) fake.foreign.insert(p);
    RelayRegistry registry(fake.fn());
    std::uint64_t token = 0;
    CHECK_FALSE(registry.bind(kIp, PortRange{50000, 50999}, false, false, token));
    CHECK(fake.calls == kMaxBindAttempts);
    CHECK(registry.held_count(kIp) == 0);
}
