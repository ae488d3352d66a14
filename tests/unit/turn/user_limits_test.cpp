// SPDX-License-Identifier: Apache-2.0
// The limits of a public server (issue 11): allocations per user, permissions and channels per
// allocation, and password guessing on long-term credentials.
#include <string>

#include "harness.hpp"

namespace {

std::string peer(int i) {
    return "127.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":40000";
}

struct Allocated {
    Bench b;
    Client c{b, tuple("198.51.100.7:5000")};
    explicit Allocated(std::uint32_t permissions = 64, std::uint32_t channels = 64) {
        b.cfg->allowed_peers = {*tb::Cidr::parse("127.0.0.0/8")};
        b.cfg->max_permissions_per_allocation = permissions;
        b.cfg->max_channels_per_allocation = channels;
        b.restart();
        REQUIRE(c.allocate().success());
    }
};

}  // namespace

TEST_CASE("The 11th Allocate of one user gets 486 under the default max_allocations_per_user; others still allocate") {
    Bench b;
    CHECK(b.cfg->max_allocations_per_user == 10);
    std::vector<Client> mine;
    for (int i = 0; i < 10; ++i) {
        mine.emplace_back(b, tuple(("198.51.100.7:" + std::to_string(5000 + i)).c_str()));
        REQUIRE(mine.back().allocate().success());
    }
    Client eleventh(b, tuple("198.51.100.7:5010"));
    CHECK(eleventh.allocate().code() == 486);  // RFC 8656 §7.2: Allocation Quota Reached
    CHECK(b.server->stats().user_allocation_refusals == 1);
    Client other(b, tuple("198.51.100.8:5000"), "other", "pass2");
    CHECK(other.allocate().success());
    // One of them ends: the user may allocate again.
    REQUIRE(mine.front().refresh(0).success());
    CHECK(eleventh.allocate().success());
}

TEST_CASE("CreatePermission past max_permissions_per_allocation gets 508 (RFC 8656 §10.2); refreshing still works") {
    Allocated t(4);
    REQUIRE(t.c.create_permission({"127.0.0.1:0", "127.0.0.2:0"}).success());
    REQUIRE(t.c.create_permission({"127.0.0.3:0", "127.0.0.3:1"}).success());  // one address, one permission
    CHECK(t.c.create_permission({"127.0.0.4:0", "127.0.0.5:0"}).code() == 508);
    CHECK(t.b.server->stats().permission_cap_refusals == 1);
    CHECK(t.c.create_permission({"127.0.0.4:0"}).success());
    CHECK(t.c.create_permission({"127.0.0.5:0"}).code() == 508);
    // Installed ones refresh at the cap, alone or together.
    CHECK(t.c.create_permission({"127.0.0.1:0", "127.0.0.4:0"}).success());
    // ChannelBind toward a new address would add a permission too.
    CHECK(t.c.channel_bind(0x4000, "127.0.0.6:40000").code() == 508);
    CHECK(t.c.channel_bind(0x4000, "127.0.0.2:40000").success());
    CHECK(t.b.server->stats().permission_cap_refusals == 3);
}

TEST_CASE("CreatePermission for 200 addresses on one allocation stops at the default cap of 64 (RFC 8656 §10.2: 508)") {
    Allocated t;
    int ok = 0;
    int refused = 0;
    for (int i = 0; i < 200; ++i) {
        const auto p = peer(i);
        const auto code = t.c.create_permission({p.c_str()}).code();
        if (code == 0) ++ok;
        else if (code == 508) ++refused;
    }
    CHECK(ok == 64);
    CHECK(refused == 136);
}

TEST_CASE("ChannelBind past max_channels_per_allocation gets 508 (RFC 8656 §12.2); rebinding a bound channel still works") {
    Allocated t(64, 2);
    REQUIRE(t.c.channel_bind(0x4000, "127.0.0.1:40000").success());
    REQUIRE(t.c.channel_bind(0x4001, "127.0.0.1:40001").success());
    CHECK(t.c.channel_bind(0x4002, "127.0.0.1:40002").code() == 508);
    CHECK(t.b.server->stats().channel_cap_refusals == 1);
    CHECK(t.c.channel_bind(0x4001, "127.0.0.1:40001").success());
}

TEST_CASE("A source over auth_failures_per_minute gets 401 without a check; the right password from elsewhere works") {
    Bench b;
    tb::AuthThrottle throttle(5, 1);
    b.server = std::make_unique<turn::Server>(turn::SharedState{b.cfg, &b.nonces, &b.quota, 0, nullptr, &throttle},
                                              b.binder);
    Client guesser(b, tuple("203.0.113.5:4000"), "test", "guess");
    for (int i = 0; i < 50; ++i) CHECK(guesser.allocate().code() == 401);
    CHECK(b.server->stats().auth_failures == 5);  // checked: the bucket's depth
    CHECK(b.server->stats().auth_throttled == 45);
    CHECK(throttle.counters().throttled[0] == 45);
    // The right password from the guessing source is not even checked now ...
    Client same_source(b, tuple("203.0.113.5:4001"), "test", "secret");
    CHECK(same_source.allocate().code() == 401);
    // ... but the user's own address is clean, so the user gets in.
    Client owner(b, tuple("198.51.100.7:5000"), "test", "secret");
    CHECK(owner.allocate().success());
    // A minute later the guesser's bucket is full again.
    b.advance(std::chrono::seconds(60));
    CHECK(same_source.allocate().success());
}
