// SPDX-License-Identifier: Apache-2.0
// Allocations with many channels and permissions: the hash index behind the per-packet lookups
// agrees with the RFC 8656 §9 and §12 rules, across ChannelBind appends and timer expiry.
#include "harness.hpp"

#include <string>

namespace {

std::vector<std::uint8_t> channel_data(std::uint16_t ch, std::uint8_t fill) {
    return {std::uint8_t(ch >> 8), std::uint8_t(ch), 0, 4, fill, fill, fill, fill};
}

struct Many {
    Bench b;
    Client c{b, tuple("198.51.100.7:5000")};
    turn::RelayHandle relay = 0;
    Many() {
        b.cfg->allowed_peers = {*tb::Cidr::parse("127.0.0.0/8")};
        b.restart();
        REQUIRE(c.allocate().success());
        REQUIRE(c.refresh(3600).success());
        relay = *b.binder.open_handles.begin();
    }
    void bind(std::uint16_t ch, const std::string& peer) { REQUIRE(c.channel_bind(ch, peer.c_str()).success()); }
    // ChannelData on `ch` reaches `peer` (or nothing is sent when peer is empty).
    void check_to_peer(std::uint16_t ch, const std::string& peer) {
        CAPTURE(ch);
        b.send(c.five_tuple(), channel_data(ch, 9));
        if (peer.empty()) {
            CHECK(b.out.empty());
            return;
        }
        REQUIRE(b.out.size() == 1);
        const auto* tp = std::get_if<turn::ToPeer>(&b.out[0]);
        REQUIRE(tp != nullptr);
        CHECK(tp->peer == *tb::Endpoint::parse(peer));
    }
    // Data from `peer` reaches the client as ChannelData on `ch`.
    void check_from_peer(const std::string& peer, std::uint16_t ch) {
        CAPTURE(peer);
        const std::vector<std::uint8_t> data = {1, 2, 3};
        b.from_peer(relay, *tb::Endpoint::parse(peer), data);
        REQUIRE(b.out.size() == 1);
        const auto* tc = std::get_if<turn::ToClient>(&b.out[0]);
        REQUIRE(tc != nullptr);
        REQUIRE(tc->head.size() == 4);
        CHECK((tc->head[0] << 8 | tc->head[1]) == ch);
    }
};

std::string peer(int host, int port) { return "127.0.0." + std::to_string(host) + ":" + std::to_string(port); }

}  // namespace

TEST_CASE("40 channels on one allocation: each number and each peer finds its own binding (RFC 8656 §12)") {
    Many m;
    for (int i = 0; i < 40; ++i) m.bind(static_cast<std::uint16_t>(0x4000 + i), peer(1 + i % 5, 41000 + i));
    for (int i = 0; i < 40; ++i) {
        m.check_to_peer(static_cast<std::uint16_t>(0x4000 + i), peer(1 + i % 5, 41000 + i));
        m.check_from_peer(peer(1 + i % 5, 41000 + i), static_cast<std::uint16_t>(0x4000 + i));
    }
    m.check_to_peer(0x4000 + 40, "");  // never bound
    // Same IP, unbound port: a permission exists (IP only, §9) but no channel, so a Data indication.
    m.b.from_peer(m.relay, *tb::Endpoint::parse(peer(1, 40999)), std::vector<std::uint8_t>{1});
    REQUIRE(m.b.out.size() == 1);
    CHECK(std::get<turn::ToClient>(m.b.out[0]).head.size() > 4);
    // No permission for 127.0.0.9: dropped.
    m.b.from_peer(m.relay, *tb::Endpoint::parse(peer(9, 41000)), std::vector<std::uint8_t>{1});
    CHECK(m.b.out.empty());
    // The conflict rules still hold with many bindings.
    CHECK(m.c.channel_bind(0x4005, peer(1, 50000).c_str()).code() == 400);
    CHECK(m.c.channel_bind(0x4100, peer(1 + 7 % 5, 41007).c_str()).code() == 400);
}

TEST_CASE("many channels: expiry and quarantine end move positions and lookups follow (RFC 8656 §12)") {
    Many m;
    for (int i = 0; i < 20; ++i) m.bind(static_cast<std::uint16_t>(0x4000 + i), peer(1, 41000 + i));
    m.b.advance(std::chrono::seconds(400));
    for (int i = 0; i < 12; ++i) m.bind(static_cast<std::uint16_t>(0x4100 + i), peer(3, 42000 + i));
    m.b.advance(std::chrono::seconds(250));  // t = 650: the first 20 expired, still quarantined
    m.b.server->on_timer(m.b.now);
    for (int i = 0; i < 20; ++i) m.check_to_peer(static_cast<std::uint16_t>(0x4000 + i), "");
    for (int i = 0; i < 12; ++i) m.check_to_peer(static_cast<std::uint16_t>(0x4100 + i), peer(3, 42000 + i));
    CHECK(m.c.channel_bind(0x4000, peer(2, 43000).c_str()).code() == 400);  // quarantined
    m.b.advance(std::chrono::seconds(250));  // t = 900: quarantine over, the first 20 are gone
    m.b.server->on_timer(m.b.now);
    for (int i = 0; i < 12; ++i) m.check_to_peer(static_cast<std::uint16_t>(0x4100 + i), peer(3, 42000 + i));
    m.bind(0x4000, peer(2, 43000));  // the number is free again, for another peer
    m.check_to_peer(0x4000, peer(2, 43000));
    m.check_from_peer(peer(2, 43000), 0x4000);
    m.bind(0x4001, peer(1, 41000));  // and the old peer may take another number
    m.check_to_peer(0x4001, peer(1, 41000));
    m.check_from_peer(peer(1, 41000), 0x4001);
}

TEST_CASE("many permissions: each expires on its own and a refresh keeps it (RFC 8656 §9)") {
    Many m;
    for (int i = 0; i < 30; ++i) REQUIRE(m.c.create_permission({peer(10 + i, 1).c_str()}).success());
    m.b.advance(std::chrono::seconds(200));
    for (int i = 0; i < 30; i += 2) REQUIRE(m.c.create_permission({peer(10 + i, 1).c_str()}).success());
    m.b.advance(std::chrono::seconds(150));  // t = 350: odd ones expired, even ones refreshed
    m.b.server->on_timer(m.b.now);
    for (int i = 0; i < 30; ++i) {
        CAPTURE(i);
        m.b.from_peer(m.relay, *tb::Endpoint::parse(peer(10 + i, 7)), std::vector<std::uint8_t>{1});
        CHECK(m.b.out.size() == (i % 2 == 0 ? 1u : 0u));
    }
}
