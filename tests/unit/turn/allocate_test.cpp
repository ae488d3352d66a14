// SPDX-License-Identifier: Apache-2.0
// Allocate and Refresh (RFC 8656 §7), lifetimes, families, EVEN-PORT, quotas, expiry.
#include "harness.hpp"

using Opt = Client::Options;

TEST_CASE("Allocate success carries XOR-RELAYED-ADDRESS, LIFETIME and XOR-MAPPED-ADDRESS (RFC 8656 §7.2)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    auto r = c.allocate();
    REQUIRE(r.success());
    CHECK(r->get_xor_address(stun::attr::XorRelayedAddress)->to_string() == "127.0.0.1:61000");
    CHECK(r->get_u32(stun::attr::Lifetime) == 600u);
    CHECK(r->get_xor_address(stun::attr::XorMappedAddress)->to_string() == "198.51.100.7:5000");
    CHECK(b.binder.open_handles.size() == 1);
}

TEST_CASE("external_ip replaces the advertised IPv4 relay address") {
    Bench b;
    b.cfg->external_ip = *tb::IpAddress::parse("203.0.113.50");
    b.restart();
    Client c(b, tuple("198.51.100.7:5000"));
    auto r = c.allocate();
    REQUIRE(r.success());
    CHECK(r->get_xor_address(stun::attr::XorRelayedAddress)->to_string() == "203.0.113.50:61000");
}

TEST_CASE("a retransmitted Allocate gets the same answer; a new one on the 5-tuple gets 437 (RFC 8656 §7.2)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    auto first = c.allocate();
    REQUIRE(first.success());
    b.send(c.five_tuple(), c.last_request);
    auto again = b.reply();
    CHECK(again.bytes == first.bytes);
    CHECK(b.binder.open_handles.size() == 1);
    CHECK(c.allocate().code() == 437);
    CHECK(b.server->stats().allocate_refused[static_cast<std::size_t>(turn::AllocateRefusal::Mismatch)] == 1);
}

TEST_CASE("Allocate attribute errors map to their RFC 8656 codes") {
    using R = turn::AllocateRefusal;
    struct Row { const char* name; std::vector<Client::Attr> attrs; std::uint16_t code; R counted_as; };
    const std::vector<Row> rows = {
        {"no REQUESTED-TRANSPORT", {}, 400, R::BadRequest},
        {"TCP transport", {{stun::attr::RequestedTransport, {6, 0, 0, 0}}}, 442, R::Transport},
        {"unknown family", {Client::udp(), Client::family(3)}, 440, R::Family},
        {"both family attributes", {Client::udp(), Client::family(1), {stun::attr::AdditionalAddressFamily, {2, 0, 0, 0}}}, 400, R::BadRequest},
        {"additional family IPv4", {Client::udp(), {stun::attr::AdditionalAddressFamily, {1, 0, 0, 0}}}, 400, R::BadRequest},
        {"token with EVEN-PORT", {Client::udp(), {stun::attr::EvenPort, {0}}, {stun::attr::ReservationToken, {1, 2, 3, 4, 5, 6, 7, 8}}}, 400, R::BadRequest},
        {"token with family", {Client::udp(), Client::family(1), {stun::attr::ReservationToken, {1, 2, 3, 4, 5, 6, 7, 8}}}, 400, R::BadRequest},
        {"unknown token", {Client::udp(), {stun::attr::ReservationToken, {1, 2, 3, 4, 5, 6, 7, 8}}}, 508, R::Capacity},
        {"short token", {Client::udp(), {stun::attr::ReservationToken, {1, 2, 3}}}, 400, R::BadRequest},
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        Bench b;
        Client c(b, tuple("198.51.100.7:5000"));
        auto r = c.allocate(row.attrs);
        CHECK(r.code() == row.code);
        CHECK(stun::check_message_integrity(*r.msg, c.md5_key()));  // authenticated errors are signed
        CHECK(b.server->allocation_count() == 0);
        CHECK(b.binder.open_handles.empty());
        CHECK(b.quota.total() == 0);
        // /metrics' allocations_failed_total{reason}: this refusal, once, under its reason.
        const auto& refused = b.server->stats().allocate_refused;
        for (std::size_t i = 0; i < refused.size(); ++i)
            CHECK(refused[i] == (i == static_cast<std::size_t>(row.counted_as) ? 1u : 0u));
    }
}

