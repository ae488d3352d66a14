// SPDX-License-Identifier: Apache-2.0
// CreatePermission, ChannelBind, Send/Data indications and ChannelData (RFC 8656 §9-12).
#include "harness.hpp"

namespace {

struct Allocated {
    Bench b;
    Client c;
    turn::RelayHandle relay = 0;
    explicit Allocated(tb::Transport t = tb::Transport::Udp, bool open_loopback = true)
        : c(b, tuple("198.51.100.7:5000", t)) {
        if (open_loopback) b.cfg->allowed_peers = {*tb::Cidr::parse("127.0.0.0/8")};
        b.restart();
        REQUIRE(c.allocate().success());
        relay = *b.binder.open_handles.begin();
    }
    std::vector<std::uint8_t> payload(std::size_t n) {
        std::vector<std::uint8_t> v(n);
        for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 7 + 1);
        return v;
    }
    const turn::ToPeer* to_peer() {
        REQUIRE(b.out.size() == 1);
        return std::get_if<turn::ToPeer>(&b.out[0]);
    }
    const turn::ToClient* to_client() {
        REQUIRE(b.out.size() == 1);
        return std::get_if<turn::ToClient>(&b.out[0]);
    }
};

}  // namespace

TEST_CASE("without a permission peer data is dropped; with one it arrives as a Data indication (RFC 8656 §9, §11.3)") {
    Allocated t;
    const auto peer = *tb::Endpoint::parse("127.0.0.1:40000");
    const auto data = t.payload(33);
    t.b.from_peer(t.relay, peer, data);
    CHECK(t.b.out.empty());
    REQUIRE(t.c.create_permission({"127.0.0.1:1"}).success());  // port does not matter
    t.b.from_peer(t.relay, peer, data);
    const auto* tc = t.to_client();
    REQUIRE(tc != nullptr);
    CHECK(tc->to == t.c.five_tuple());
    std::vector<std::uint8_t> wire(tc->head.begin(), tc->head.end());
    wire.insert(wire.end(), tc->body.begin(), tc->body.end());
    wire.insert(wire.end(), tc->pad, 0);
    CHECK(wire.size() % 4 == 0);
    auto m = stun::Message::parse(wire);
    REQUIRE(m);
    CHECK(m->method() == stun::method::Data);
    CHECK(m->cls() == stun::Class::Indication);
    CHECK(m->get_xor_address(stun::attr::XorPeerAddress) == peer);
    auto got = m->get(stun::attr::Data);
    REQUIRE(got);
    CHECK(std::vector<std::uint8_t>(got->begin(), got->end()) == data);
    CHECK(tc->body.data() == data.data());  // the payload is not copied
}

TEST_CASE("a Send indication reaches the peer only with a permission, DONT-FRAGMENT passed on (RFC 8656 §11.2)") {
    Allocated t;
    const auto data = t.payload(160);
    auto ind = t.c.send_indication("127.0.0.2:40000", data, true);
    t.b.send(t.c.five_tuple(), ind);
    CHECK(t.b.out.empty());
    CHECK(t.b.server->find(t.c.five_tuple())->counters.dropped_no_permission == 1);
    REQUIRE(t.c.create_permission({"127.0.0.2:9"}).success());
    t.b.send(t.c.five_tuple(), ind);
    const auto* tp = t.to_peer();
    REQUIRE(tp != nullptr);
    CHECK(tp->relay == t.relay);
    CHECK(tp->peer.to_string() == "127.0.0.2:40000");
    CHECK(tp->dont_fragment);
    CHECK(std::vector<std::uint8_t>(tp->body.begin(), tp->body.end()) == data);
}

