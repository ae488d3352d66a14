// SPDX-License-Identifier: Apache-2.0
// on_timer through the deadline heap: allocations, permissions and channels expire on time
// (RFC 8656 §6, §7.3, §9, §12) whichever request moved their deadline last.
#include "harness.hpp"

namespace {

void allocate_ok(Client& c) { REQUIRE(c.allocate().success()); }

}  // namespace

TEST_CASE("a Refresh that shortens the lifetime ends the allocation at the new time (RFC 8656 §7.3)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    allocate_ok(c);
    REQUIRE(c.refresh(3600).success());
    REQUIRE(c.refresh(60).success());
    b.advance(std::chrono::seconds(59));
    b.server->on_timer(b.now);
    CHECK(b.server->allocation_count() == 1);
    b.advance(std::chrono::seconds(1));
    b.server->on_timer(b.now);
    CHECK(b.server->allocation_count() == 0);
    CHECK(b.binder.open_handles.empty());
}

TEST_CASE("a Refresh that lengthens the lifetime keeps the allocation past its first deadline") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    allocate_ok(c);
    b.advance(std::chrono::seconds(500));
    REQUIRE(c.refresh(600).success());
    b.advance(std::chrono::seconds(500));  // past the original 600 s
    b.server->on_timer(b.now);
    CHECK(b.server->allocation_count() == 1);
    b.advance(std::chrono::seconds(100));
    b.server->on_timer(b.now);
    CHECK(b.server->allocation_count() == 0);
}

TEST_CASE("many allocations expire each at its own deadline, no earlier and no later") {
    Bench b;
    b.cfg->allowed_peers = {*tb::Cidr::parse("127.0.0.0/8")};
    b.cfg->max_allocations_per_user = 0;  // 20 of one user
    b.restart();
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 20; ++i) {
        const std::string addr = "198.51.100.7:" + std::to_string(6000 + i);
        clients.push_back(std::make_unique<Client>(b, tuple(addr.c_str())));
        allocate_ok(*clients.back());
        REQUIRE(clients.back()->refresh(static_cast<std::uint32_t>(100 + 10 * i)).success());
    }
    for (int s = 0; s < 300; s += 10) {
        b.advance(std::chrono::seconds(10));
        b.server->on_timer(b.now);
        const std::size_t alive = b.server->allocation_count();
        int expect = 0;
        for (int i = 0; i < 20; ++i) expect += 100 + 10 * i > s + 10;
        CAPTURE(s);
        CHECK(alive == static_cast<std::size_t>(expect));
    }
    CHECK(b.binder.open_handles.empty());
}

TEST_CASE("a channel bound on a long-lived allocation leaves quarantine on time (RFC 8656 §12)") {
    Bench b;
    b.cfg->allowed_peers = {*tb::Cidr::parse("127.0.0.0/8")};
    b.restart();
    Client c(b, tuple("198.51.100.7:5000"));
    allocate_ok(c);
    REQUIRE(c.refresh(3600).success());  // the allocation's own deadline is far away
    REQUIRE(c.channel_bind(0x4001, "127.0.0.1:40000").success());
    b.advance(std::chrono::seconds(600 + 300));
    b.server->on_timer(b.now);
    // Only an on_timer that saw the channel's deadline (not the allocation's) freed the number.
    CHECK(c.channel_bind(0x4001, "127.0.0.1:40009").success());
}