TEST_CASE("REQUESTED-ADDRESS-FAMILY IPv6 gets an IPv6 relay; without an IPv6 relay it is a 440") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    auto r = c.allocate({Client::udp(), Client::family(2)});
    REQUIRE(r.success());
    CHECK(r->get_xor_address(stun::attr::XorRelayedAddress)->to_string() == "[::1]:61000");

    b.cfg->relay_ips = {*tb::IpAddress::parse("127.0.0.1")};
    b.restart();
    Client d(b, tuple("198.51.100.7:5001"));
    CHECK(d.allocate({Client::udp(), Client::family(2)}).code() == 440);
}

TEST_CASE("ADDITIONAL-ADDRESS-FAMILY gives a dual allocation, or IPv4 with ADDRESS-ERROR-CODE (RFC 8656 §7.2)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    auto r = c.allocate({Client::udp(), {stun::attr::AdditionalAddressFamily, {2, 0, 0, 0}}});
    REQUIRE(r.success());
    int relays = 0;
    for (const auto& a : r->attributes()) relays += a.type == stun::attr::XorRelayedAddress;
    CHECK(relays == 2);

    b.cfg->relay_ips = {*tb::IpAddress::parse("127.0.0.1")};
    b.restart();
    Client d(b, tuple("198.51.100.7:5001"));
    auto r2 = d.allocate({Client::udp(), {stun::attr::AdditionalAddressFamily, {2, 0, 0, 0}}});
    REQUIRE(r2.success());
    auto aec = r2->get(stun::attr::AddressErrorCode);
    REQUIRE(aec);
    CHECK((*aec)[0] == 0x02);
    CHECK((*aec)[2] * 100 + (*aec)[3] == 440);
}

TEST_CASE("EVEN-PORT with R reserves port+1 and its RESERVATION-TOKEN allocates it (RFC 8656 §7.2)") {
    Bench b;
    b.binder.next_port = 61001;
    Client rtp(b, tuple("198.51.100.7:5000"));
    auto r = rtp.allocate({Client::udp(), {stun::attr::EvenPort, {0x80}}});
    REQUIRE(r.success());
    const auto port = r->get_xor_address(stun::attr::XorRelayedAddress)->port;
    CHECK(port % 2 == 0);
    auto token = r->get(stun::attr::ReservationToken);
    REQUIRE(token);
    REQUIRE(token->size() == 8);
    Client rtcp(b, tuple("198.51.100.7:5001"));
    auto r2 = rtcp.allocate({Client::udp(), {stun::attr::ReservationToken, {token->begin(), token->end()}}});
    REQUIRE(r2.success());
    CHECK(r2->get_xor_address(stun::attr::XorRelayedAddress)->port == port + 1);
    Client third(b, tuple("198.51.100.7:5002"));
    CHECK(third.allocate({Client::udp(), {stun::attr::ReservationToken, {token->begin(), token->end()}}}).code() == 508);
}

TEST_CASE("no relay port left gives 508 and releases the quota (RFC 8656 §7.2)") {
    Bench b;
    b.binder.fail_next = true;
    Client c(b, tuple("198.51.100.7:5000"));
    CHECK(c.allocate().code() == 508);
    CHECK(b.quota.total() == 0);
    CHECK(c.allocate().success());
}

TEST_CASE("per-user and total allocation quotas answer 486 (RFC 8656 §7.2)") {
    Bench b;
    b.cfg->max_allocations_per_user = 1;
    b.cfg->max_allocations = 2;
    b.restart();
    Client a1(b, tuple("198.51.100.7:5000"));
    REQUIRE(a1.allocate().success());
    Client a2(b, tuple("198.51.100.7:5001"));
    CHECK(a2.allocate().code() == 486);
    CHECK(b.server->stats().quota_refusals == 1);
    Client o1(b, tuple("198.51.100.7:5002"), "other", "pass2");
    REQUIRE(o1.allocate().success());
    // total limit reached now (2), even for a user under its own limit
    auto cfg = std::make_shared<tb::config::Config>(*b.cfg);
    cfg->max_allocations_per_user = 5;
    b.server->set_config(cfg);
    Client o2(b, tuple("198.51.100.7:5003"), "other", "pass2");
    CHECK(o2.allocate().code() == 486);
    // deleting one frees a slot
    REQUIRE(a1.refresh(0).success());
    CHECK(o2.allocate().success());
}