TEST_CASE("permissions last 300 s and CreatePermission refreshes them (RFC 8656 §9)") {
    Allocated t;
    const auto peer = *tb::Endpoint::parse("127.0.0.1:40000");
    REQUIRE(t.c.create_permission({"127.0.0.1:0"}).success());
    t.b.advance(std::chrono::seconds(299));
    REQUIRE(t.c.create_permission({"127.0.0.1:0"}).success());
    t.b.advance(std::chrono::seconds(299));
    t.b.from_peer(t.relay, peer, t.payload(4));
    CHECK(t.b.out.size() == 1);
    t.b.advance(std::chrono::seconds(1));
    t.b.server->on_timer(t.b.now);
    t.b.from_peer(t.relay, peer, t.payload(4));
    CHECK(t.b.out.empty());
}

TEST_CASE("CreatePermission is all or nothing and checks family and policy (RFC 8656 §10)") {
    Allocated t;
    CHECK(t.c.create_permission({"127.0.0.1:0", "10.0.0.1:0"}).code() == 403);
    t.b.from_peer(t.relay, *tb::Endpoint::parse("127.0.0.1:1"), t.payload(4));
    CHECK(t.b.out.empty());  // the allowed one was not installed either
    CHECK(t.c.create_permission({"[2001:db8::1]:0"}).code() == 443);
    CHECK(t.c.with_peers(stun::method::CreatePermission, {}).code() == 400);
    Client stranger(t.b, tuple("198.51.100.9:5000"));
    CHECK(stranger.create_permission({"127.0.0.1:0"}).code() == 437);
    Client intruder(t.b, t.c.five_tuple(), "other", "pass2");
    CHECK(intruder.create_permission({"127.0.0.1:0"}).code() == 441);
}

TEST_CASE("ChannelBind relays ChannelData both ways without copying the payload (RFC 8656 §12)") {
    Allocated t;
    REQUIRE(t.c.channel_bind(0x4001, "127.0.0.1:40000").success());
    const auto data = t.payload(100);
    auto cd = channel_data(0x4001, data);
    t.b.send(t.c.five_tuple(), cd);
    const auto* tp = t.to_peer();
    REQUIRE(tp != nullptr);
    CHECK(tp->peer.to_string() == "127.0.0.1:40000");
    CHECK(tp->body.data() == cd.data() + 4);
    CHECK(tp->body.size() == 100);

    t.b.from_peer(t.relay, *tb::Endpoint::parse("127.0.0.1:40000"), data);
    const auto* tc = t.to_client();
    REQUIRE(tc != nullptr);
    REQUIRE(tc->head.size() == 4);
    CHECK(tc->head[0] == 0x40);
    CHECK(tc->head[1] == 0x01);
    CHECK((tc->head[2] << 8 | tc->head[3]) == 100);
    CHECK(tc->pad == 0);  // UDP: no padding

    // Another port on the same IP has the permission but no channel: Data indication.
    t.b.from_peer(t.relay, *tb::Endpoint::parse("127.0.0.1:40002"), data);
    CHECK(stun::looks_like_stun(t.to_client()->head));

    const auto& counters = t.b.server->find(t.c.five_tuple())->counters;
    CHECK(counters.packets[0] == 1);
    CHECK(counters.payload_bytes[0] == 100);
    CHECK(counters.wire_bytes[0] == 104);
    CHECK(counters.packets[2] == 2);
    CHECK(counters.payload_bytes[3] == 200);
}

TEST_CASE("ChannelData toward TCP clients is padded to 4 bytes (RFC 8656 §12.5)") {
    Allocated t(tb::Transport::Tcp);
    REQUIRE(t.c.channel_bind(0x4FFF, "127.0.0.1:40000").success());
    t.b.from_peer(t.relay, *tb::Endpoint::parse("127.0.0.1:40000"), t.payload(5));
    const auto* tc = t.to_client();
    REQUIRE(tc != nullptr);
    CHECK(tc->pad == 3);
    CHECK(t.b.server->find(t.c.five_tuple())->counters.wire_bytes[3] == 12);
}

