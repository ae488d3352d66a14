// SPDX-License-Identifier: Apache-2.0
// Shared relay sockets (server.relay_sharing): many allocations on one relayed address, peer
// datagrams told apart by the peer's exact address and port.
#include "harness.hpp"
#include "turnbridge/turn/channel_data.hpp"

namespace {

const tb::Endpoint kPeerA = *tb::Endpoint::parse("127.0.0.1:40001");
const tb::Endpoint kPeerB = *tb::Endpoint::parse("127.0.0.1:40002");

// A bench with sharing on, `ports` shared sockets per family, and `n` clients allocated.
struct Shared {
    Bench b;
    std::vector<std::unique_ptr<Client>> clients;
    explicit Shared(std::size_t n = 2, std::size_t ports = 1) {
        b.cfg->allowed_peers = {*tb::Cidr::parse("127.0.0.0/8"), *tb::Cidr::parse("::1/128")};
        b.cfg->relay_sharing = true;
        b.cfg->max_allocations_per_user = 0;  // up to 100 of one user
        b.binder.shared_ports = ports;
        b.restart();
        for (std::size_t i = 0; i < n; ++i) add();
    }
    Client& add() {
        const std::string from = "198.51.100.7:" + std::to_string(5000 + clients.size());
        clients.push_back(std::make_unique<Client>(b, tuple(from.c_str())));
        REQUIRE(clients.back()->allocate().success());
        return *clients.back();
    }
    Client& c(std::size_t i) { return *clients.at(i); }
    const turn::Allocation& alloc(std::size_t i) { return *b.server->find(c(i).five_tuple()); }
    turn::RelayHandle relay(std::size_t i) { return alloc(i).relays[0].handle; }
    std::vector<std::uint8_t> payload(std::size_t n, std::uint8_t seed = 1) {
        std::vector<std::uint8_t> v(n);
        for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 7 + seed);
        return v;
    }
    // The client a peer datagram went to, or nullptr when it was dropped.
    const tb::FiveTuple* delivered_to() {
        if (b.out.empty()) return nullptr;
        REQUIRE(b.out.size() == 1);
        const auto* tc = std::get_if<turn::ToClient>(&b.out[0]);
        REQUIRE(tc != nullptr);
        return &tc->to;
    }
};

}  // namespace

TEST_CASE("SharedPeerTable: one owner per relay and peer address; release only by the owner") {
    turn::SharedPeerTable t;
    turn::Allocation a, b;
    CHECK(t.claim(1, kPeerA, &a) == turn::SharedPeerTable::Claim::New);
    CHECK(t.claim(1, kPeerA, &a) == turn::SharedPeerTable::Claim::Held);
    CHECK(t.claim(1, kPeerA, &b) == turn::SharedPeerTable::Claim::Conflict);
    CHECK(t.claim(2, kPeerA, &b) == turn::SharedPeerTable::Claim::New);  // another socket: no conflict
    CHECK(t.claim(1, kPeerB, &b) == turn::SharedPeerTable::Claim::New);  // another port: no conflict
    CHECK(t.owner(1, kPeerA) == &a);
    CHECK(t.owner(1, *tb::Endpoint::parse("127.0.0.1:40003")) == nullptr);
    t.release(1, kPeerA, &b);  // not b's: stays
    CHECK(t.owner(1, kPeerA) == &a);
    t.release(1, kPeerA, &a);
    CHECK(t.owner(1, kPeerA) == nullptr);
    CHECK(t.size() == 2);
}