TEST_CASE("a realm's max_allocations_per_user overrides the server's") {
    Bench b;
    b.cfg->max_allocations_per_user = 5;
    b.cfg->realms["example.org"].max_allocations_per_user = 1;
    b.restart();
    Client a1(b, tuple("198.51.100.7:5000"));
    REQUIRE(a1.allocate().success());
    Client a2(b, tuple("198.51.100.7:5001"));
    CHECK(a2.allocate().code() == 486);
}

TEST_CASE("requested lifetimes are clamped to [default, max] (RFC 8656 §7.2)") {
    struct Row { std::uint32_t asked; std::uint32_t granted; };
    for (auto row : {Row{10, 600}, Row{1200, 1200}, Row{100000, 3600}}) {
        CAPTURE(row.asked);
        Bench b;
        Client c(b, tuple("198.51.100.7:5000"));
        auto r = c.allocate({Client::udp(), Client::u32(stun::attr::Lifetime, row.asked)});
        REQUIRE(r.success());
        CHECK(r->get_u32(stun::attr::Lifetime) == row.granted);
    }
}

TEST_CASE("an allocation expires at the end of its lifetime and frees its relay socket (RFC 8656 §7)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    REQUIRE(c.allocate().success());
    b.advance(std::chrono::seconds(599));
    b.server->on_timer(b.now);
    CHECK(b.server->allocation_count() == 1);
    b.advance(std::chrono::seconds(1));
    b.server->on_timer(b.now);
    CHECK(b.server->allocation_count() == 0);
    CHECK(b.binder.open_handles.empty());
    CHECK(b.quota.total() == 0);
}

TEST_CASE("Refresh extends the lifetime; LIFETIME 0 deletes (RFC 8656 §7.3)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    REQUIRE(c.allocate().success());
    b.advance(std::chrono::seconds(500));
    auto r = c.refresh(1000);
    REQUIRE(r.success());
    CHECK(r->get_u32(stun::attr::Lifetime) == 1000u);
    CHECK(stun::check_message_integrity(*r.msg, c.md5_key()));
    b.advance(std::chrono::seconds(999));
    b.server->on_timer(b.now);
    CHECK(b.server->allocation_count() == 1);

    auto d = c.refresh(0);
    REQUIRE(d.success());
    CHECK(d->get_u32(stun::attr::Lifetime) == 0u);
    CHECK(stun::check_message_integrity(*d.msg, c.md5_key()));
    CHECK(b.server->allocation_count() == 0);
    CHECK(b.binder.open_handles.empty());
    CHECK(c.refresh(600).code() == 437);
}

TEST_CASE("Refresh with no allocation is 437; from another user 441 (RFC 8656 §7.3, §5)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    CHECK(c.refresh(600).code() == 437);
    REQUIRE(c.allocate().success());
    Client intruder(b, tuple("198.51.100.7:5000"), "other", "pass2");
    CHECK(intruder.refresh(0).code() == 441);
    CHECK(b.server->allocation_count() == 1);
}

TEST_CASE("Refresh asking for a family the allocation lacks is 443") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    REQUIRE(c.allocate().success());
    CHECK(c.request(stun::method::Refresh, {Client::family(2)}).code() == 443);
}

TEST_CASE("closing a TCP client connection deletes its allocation (RFC 8656 §5)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000", tb::Transport::Tcp));
    REQUIRE(c.allocate().success());
    b.server->on_client_closed(b.now, c.five_tuple());
    CHECK(b.server->allocation_count() == 0);
    CHECK(b.binder.open_handles.empty());
}