TEST_CASE("TLS record framing reported by the net layer adds to wire bytes only, and only with an allocation") {
    Allocated t(tb::Transport::Tcp);
    const auto& counters = t.b.server->find(t.c.five_tuple())->counters;
    t.b.server->add_wire_overhead(t.c.five_tuple(), turn::Direction::ClientToRelay, 22);
    t.b.server->add_wire_overhead(t.c.five_tuple(), turn::Direction::RelayToClient, 29);
    CHECK(counters.wire_bytes[0] == 22);
    CHECK(counters.wire_bytes[3] == 29);
    CHECK(counters.packets[0] == 0);  // framing is not a packet of its own
    CHECK(counters.payload_bytes[3] == 0);
    auto other = t.c.five_tuple();
    other.client.port ^= 1;
    t.b.server->add_wire_overhead(other, turn::Direction::ClientToRelay, 22);  // no allocation: ignored
    CHECK(counters.wire_bytes[0] == 22);
}

TEST_CASE("ChannelBind errors: range, rebinding, policy, family (RFC 8656 §12.2)") {
    Allocated t;
    CHECK(t.c.channel_bind(0x3FFF, "127.0.0.1:40000").code() == 400);
    CHECK(t.c.channel_bind(0x8000, "127.0.0.1:40000").code() == 400);
    CHECK(t.c.channel_bind(0x7FFF, "127.0.0.1:40007").success());  // RFC 5766 range still accepted
    CHECK(t.c.channel_bind(0x4000, "10.0.0.1:40000").code() == 403);
    CHECK(t.c.channel_bind(0x4000, "[2001:db8::1]:40000").code() == 443);
    REQUIRE(t.c.channel_bind(0x4000, "127.0.0.1:40000").success());
    CHECK(t.c.channel_bind(0x4000, "127.0.0.1:40001").code() == 400);  // number bound to another peer
    CHECK(t.c.channel_bind(0x4002, "127.0.0.1:40000").code() == 400);  // peer bound to another number
    CHECK(t.c.channel_bind(0x4000, "127.0.0.1:40000").success());      // same pair refreshes
}

TEST_CASE("channels last 600 s, then stay quarantined 5 minutes (RFC 8656 §12)") {
    Allocated t;
    REQUIRE(t.c.channel_bind(0x4001, "127.0.0.1:40000").success());
    REQUIRE(t.c.refresh(3600).success());
    t.b.advance(std::chrono::seconds(599));
    t.b.send(t.c.five_tuple(), channel_data(0x4001, t.payload(8)));
    CHECK(t.b.out.size() == 1);
    t.b.advance(std::chrono::seconds(1));
    t.b.server->on_timer(t.b.now);
    t.b.send(t.c.five_tuple(), channel_data(0x4001, t.payload(8)));
    CHECK(t.b.out.empty());
    CHECK(t.c.channel_bind(0x4001, "127.0.0.1:40009").code() == 400);
    t.b.advance(std::chrono::seconds(300));
    t.b.server->on_timer(t.b.now);
    CHECK(t.c.channel_bind(0x4001, "127.0.0.1:40009").success());
}

TEST_CASE("ChannelData on an unbound channel, too short, or without an allocation is dropped") {
    Allocated t;
    t.b.send(t.c.five_tuple(), channel_data(0x4001, t.payload(8)));
    CHECK(t.b.out.empty());
    REQUIRE(t.c.channel_bind(0x4001, "127.0.0.1:40000").success());
    auto cd = channel_data(0x4001, t.payload(8));
    cd.resize(8);  // length says 8, only 4 present
    t.b.send(t.c.five_tuple(), cd);
    CHECK(t.b.out.empty());
    t.b.send(tuple("198.51.100.9:1"), channel_data(0x4001, t.payload(8)));
    CHECK(t.b.out.empty());
}

TEST_CASE("peer data on an unknown relay handle is dropped") {
    Allocated t;
    t.b.from_peer(t.relay + 100, *tb::Endpoint::parse("127.0.0.1:1"), t.payload(4));
    CHECK(t.b.out.empty());
}