TEST_CASE("with relay_sharing, allocations share one relayed address and peer datagrams go by peer address and port") {
    Shared s(3);
    // The same socket and the same XOR-RELAYED-ADDRESS for all three.
    CHECK(s.relay(0) == s.relay(1));
    CHECK(s.relay(1) == s.relay(2));
    CHECK(s.alloc(0).relays[0].shared);
    CHECK(s.alloc(0).relays[0].local == s.alloc(2).relays[0].local);
    CHECK(s.b.binder.open_handles.empty());  // no dedicated socket was opened
    REQUIRE(s.c(0).create_permission({"127.0.0.1:40001"}).success());
    REQUIRE(s.c(1).channel_bind(0x4000, "127.0.0.1:40002").success());
    CHECK(s.b.server->shared_peer_count() == 2);

    const auto data = s.payload(50);
    s.b.from_peer(s.relay(0), kPeerA, data);
    REQUIRE(s.delivered_to() != nullptr);
    CHECK(*s.delivered_to() == s.c(0).five_tuple());
    s.b.from_peer(s.relay(0), kPeerB, data);
    REQUIRE(s.delivered_to() != nullptr);
    CHECK(*s.delivered_to() == s.c(1).five_tuple());
    CHECK(std::get<turn::ToClient>(s.b.out[0]).head.size() == turn::kChannelDataHeader);  // over its channel

    // The NAT-behaviour change: client 0 permits 127.0.0.1, but on a shared socket only the
    // claimed port reaches it. A peer-first datagram from an unknown address goes nowhere.
    const auto dropped = s.b.server->stats().dropped_datagrams;
    s.b.from_peer(s.relay(0), *tb::Endpoint::parse("127.0.0.1:40003"), data);
    CHECK(s.b.out.empty());
    CHECK(s.b.server->stats().dropped_datagrams == dropped + 1);
    CHECK(s.alloc(2).counters.packets[static_cast<int>(turn::Direction::PeerToRelay)] == 0);
}

TEST_CASE("a peer address held by another allocation on the same shared socket gets 508 (CreatePermission, ChannelBind)") {
    Shared s(2);
    REQUIRE(s.c(0).channel_bind(0x4000, "127.0.0.1:40001").success());
    auto r = s.c(1).create_permission({"127.0.0.1:40001"});
    CHECK(r.code() == 508);
    CHECK(r->get_error_code().has_value());
    CHECK(s.c(1).channel_bind(0x4001, "127.0.0.1:40001").code() == 508);
    CHECK(s.b.server->stats().shared_peer_refusals == 2);
    // All or nothing (RFC 8656 §10.2): the free address in the same request is not installed.
    CHECK(s.c(1).create_permission({"127.0.0.1:40002", "127.0.0.1:40001"}).code() == 508);
    s.b.from_peer(s.relay(1), kPeerB, s.payload(4));
    CHECK(s.b.out.empty());
    CHECK(s.b.server->shared_peer_count() == 1);
    // The owner still gets its peer's datagrams; the other allocation's state is untouched.
    s.b.from_peer(s.relay(0), kPeerA, s.payload(4));
    REQUIRE(s.delivered_to() != nullptr);
    CHECK(*s.delivered_to() == s.c(0).five_tuple());
    CHECK(s.alloc(1).permissions.empty());
    CHECK(s.alloc(1).channels.empty());
    // The same peer address on another shared socket is no conflict.
    Shared two(2, 2);
    REQUIRE(two.relay(0) != two.relay(1));
    REQUIRE(two.c(0).create_permission({"127.0.0.1:40001"}).success());
    CHECK(two.c(1).create_permission({"127.0.0.1:40001"}).success());
    CHECK(two.b.server->stats().shared_peer_refusals == 0);
}

TEST_CASE("a Send to a peer port claims it; to another allocation's peer address it is dropped and counted") {
    Shared s(2);
    REQUIRE(s.c(0).create_permission({"127.0.0.1:40001"}).success());
    REQUIRE(s.c(1).create_permission({"127.0.0.1:40002"}).success());
    // Client 1 has a permission for 127.0.0.1 (IP only) but 40001 is client 0's.
    const auto data = s.payload(80);
    s.b.send(s.c(1).five_tuple(), s.c(1).send_indication("127.0.0.1:40001", data));
    CHECK(s.b.out.empty());
    CHECK(s.b.server->stats().shared_peer_refusals == 1);
    const auto& c1 = s.alloc(1).counters;
    CHECK(c1.packets[static_cast<int>(turn::Direction::ClientToRelay)] == 0);
    CHECK(c1.packets[static_cast<int>(turn::Direction::RelayToPeer)] == 0);
    // A new port under the permitted IP is claimed by sending to it, and its answers come back.
    s.b.send(s.c(1).five_tuple(), s.c(1).send_indication("127.0.0.1:40009", data));
    REQUIRE(s.b.out.size() == 1);
    CHECK(std::get<turn::ToPeer>(s.b.out[0]).peer.to_string() == "127.0.0.1:40009");
    CHECK(std::get<turn::ToPeer>(s.b.out[0]).relay == s.relay(1));
    s.b.from_peer(s.relay(1), *tb::Endpoint::parse("127.0.0.1:40009"), data);
    REQUIRE(s.delivered_to() != nullptr);
    CHECK(*s.delivered_to() == s.c(1).five_tuple());
    CHECK(s.alloc(1).shared_peers.size() == 2);
    // Client 0 now meets client 1's claim on 40009.
    CHECK(s.c(0).create_permission({"127.0.0.1:40009"}).code() == 508);
}