TEST_CASE("an unknown method is a 400, responses and garbage get no answer") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    auto unknown = c.build(0x0FF, {}, Opt{Client::Mac::None});
    b.send(c.five_tuple(), unknown);
    CHECK(b.reply().code() == 400);
    auto resp = c.build(stun::method::Binding, {}, Opt{Client::Mac::None}, stun::Class::Success);
    b.send(c.five_tuple(), resp);
    CHECK(b.out.empty());
    const std::uint8_t garbage[] = {0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3};
    b.send(c.five_tuple(), garbage);
    CHECK(b.out.empty());
    auto bad_fp = c.build(stun::method::Binding, {}, Opt{Client::Mac::None, false, false, true});
    bad_fp.back() ^= 0xFF;
    b.send(c.five_tuple(), bad_fp);
    CHECK(b.out.empty());
}

TEST_CASE("Refresh grants the requested lifetime up to the maximum, and the default without LIFETIME (RFC 8656 §7.3)") {
    struct Row { std::optional<std::uint32_t> asked; std::uint32_t granted; };
    for (auto row : {Row{60, 60}, Row{100000, 3600}, Row{std::nullopt, 600}}) {
        CAPTURE(row.granted);
        Bench b;
        Client c(b, tuple("198.51.100.7:5000"));
        REQUIRE(c.allocate().success());
        auto r = c.refresh(row.asked);
        REQUIRE(r.success());
        CHECK(r->get_u32(stun::attr::Lifetime) == row.granted);
    }
}

TEST_CASE("a user over its byte quota gets 486 on Allocate, and its allocation ends at the next Refresh") {
    struct Gate : turn::QuotaGate {
        bool over = false;
        bool over_quota(const tb::config::Realm& realm, const std::string& account) const override {
            CHECK(realm.name == "example.org");
            CHECK(account == "test");
            return over;
        }
    } gate;
    Bench b;
    b.cfg->realms["example.org"].quota_bytes = 1000;
    b.server = std::make_unique<turn::Server>(turn::SharedState{b.cfg, &b.nonces, &b.quota, 0, &gate}, b.binder);
    Client c(b, tuple("198.51.100.7:5000"));
    REQUIRE(c.allocate().success());
    CHECK(c.refresh(600).success());
    gate.over = true;
    Client d(b, tuple("198.51.100.7:5001"));
    CHECK(d.allocate().code() == 486);
    auto r = c.refresh(600);
    CHECK(r.code() == 486);
    CHECK(b.server->allocation_count() == 0);
    CHECK(b.binder.open_handles.empty());
    CHECK(b.server->stats().quota_refusals == 2);
    // Deleting is always allowed, even over quota.
    gate.over = false;
    REQUIRE(d.allocate().success());
    gate.over = true;
    CHECK(d.refresh(0).success());
}

TEST_CASE("without quota_bytes in the realm the gate is never asked") {
    struct Gate : turn::QuotaGate {
        bool over_quota(const tb::config::Realm&, const std::string&) const override {
            FAIL("asked without a quota");
            return true;
        }
    } gate;
    Bench b;
    b.server = std::make_unique<turn::Server>(turn::SharedState{b.cfg, &b.nonces, &b.quota, 0, &gate}, b.binder);
    Client c(b, tuple("198.51.100.7:5000"));
    CHECK(c.allocate().success());
}

TEST_CASE("a draining node answers Allocate with 300 and ALTERNATE-SERVER, or 403 with no live node (RFC 8489 §10, issue 15)") {
    struct Gate : turn::DrainGate {
        std::optional<std::optional<tb::Endpoint>> to;
        std::optional<std::optional<tb::Endpoint>> redirect() const override { return to; }
    } gate;
    Bench b;
    b.server = std::make_unique<turn::Server>(
        turn::SharedState{b.cfg, &b.nonces, &b.quota, 0, nullptr, nullptr, &gate}, b.binder);
    Client live(b, tuple("198.51.100.7:5000"));
    REQUIRE(live.allocate().success());
    gate.to = std::optional<tb::Endpoint>(*tb::Endpoint::parse("192.0.2.12:3478"));
    Client c(b, tuple("198.51.100.7:5001"));
    auto r = c.allocate();
    CHECK(r.code() == 300);
    CHECK(r->get_address(stun::attr::AlternateServer) == tb::Endpoint::parse("192.0.2.12:3478"));
    CHECK(live.refresh(600).success());  // what is live stays
    gate.to = std::optional<tb::Endpoint>();
    Client d(b, tuple("198.51.100.7:5002"));
    CHECK(d.allocate().code() == 403);
    CHECK(b.server->allocation_count() == 1);
}