TEST_CASE("the default deny list refuses every special-purpose class with 403 (CVE-2020-26262 class)") {
    Bench b;  // allowed_peers is empty in the test config
    b.cfg->relay_ips = {*tb::IpAddress::parse("198.51.100.1"), *tb::IpAddress::parse("2001:db8::100")};
    b.cfg->listen.push_back(*tb::Endpoint::parse("[2001:db8::53]:3478"));
    b.restart();
    Client v4(b, tuple("198.51.100.7:5000"));
    REQUIRE(v4.allocate().success());
    Client v6(b, tuple("198.51.100.7:5001"));
    REQUIRE(v6.allocate({Client::udp(), Client::family(2)}).success());
    const char* denied_v4[] = {"0.0.0.1:9", "127.0.0.1:9", "10.1.2.3:9", "172.16.0.1:9", "172.31.255.254:9",
                               "192.168.1.1:9", "169.254.1.1:9", "100.64.0.1:9", "224.0.0.1:9",
                               "239.255.255.250:9", "240.0.0.1:9", "255.255.255.255:9",
                               "192.0.2.10:9" /* own listener */, "198.51.100.1:9" /* own relay */};
    for (const char* p : denied_v4) {
        CAPTURE(p);
        CHECK(v4.create_permission({p}).code() == 403);
        CHECK(v4.channel_bind(0x4000, p).code() == 403);
    }
    const char* denied_v6[] = {"[::]:9", "[::1]:9", "[::ffff:127.0.0.1]:9", "[::ffff:10.0.0.1]:9",
                               "[::ffff:8.8.8.8]:9", "[64:ff9b::a00:1]:9", "[fc00::1]:9", "[fd12::1]:9",
                               "[fe80::1]:9", "[ff02::1]:9", "[2002:c0a8:101::1]:9" /* 6to4 of 192.168.1.1 */,
                               "[2001:db8::53]:9" /* own listener */, "[2001:db8::100]:9" /* own relay */};
    for (const char* p : denied_v6) {
        CAPTURE(p);
        CHECK(v6.create_permission({p}).code() == 403);
    }
    CHECK(b.server->stats().forbidden_peers >= 14);
    CHECK(v4.create_permission({"203.0.113.5:9"}).success());
    CHECK(v6.create_permission({"[2001:db8:1::5]:9"}).success());
}

TEST_CASE("allowed_peers exempts a range; denied_peers beats it") {
    Bench b;
    b.cfg->allowed_peers = {*tb::Cidr::parse("10.0.0.0/8")};
    b.cfg->denied_peers = {*tb::Cidr::parse("10.9.0.0/16"), *tb::Cidr::parse("203.0.113.0/24")};
    b.restart();
    Client c(b, tuple("198.51.100.7:5000"));
    REQUIRE(c.allocate().success());
    CHECK(c.create_permission({"10.1.1.1:9"}).success());
    CHECK(c.create_permission({"10.9.1.1:9"}).code() == 403);
    CHECK(c.create_permission({"203.0.113.5:9"}).code() == 403);
    CHECK(c.create_permission({"192.168.0.1:9"}).code() == 403);
}