TEST_CASE("claims end with their permission (RFC 8656 §9), outlive it while a channel is bound, and end with the allocation") {
    Shared s(2);
    REQUIRE(s.c(0).create_permission({"127.0.0.1:40001"}).success());
    REQUIRE(s.c(1).channel_bind(0x4000, "127.0.0.1:40002").success());
    REQUIRE(s.c(0).refresh(3600).success());
    REQUIRE(s.c(1).refresh(3600).success());
    CHECK(s.b.server->shared_peer_count() == 2);
    s.b.advance(std::chrono::seconds(301));
    s.b.server->on_timer(s.b.now);
    // Client 0's permission is gone and so is its claim; client 1's channel lives 600 s.
    CHECK(s.alloc(0).shared_peers.empty());
    CHECK(s.b.server->shared_peer_count() == 1);
    CHECK(s.c(1).create_permission({"127.0.0.1:40001"}).success());  // free again
    CHECK(s.c(0).create_permission({"127.0.0.1:40002"}).code() == 508);  // still client 1's
    // ChannelData still leaves on client 1's channel.
    s.b.send(s.c(1).five_tuple(), channel_data(0x4000, s.payload(8)));
    CHECK(s.b.out.size() == 1);

    // Deleting the allocation (Refresh 0, RFC 8656 §7.3) drops all its claims.
    REQUIRE(s.c(1).refresh(0).success());
    CHECK(s.b.server->shared_peer_count() == 0);
    CHECK(s.c(0).create_permission({"127.0.0.1:40002"}).success());
    CHECK(s.b.server->shared_peer_count() == 1);
    CHECK(s.b.binder.shared_in_use() == 1);  // client 1's use of the socket was released
}

TEST_CASE("many allocations on one shared socket leave no claim and no socket use behind") {
    Shared s(0);
    for (int i = 0; i < 100; ++i) {
        Client& c = s.add();
        const std::string peer = "127.0.0.1:" + std::to_string(30000 + i);
        const std::string peer2 = "127.0.0.1:" + std::to_string(31000 + i);
        REQUIRE(c.create_permission({peer.c_str()}).success());
        REQUIRE(c.channel_bind(0x4000, peer2.c_str()).success());
    }
    CHECK(s.b.server->allocation_count() == 100);
    CHECK(s.b.server->shared_peer_count() == 200);
    CHECK(s.b.binder.shared[tb::Family::V4].size() == 1);
    CHECK(s.b.binder.shared_in_use() == 100);
    // Half end by expiry, half by Refresh 0.
    for (int i = 0; i < 50; ++i) REQUIRE(s.c(static_cast<std::size_t>(i)).refresh(0).success());
    CHECK(s.b.server->shared_peer_count() == 100);
    s.b.advance(std::chrono::seconds(3601));
    s.b.server->on_timer(s.b.now);
    CHECK(s.b.server->allocation_count() == 0);
    CHECK(s.b.server->shared_peer_count() == 0);
    CHECK(s.b.binder.shared_in_use() == 0);
}

