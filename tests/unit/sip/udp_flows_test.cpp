// SPDX-License-Identifier: Apache-2.0
// The gateway's SIP-over-UDP flow table (issue 11): bounded, least recently used first, and
// never evicting a flow that is in use (a trunk's, a call's, a transaction's).
#include <doctest/doctest.h>

#include <set>

#include "turnbridge/sip/udp_flows.hpp"

using namespace turnbridge;
using namespace turnbridge::sip;
using namespace std::chrono_literals;

namespace {

const Time kT0 = Time{} + 100h;

Endpoint source(int i) {
    return Endpoint{*IpAddress::parse("127.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 3)), 5060};
}

}  // namespace

TEST_CASE("a full UDP flow table gives the least recently used flow's place to a new source") {
    UdpFlows t(4);
    TransportId next = 1;
    for (int i = 0; i < 4; ++i) {
        auto o = t.open(kT0 + std::chrono::seconds(i), source(i), 0, next, {});
        REQUIRE(o);
        CHECK(o->created);
        ++next;
    }
    // Source 0 speaks again: it is now the most recently used; source 1 is the oldest.
    auto again = t.open(kT0 + 10s, source(0), 0, next, {});
    REQUIRE(again);
    CHECK_FALSE(again->created);
    CHECK(again->id == 1);
    auto fresh = t.open(kT0 + 11s, source(100), 0, next, {});
    REQUIRE(fresh);
    CHECK(fresh->created);
    CHECK(t.size() == 4);
    CHECK(t.evicted() == 1);
    CHECK_FALSE(t.find(source(1)));   // evicted
    CHECK(t.find(source(0)) == 1);
    CHECK(t.find(fresh->id) != nullptr);
}

TEST_CASE("a flow in use (the trunk's) is never evicted by a spray of new sources") {
    UdpFlows t(16);
    TransportId next = 1;
    const Endpoint trunk{*IpAddress::parse("127.0.0.1"), 5070};
    auto busy = [&](const UdpFlows::Flow& f) { return f.remote == trunk; };
    auto first = t.open(kT0, trunk, 0, next++, busy);
    REQUIRE(first);
    for (int i = 0; i < 10'000; ++i) {
        auto o = t.open(kT0 + std::chrono::milliseconds(i), source(i), 0, next, busy);
        REQUIRE(o);
        if (o->created) ++next;
    }
    CHECK(t.size() == 16);
    CHECK(t.find(trunk) == first->id);
    CHECK(t.evicted() == 10'000 - 15);
}

TEST_CASE("when every flow looked at is in use a new source is refused, and counted") {
    UdpFlows t(UdpFlows::kEvictScan);
    TransportId next = 1;
    auto all_busy = [](const UdpFlows::Flow&) { return true; };
    for (std::size_t i = 0; i < UdpFlows::kEvictScan; ++i) REQUIRE(t.open(kT0, source(int(i)), 0, next++, all_busy));
    CHECK_FALSE(t.open(kT0 + 1s, source(999), 0, next, all_busy));
    CHECK(t.refused() == 1);
    CHECK(t.evicted() == 0);
    CHECK(t.size() == UdpFlows::kEvictScan);
}

TEST_CASE("flows idle for `idle` are expired unless in use; close forgets one at once") {
    UdpFlows t(8);
    TransportId next = 1;
    for (int i = 0; i < 4; ++i) REQUIRE(t.open(kT0, source(i), 0, next++, {}));
    REQUIRE(t.open(kT0 + 50s, source(4), 0, next++, {}));
    const std::set<TransportId> in_use{2};
    auto busy = [&](const UdpFlows::Flow& f) { return in_use.contains(f.id); };
    CHECK(t.expire(kT0 + 60s, 60s, busy) == 3);   // 1, 3, 4; 2 is in use; 5 spoke 10 s ago
    CHECK(t.size() == 2);
    CHECK(t.find(TransportId{2}) != nullptr);
    CHECK(t.find(TransportId{5}) != nullptr);
    t.close(5);
    CHECK(t.find(TransportId{5}) == nullptr);
    CHECK_FALSE(t.find(source(4)));
    CHECK(t.size() == 1);
}
