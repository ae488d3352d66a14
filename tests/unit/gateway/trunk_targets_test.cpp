// SPDX-License-Identifier: Apache-2.0
// The order a call tries a trunk's targets in (issue 14): RFC 2782 priority, then weight;
// and the OPTIONS health that leaves down targets out.
#include <doctest/doctest.h>

#include "turnbridge/gateway/trunk_health.hpp"
#include "turnbridge/gateway/trunk_targets.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;

namespace {

Endpoint ep(std::uint16_t port) { return Endpoint{*IpAddress::parse("127.0.0.1"), port}; }

// A deterministic xorshift, enough to see the weights.
struct Rng {
    std::uint64_t s = 88172645463325252ull;
    std::uint64_t operator()() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
};

}  // namespace

TEST_SUITE_BEGIN("gateway");

TEST_CASE("SRV targets: the lowest priority first, whatever the weights (RFC 2782)") {
    const std::vector<TrunkTarget> t{{20, 100, ep(5002)}, {10, 0, ep(5001)}, {30, 5, ep(5003)}, {10, 0, ep(5004)}};
    Rng rng;
    for (int i = 0; i < 20; ++i) {
        auto order = order_targets(t, std::ref(rng));
        REQUIRE(order.size() == 4);
        CHECK((order[0] == ep(5001) || order[0] == ep(5004)));
        CHECK((order[1] == ep(5001) || order[1] == ep(5004)));
        CHECK(order[2] == ep(5002));
        CHECK(order[3] == ep(5003));
    }
}

TEST_CASE("SRV targets: within a priority, picked first in proportion to weight (RFC 2782)") {
    const std::vector<TrunkTarget> t{{10, 60, ep(5001)}, {10, 20, ep(5002)}, {10, 20, ep(5003)}};
    Rng rng;
    int first[3] = {0, 0, 0};
    constexpr int kRounds = 5000;
    for (int i = 0; i < kRounds; ++i) {
        auto order = order_targets(t, std::ref(rng));
        REQUIRE(order.size() == 3);
        ++first[order[0].port - 5001];
    }
    CHECK(first[0] > kRounds * 55 / 100);
    CHECK(first[0] < kRounds * 65 / 100);
    CHECK(first[1] > kRounds * 16 / 100);
    CHECK(first[2] > kRounds * 16 / 100);
}

TEST_CASE("SRV targets: weight 0 is rarely first beside weighted ones, but always tried") {
    const std::vector<TrunkTarget> t{{10, 0, ep(5001)}, {10, 100, ep(5002)}};
    Rng rng;
    int zero_first = 0;
    for (int i = 0; i < 1000; ++i) {
        auto order = order_targets(t, std::ref(rng));
        REQUIRE(order.size() == 2);
        if (order[0] == ep(5001)) ++zero_first;
    }
    CHECK(zero_first < 30);   // 1 in 101
}

TEST_CASE("targets marked down are skipped, unless all are down") {
    const std::vector<TrunkTarget> t{{10, 0, ep(5001)}, {20, 0, ep(5002)}};
    Rng rng;
    auto order = order_targets(t, std::ref(rng), [](const Endpoint& e) { return e.port == 5001; });
    CHECK(order == std::vector<Endpoint>{ep(5002)});
    order = order_targets(t, std::ref(rng), [](const Endpoint&) { return true; });
    CHECK(order == std::vector<Endpoint>{ep(5001), ep(5002)});
}

TEST_CASE("OPTIONS health: 3 unanswered probes in a row mark a target down, one answer up again") {
    using namespace std::chrono_literals;
    TrunkHealth h;
    const TrunkHealth::Time t0{};
    h.set_targets("r", "default", {ep(5001), ep(5002)});
    CHECK_FALSE(h.down("r", "default", ep(5001)));
    CHECK_FALSE(h.probe_sent(t0, "r", "default", ep(5001)));          // the first probe: nothing missed yet
    CHECK_FALSE(h.on_response(t0 + 20ms, "r", "default", ep(5001), 200));
    REQUIRE(h.targets().front().rtt);
    CHECK(*h.targets().front().rtt == 20ms);
    CHECK(h.targets().front().last_status == 200);
    CHECK_FALSE(h.probe_sent(t0 + 1s, "r", "default", ep(5001)));
    CHECK_FALSE(h.probe_sent(t0 + 2s, "r", "default", ep(5001)));     // miss 1
    CHECK_FALSE(h.probe_sent(t0 + 3s, "r", "default", ep(5001)));     // miss 2
    CHECK(h.probe_sent(t0 + 4s, "r", "default", ep(5001)));           // miss 3: down
    CHECK(h.down("r", "default", ep(5001)));
    CHECK_FALSE(h.down("r", "default", ep(5002)));
    CHECK_FALSE(h.down("other", "default", ep(5001)));                // health is per realm, trunk and target
    CHECK_FALSE(h.down("r", "b", ep(5001)));
    CHECK(h.on_response(t0 + 4s + 5ms, "r", "default", ep(5001), 404));   // any answer: alive
    CHECK_FALSE(h.down("r", "default", ep(5001)));
    CHECK(h.targets().front().misses == 0);
    CHECK_FALSE(h.on_response(t0 + 5s, "r", "default", ep(5001), 200));   // no probe in flight: ignored
}

TEST_CASE("OPTIONS health: targets no longer listed are forgotten, an empty list forgets the realm") {
    TrunkHealth h;
    h.set_targets("r", "default", {ep(5001), ep(5002)});
    h.set_targets("s", "default", {ep(5001)});
    h.set_targets("r", "default", {ep(5002)});
    CHECK(h.targets().size() == 2);
    h.set_targets("r", "default", {});
    REQUIRE(h.targets().size() == 1);
    CHECK(h.targets().front().realm == "s");
}