TEST_CASE("EVEN-PORT and RESERVATION-TOKEN allocations keep dedicated sockets with IP-only permissions") {
    Shared s(1);
    Client rtp(s.b, tuple("198.51.100.8:6000"));
    auto r = rtp.allocate({Client::udp(), {stun::attr::EvenPort, {0x80}}});
    REQUIRE(r.success());
    const auto* a = s.b.server->find(rtp.five_tuple());
    REQUIRE(a != nullptr);
    CHECK_FALSE(a->relays[0].shared);
    CHECK(a->relays[0].local.port % 2 == 0);
    const auto token = r->get(stun::attr::ReservationToken);
    REQUIRE(token);
    Client rtcp(s.b, tuple("198.51.100.8:6001"));
    REQUIRE(rtcp.allocate({Client::udp(), {stun::attr::ReservationToken, {token->begin(), token->end()}}}).success());
    CHECK_FALSE(s.b.server->find(rtcp.five_tuple())->relays[0].shared);
    CHECK(s.b.binder.open_handles.size() == 2);

    // Dedicated: the permission is by IP (RFC 8656 §9) and no peer address is claimed, even
    // one a shared allocation holds.
    REQUIRE(s.c(0).create_permission({"127.0.0.1:40001"}).success());
    REQUIRE(rtp.create_permission({"127.0.0.1:40001"}).success());
    CHECK(s.b.server->shared_peer_count() == 1);
    s.b.from_peer(a->relays[0].handle, *tb::Endpoint::parse("127.0.0.1:40007"), s.payload(4));
    REQUIRE(s.delivered_to() != nullptr);
    CHECK(*s.delivered_to() == rtp.five_tuple());
}

TEST_CASE("a dual allocation shares a socket per family and claims each peer on its family's socket") {
    Shared s(1);
    Client d(s.b, tuple("198.51.100.9:7000"));
    REQUIRE(d.allocate({Client::udp(), {stun::attr::AdditionalAddressFamily, {2, 0, 0, 0}}}).success());
    const auto& a = *s.b.server->find(d.five_tuple());
    REQUIRE(a.relay_count == 2);
    CHECK(a.relays[0].shared);
    CHECK(a.relays[1].shared);
    CHECK(a.relays[0].handle == s.relay(0));  // IPv4: the socket client 0 uses
    REQUIRE(d.create_permission({"127.0.0.1:40001", "[::1]:40001"}).success());
    s.b.from_peer(a.relays[1].handle, *tb::Endpoint::parse("[::1]:40001"), s.payload(4));
    REQUIRE(s.delivered_to() != nullptr);
    CHECK(*s.delivered_to() == d.five_tuple());
    CHECK(s.c(0).create_permission({"127.0.0.1:40001"}).code() == 508);
}

TEST_CASE("accounting stays exact per allocation on a shared socket (payload and wire bytes)") {
    Shared s(2);
    REQUIRE(s.c(0).channel_bind(0x4000, "127.0.0.1:40001").success());
    REQUIRE(s.c(1).create_permission({"127.0.0.1:40002"}).success());
    std::size_t to_client_wire_1 = 0;
    for (int i = 0; i < 5; ++i) s.b.send(s.c(0).five_tuple(), channel_data(0x4000, s.payload(100)));
    for (int i = 0; i < 3; ++i) s.b.from_peer(s.relay(0), kPeerA, s.payload(60));
    const auto ind = s.c(1).send_indication("127.0.0.1:40002", s.payload(30));
    for (int i = 0; i < 2; ++i) s.b.send(s.c(1).five_tuple(), ind);
    for (int i = 0; i < 4; ++i) {
        s.b.from_peer(s.relay(1), kPeerB, s.payload(17));
        const auto& tc = std::get<turn::ToClient>(s.b.out.at(0));
        to_client_wire_1 += tc.head.size() + tc.body.size() + tc.pad;
    }
    s.b.from_peer(s.relay(0), *tb::Endpoint::parse("127.0.0.1:40003"), s.payload(999));  // nobody's

    using D = turn::Direction;
    const auto& c0 = s.alloc(0).counters;
    CHECK(c0.packets[int(D::ClientToRelay)] == 5);
    CHECK(c0.payload_bytes[int(D::ClientToRelay)] == 500);
    CHECK(c0.wire_bytes[int(D::ClientToRelay)] == 520);
    CHECK(c0.payload_bytes[int(D::RelayToPeer)] == 500);
    CHECK(c0.packets[int(D::PeerToRelay)] == 3);
    CHECK(c0.payload_bytes[int(D::RelayToClient)] == 180);
    CHECK(c0.wire_bytes[int(D::RelayToClient)] == 192);
    const auto& c1 = s.alloc(1).counters;
    CHECK(c1.packets[int(D::ClientToRelay)] == 2);
    CHECK(c1.payload_bytes[int(D::ClientToRelay)] == 60);
    CHECK(c1.wire_bytes[int(D::ClientToRelay)] == 2 * ind.size());
    CHECK(c1.payload_bytes[int(D::RelayToPeer)] == 60);
    CHECK(c1.packets[int(D::PeerToRelay)] == 4);
    CHECK(c1.payload_bytes[int(D::RelayToClient)] == 68);
    CHECK(c1.wire_bytes[int(D::RelayToClient)] == to_client_wire_1);
}