TEST_CASE("the gateway's media address is a peer for gateway realms only; their datagrams go over as ToLocal") {
    struct Gateway : turn::LocalPeers {
        bool is_local_ip(const tb::IpAddress& ip) const override { return ip.to_string() == "127.0.0.1"; }
        bool is_local(const tb::Endpoint& p) const override {
            return is_local_ip(p.ip) && p.port >= 22000 && p.port <= 22999;
        }
    } gateway;
    Bench b;  // default peer policy: loopback denied
    b.cfg->realms["example.org"].gateway.enabled = true;
    b.cfg->listen.push_back(*tb::Endpoint::parse("192.0.2.11:3478"));
    tb::config::Realm plain;
    plain.name = "plain.example";
    plain.users = {{"bob", "pw"}};
    plain.listen = {*tb::Endpoint::parse("192.0.2.11:3478")};
    b.cfg->realms["plain.example"] = plain;
    b.restart();
    b.server->set_local_peers(&gateway);

    // A realm without gateway mode: the media address is one of the server's, denied (RFC 8656 §9.1).
    Client other(b, tuple("198.51.100.8:5000", tb::Transport::Udp, "192.0.2.11:3478"), "bob", "pw");
    REQUIRE(other.allocate().success());
    CHECK(other.create_permission({"127.0.0.1:22000"}).code() == 403);
    CHECK(other.channel_bind(0x4001, "127.0.0.1:22000").code() == 403);

    // The gateway realm may reach it; what it sends there is handed over, not sent.
    Client c(b, tuple("198.51.100.7:5000"));
    REQUIRE(c.allocate().success());
    const turn::Allocation* a = b.server->find(c.five_tuple());
    REQUIRE(a != nullptr);
    CHECK(c.create_permission({"127.0.0.2:9"}).code() == 403);  // the rest of loopback stays denied
    REQUIRE(c.channel_bind(0x4001, "127.0.0.1:22000").success());
    std::vector<std::uint8_t> data(20, 7);
    b.send(c.five_tuple(), channel_data(0x4001, data));
    REQUIRE(b.out.size() == 1);
    const auto* local = std::get_if<turn::ToLocal>(&b.out[0]);
    REQUIRE(local != nullptr);
    CHECK(local->allocation == a->id);
    CHECK(local->relay == a->relays[0].handle);
    CHECK(local->relayed == a->advertised[0]);
    CHECK(local->peer.to_string() == "127.0.0.1:22000");
    CHECK(local->body.size() == 20);
    CHECK(a->counters.payload_bytes[static_cast<std::size_t>(turn::Direction::RelayToPeer)] == 20);
    // The permission is per IP, but it opens no other port of the server's address.
    b.send(c.five_tuple(), c.send_indication("127.0.0.1:5060", data));
    CHECK(b.out.empty());
    b.send(c.five_tuple(), c.send_indication("127.0.0.1:22002", data));
    REQUIRE(b.out.size() == 1);
    CHECK(std::get_if<turn::ToLocal>(&b.out[0]) != nullptr);
    // The gateway's reply re-enters as peer data on the same relay handle, as ChannelData.
    b.from_peer(a->relays[0].handle, *tb::Endpoint::parse("127.0.0.1:22000"), std::vector<std::uint8_t>(12, 1));
    REQUIRE(b.out.size() == 1);
    const auto* tc = std::get_if<turn::ToClient>(&b.out[0]);
    REQUIRE(tc != nullptr);
    CHECK(tc->head[0] == 0x40);
    CHECK(a->counters.payload_bytes[static_cast<std::size_t>(turn::Direction::PeerToRelay)] == 12);
}

