// SPDX-License-Identifier: Apache-2.0
// gateway::GatewayShared: what the workers' gateways share (issue 12): TransportIds naming their
// worker, placement of new calls on the least loaded worker, live calls counted process-wide,
// and the bounded SIP mailboxes between workers.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "turnbridge/gateway/gateway_shared.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;

namespace {
const sip::Time t0{};
}

TEST_CASE("A TransportId names the worker that owns its flow") {
    for (unsigned w : {0u, 1u, 7u, 65535u}) {
        const auto id = flow_id(w, 123456789);
        CHECK(flow_owner(id) == w);
        CHECK((id & ((1ULL << 48) - 1)) == 123456789);
    }
    CHECK(flow_id(1, 5) != flow_id(2, 5));
}

TEST_CASE("New calls go to the least loaded worker; their Call-ID keeps its worker") {
    GatewayShared shared(2, 100);
    shared.call_started(0, "example.org", "alice", "busy-call");
    CHECK(shared.load(0) == 1);
    const unsigned w = shared.route(t0, "new-call", true);
    CHECK(w == 1);
    // Later messages of that call (ACK, BYE, a retry after 407) reach the same worker.
    CHECK(shared.route(t0, "new-call", false) == 1);
    CHECK(shared.route(t0, "new-call", true) == 1);
    // Our own Call-IDs carry their worker.
    CHECK(shared.route(t0, sip::Placement::mark(0) + "abc", false) == 0);
    CHECK(shared.route(t0, sip::Placement::mark(1) + "abc", false) == 1);
}

TEST_CASE("Live calls count across workers (gateway.max_calls, max_calls_per_user)") {
    GatewayShared shared(2, 100);
    shared.call_started(0, "example.org", "alice", "c1");
    shared.call_started(1, "example.org", "alice", "c2");
    shared.call_started(1, "example.org", "", "c3");   // an inbound call nobody answered yet
    CHECK(shared.live("example.org", "alice") == std::pair<std::uint32_t, std::uint32_t>{3, 2});
    shared.add_user(1, "example.org", "bob");               // c3 answered by bob
    CHECK(shared.live("example.org", "bob").second == 1);
    shared.call_ended(t0, 1, "example.org", "alice", "c2");
    shared.call_ended(t0, 1, "example.org", "bob", "c3");
    CHECK(shared.live("example.org", "alice") == std::pair<std::uint32_t, std::uint32_t>{1, 1});
    CHECK(shared.live("example.org", "bob").second == 0);
    CHECK(shared.load(0) == 1);
    CHECK(shared.load(1) == 0);
}

TEST_CASE("A user's new call goes to the worker of their live call (issue 14, attended transfer)") {
    GatewayShared shared(3, 100);
    shared.call_started(0, "example.org", "x", "busy0");   // load: worker 0 is the busiest
    shared.call_started(2, "example.org", "alice", "a1");
    // Least loaded would be worker 1; alice's live call is on worker 2.
    CHECK(shared.route(t0, "a2", true, "alice@example.org") == 2);
    CHECK(shared.placed("a2") == 2u);
    CHECK(shared.route(t0, "b1", true, "bob@example.org") == 1);   // no live call: least loaded
    CHECK(shared.route(t0, "a2", true, "alice@example.org") == 2);  // the choice is kept
    CHECK_FALSE(shared.placed("nosuch"));
    // Her call joined away (drop_user) or ended: no affinity any more.
    shared.drop_user(2, "example.org", "alice");
    CHECK(shared.live("example.org", "alice").second == 0);
    CHECK(shared.route(t0, "a3", true, "alice@example.org") != 2);
    shared.call_ended(t0, 2, "example.org", "", "a1");
    CHECK(shared.live("example.org", "").first == 1);
}

TEST_CASE("SIP mail: one wake-up per empty box, detached boxes drop, bounded in bytes") {
    GatewayShared shared(2, 100);
    int wakes = 0;
    std::vector<SipMail> got;
    SipMail m;
    m.bytes = "OPTIONS sip:x SIP/2.0\r\n\r\n";
    shared.post(1, m);   // not attached yet: dropped
    shared.take(1, got);
    CHECK(got.empty());
    shared.attach(1, [&] { ++wakes; });
    shared.post(1, m);
    shared.post(1, m);
    CHECK(wakes == 1);   // the second post finds mail waiting: its wake-up is on its way
    shared.take(1, got);
    CHECK(got.size() == 2);
    shared.post(1, m);
    CHECK(wakes == 2);
    shared.take(1, got);
    // A stalled worker: its box fills to kMaxMailBytes, then posts are dropped and counted.
    SipMail big;
    big.bytes.assign(64 * 1024, 'x');
    const std::size_t fit = GatewayShared::kMaxMailBytes / big.bytes.size();
    for (std::size_t i = 0; i < fit + 10; ++i) shared.post(1, big);
    CHECK(shared.dropped() == 10);
    shared.take(1, got);
    CHECK(got.size() == fit);
    shared.post(1, big);   // taken: room again
    shared.take(1, got);
    CHECK(got.size() == 1);
    shared.detach(1);
    shared.post(1, m);
    shared.take(1, got);
    CHECK(got.empty());
}