TEST_CASE("with relay_sharing off every UDP allocation gets its own socket") {
    Shared s(0);
    s.b.cfg->relay_sharing = false;
    s.b.restart();
    s.add();
    s.add();
    CHECK(s.relay(0) != s.relay(1));
    CHECK_FALSE(s.alloc(0).relays[0].shared);
    CHECK(s.b.binder.shared_users.empty());
}

TEST_CASE("allocations on one shared relayed address cannot reach each other through it: that peer gets 508") {
    Shared s(2);
    const std::string own = s.alloc(0).relays[0].local.to_string();
    CHECK(s.c(1).create_permission({own.c_str()}).code() == 508);
    CHECK(s.c(0).channel_bind(0x4000, own.c_str()).code() == 508);
    REQUIRE(s.c(0).create_permission({"127.0.0.1:40001"}).success());  // a permission for the IP
    s.b.send(s.c(0).five_tuple(), s.c(0).send_indication(own.c_str(), s.payload(8)));
    CHECK(s.b.out.empty());  // not looped back into the socket
    CHECK(s.b.server->stats().shared_peer_refusals == 3);
    CHECK(s.b.server->shared_peer_count() == 1);

    // On two shared ports they can: each claims the other's relayed address.
    Shared two(2, 2);
    const auto a0 = two.alloc(0).relays[0].local;
    const auto a1 = two.alloc(1).relays[0].local;
    REQUIRE(a0 != a1);
    REQUIRE(two.c(0).create_permission({a1.to_string().c_str()}).success());
    REQUIRE(two.c(1).create_permission({a0.to_string().c_str()}).success());
    two.b.send(two.c(0).five_tuple(), two.c(0).send_indication(a1.to_string().c_str(), two.payload(8)));
    REQUIRE(two.b.out.size() == 1);
    CHECK(std::get<turn::ToPeer>(two.b.out[0]).relay == two.relay(0));
    two.b.from_peer(two.relay(1), a0, two.payload(8));  // what the kernel hands the other socket
    REQUIRE(two.delivered_to() != nullptr);
    CHECK(*two.delivered_to() == two.c(1).five_tuple());
}

TEST_CASE("one allocation claims at most kMaxSharedPeers peer addresses on a shared socket") {
    Shared s(2);
    REQUIRE(s.c(0).create_permission({"127.0.0.1:40001"}).success());
    for (std::size_t i = 1; i < turn::kMaxSharedPeers; ++i) {
        const std::string peer = "127.0.0.1:" + std::to_string(41000 + i);
        s.b.send(s.c(0).five_tuple(), s.c(0).send_indication(peer.c_str(), s.payload(4)));
        REQUIRE(s.b.out.size() == 1);
    }
    CHECK(s.alloc(0).shared_peers.size() == turn::kMaxSharedPeers);
    s.b.send(s.c(0).five_tuple(), s.c(0).send_indication("127.0.0.1:50000", s.payload(4)));
    CHECK(s.b.out.empty());
    CHECK(s.c(0).create_permission({"127.0.0.1:50001"}).code() == 508);
    CHECK(s.b.server->stats().shared_peer_refusals == 2);
    // Addresses it holds still work, and the other allocation is not limited by it.
    s.b.send(s.c(0).five_tuple(), s.c(0).send_indication("127.0.0.1:40001", s.payload(4)));
    CHECK(s.b.out.size() == 1);
    CHECK(s.c(1).create_permission({"127.0.0.1:50000"}).success());
}