TEST_CASE("max_bitrate drops and counts packets beyond the rate, both ways, and refills with time") {
    Bench b;
    b.cfg->allowed_peers = {*tb::Cidr::parse("127.0.0.0/8")};
    b.cfg->realms["example.org"].max_bitrate = 80'000;  // 10 kB/s; burst 200 ms = 2000 B
    b.restart();
    Client c(b, tuple("198.51.100.7:5000"));
    REQUIRE(c.allocate().success());
    REQUIRE(c.channel_bind(0x4001, "127.0.0.1:40000").success());
    const turn::RelayHandle relay = *b.binder.open_handles.begin();
    std::vector<std::uint8_t> data(500, 1);
    auto cd = channel_data(0x4001, data);
    int sent = 0;
    for (int i = 0; i < 10; ++i) {
        b.send(c.five_tuple(), cd);
        sent += static_cast<int>(b.out.size());
    }
    CHECK(sent == 4);  // 2000 B of burst / 500 B
    const auto* a = b.server->find(c.five_tuple());
    CHECK(a->counters.dropped_rate == 6);
    CHECK(a->counters.packets[1] == 4);   // only what left counts as relayed
    CHECK(a->counters.packets[0] == 10);  // but all of it arrived on the client leg
    b.advance(std::chrono::seconds(1));  // 10 kB more, capped at the burst
    sent = 0;
    for (int i = 0; i < 10; ++i) {
        b.send(c.five_tuple(), cd);
        sent += static_cast<int>(b.out.size());
    }
    CHECK(sent == 4);
    int delivered = 0;
    for (int i = 0; i < 10; ++i) {
        b.from_peer(relay, *tb::Endpoint::parse("127.0.0.1:40000"), data);
        delivered += static_cast<int>(b.out.size());
    }
    CHECK(delivered == 4);  // the other direction has its own bucket

    SUBCASE("a reload lifting the limit takes effect on live allocations") {
        auto cfg = std::make_shared<tb::config::Config>(*b.cfg);
        cfg->realms["example.org"].max_bitrate = 0;
        b.server->set_config(cfg);
        int passed = 0;
        for (int i = 0; i < 10; ++i) {
            b.send(c.five_tuple(), cd);
            passed += static_cast<int>(b.out.size());
        }
        CHECK(passed == 10);
    }
}

TEST_CASE("[fleet] a quota user's allocation relays only within its lease slot, both ways (issue 15)") {
    struct Gate : turn::LeaseGate {
        std::shared_ptr<turn::LeaseSlot> slot = std::make_shared<turn::LeaseSlot>();
        std::shared_ptr<turn::LeaseSlot> attach(const tb::config::Realm& realm, const std::string&) override {
            CHECK(realm.quota_bytes == 1'000'000);
            slot->allocations.fetch_add(1);
            return slot;
        }
    } gate;
    Bench b;
    b.cfg->allowed_peers = {*tb::Cidr::parse("127.0.0.0/8")};
    b.cfg->realms["example.org"].quota_bytes = 1'000'000;
    b.server = std::make_unique<turn::Server>(
        turn::SharedState{b.cfg, &b.nonces, &b.quota, 0, nullptr, nullptr, nullptr, &gate}, b.binder);
    Client c(b, tuple("198.51.100.7:5000"));
    REQUIRE(c.allocate().success());
    CHECK(gate.slot->allocations == 1);
    const auto relay = *b.binder.open_handles.begin();
    REQUIRE(c.channel_bind(0x4000, "127.0.0.1:40000").success());
    const auto peer = *tb::Endpoint::parse("127.0.0.1:40000");
    const std::vector<std::uint8_t> data(100, 7);
    gate.slot->limit = 250;
    b.send(c.five_tuple(), channel_data(0x4000, data));
    CHECK(b.out.size() == 1);
    b.from_peer(relay, peer, data);
    CHECK(b.out.size() == 1);
    // 200 of 250 used: the next 100 bytes do not fit, either way, and nothing of them is counted.
    b.send(c.five_tuple(), channel_data(0x4000, data));
    CHECK(b.out.empty());
    b.from_peer(relay, peer, data);
    CHECK(b.out.empty());
    CHECK(gate.slot->used == 200);
    CHECK(gate.slot->refused == 200);
    const auto& counters = b.server->find(c.five_tuple())->counters;
    CHECK(counters.payload_bytes[static_cast<int>(turn::Direction::RelayToPeer)] == 100);
    CHECK(counters.payload_bytes[static_cast<int>(turn::Direction::RelayToClient)] == 100);
    // A renewed lease: it relays again.
    gate.slot->limit = 1000;
    b.send(c.five_tuple(), channel_data(0x4000, data));
    CHECK(b.out.size() == 1);
    // The allocation ends: its slot hears it.
    CHECK(c.refresh(0).success());
    CHECK(gate.slot->allocations == 0);
}
