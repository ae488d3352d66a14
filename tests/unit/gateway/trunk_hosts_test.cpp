// SPDX-License-Identifier: Apache-2.0
// Trunk host names: when they are looked up, what is served meanwhile and after a failure.
#include <doctest/doctest.h>

#include "turnbridge/gateway/trunk_hosts.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;
using namespace std::chrono_literals;

namespace {

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

std::vector<std::string> due(TrunkHosts& h, TrunkHosts::Time now) {
    std::vector<std::string> out;
    h.due(now, out);
    return out;
}

}  // namespace

TEST_SUITE_BEGIN("net");

TEST_CASE("trunk names are looked up once at first, IP literals never") {
    TrunkHosts h;
    const TrunkHosts::Time t0{};
    h.set_names({"trunk.example.net", "192.0.2.1", "::1", "trunk.example.net"});
    CHECK(h.state("trunk.example.net") == TrunkHosts::State::Resolving);
    CHECK(h.state("192.0.2.1") == TrunkHosts::State::Unknown);
    CHECK(h.addresses("trunk.example.net").empty());
    REQUIRE(h.next_wake());
    CHECK(due(h, t0 + 1h) == std::vector<std::string>{"trunk.example.net"});
    // Under way: not due again, and nothing to wake for until the result.
    CHECK(due(h, t0 + 2h).empty());
    CHECK_FALSE(h.next_wake());
    CHECK(h.state("trunk.example.net") == TrunkHosts::State::Resolving);
}

TEST_CASE("a result serves for kTtl, then a background lookup runs while the old addresses still serve") {
    TrunkHosts h;
    const TrunkHosts::Time t0 = TrunkHosts::Time{} + 1h;
    h.set_names({"localhost"});
    REQUIRE(due(h, t0).size() == 1);
    h.on_resolved(t0, "localhost", {ip("::1"), ip("127.0.0.1"), ip("::1")});
    CHECK(h.state("localhost") == TrunkHosts::State::Ready);
    CHECK(h.addresses("localhost") == std::vector<IpAddress>{ip("::1"), ip("127.0.0.1")});   // order kept, duplicate dropped
    REQUIRE(h.next_wake());
    CHECK(*h.next_wake() == t0 + TrunkHosts::kTtl);
    CHECK(due(h, t0 + TrunkHosts::kTtl - 1s).empty());
    CHECK(due(h, t0 + TrunkHosts::kTtl) == std::vector<std::string>{"localhost"});
    CHECK(h.state("localhost") == TrunkHosts::State::Ready);   // refreshing, still usable
    h.on_resolved(t0 + TrunkHosts::kTtl, "localhost", {ip("127.0.0.2")});
    CHECK(h.addresses("localhost") == std::vector<IpAddress>{ip("127.0.0.2")});
}

TEST_CASE("a failed lookup is retried after kRetry; a name that once resolved keeps its last addresses") {
    TrunkHosts h;
    const TrunkHosts::Time t0 = TrunkHosts::Time{} + 1h;
    h.set_names({"a.example", "b.example"});
    REQUIRE(due(h, t0).size() == 2);
    h.on_resolved(t0, "a.example", {}, "unknown node or service");
    h.on_resolved(t0, "b.example", {ip("192.0.2.7")});
    CHECK(h.state("a.example") == TrunkHosts::State::Failed);
    CHECK(h.error("a.example") == "unknown node or service");
    CHECK(*h.next_wake() == t0 + TrunkHosts::kRetry);
    CHECK(due(h, t0 + TrunkHosts::kRetry) == std::vector<std::string>{"a.example"});
    CHECK(h.state("a.example") == TrunkHosts::State::Failed);   // still nothing to offer while retrying

    REQUIRE(due(h, t0 + TrunkHosts::kTtl) == std::vector<std::string>{"b.example"});
    h.on_resolved(t0 + TrunkHosts::kTtl, "b.example", {}, "temporary failure");
    CHECK(h.state("b.example") == TrunkHosts::State::Ready);
    CHECK(h.addresses("b.example") == std::vector<IpAddress>{ip("192.0.2.7")});
    CHECK(h.error("b.example") == "temporary failure");
    CHECK(*h.next_wake() == t0 + TrunkHosts::kTtl + TrunkHosts::kRetry);
}

TEST_CASE("a reload forgets names no longer used and keeps what it knows of the others") {
    TrunkHosts h;
    const TrunkHosts::Time t0 = TrunkHosts::Time{} + 1h;
    h.set_names({"a.example", "b.example"});
    due(h, t0);
    h.on_resolved(t0, "a.example", {ip("192.0.2.1")});
    h.set_names({"a.example", "c.example"});
    CHECK(h.state("b.example") == TrunkHosts::State::Unknown);
    CHECK(h.addresses("a.example") == std::vector<IpAddress>{ip("192.0.2.1")});
    CHECK(due(h, t0) == std::vector<std::string>{"c.example"});
    h.on_resolved(t0, "b.example", {ip("192.0.2.2")});   // a lookup that outlived its name
    CHECK(h.state("b.example") == TrunkHosts::State::Unknown);
}

TEST_SUITE_END();
