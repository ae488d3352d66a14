// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "turnbridge/gateway/ice_lite.hpp"
#include "turnbridge/stun/integrity.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;

namespace {
// "# name" then one hex line: checks built by aioice (tests/fixtures/ice_lite/make_requests.py).
std::map<std::string, std::vector<std::uint8_t>> aioice_checks() {
    std::ifstream f(std::string(TURNBRIDGE_FIXTURES_DIR) + "/ice_lite/aioice_checks.txt");
    REQUIRE(f.good());
    std::map<std::string, std::vector<std::uint8_t>> out;
    std::string line, name;
    while (std::getline(f, line)) {
        if (line.rfind("# ", 0) == 0) { name = line.substr(2); continue; }
        std::vector<std::uint8_t> bytes;
        for (std::size_t i = 0; i + 1 < line.size(); i += 2) bytes.push_back(static_cast<std::uint8_t>(std::stoi(line.substr(i, 2), nullptr, 16)));
        out[name] = bytes;
    }
    return out;
}

const IceCredentials kOurs{"gwUfrag1", "gatewayPasswordGateway12"};
const IceCredentials kPeer{"aio1", "unusedByALiteAgent000000"};
const Time t0{};
const Endpoint browser = *Endpoint::parse("192.0.2.44:50000");

stun::Message response(const std::uint8_t* buf, std::size_t n) {
    auto m = stun::Message::parse({buf, n});
    REQUIRE(m);
    return *m;
}
stun::Bytes key(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }
}  // namespace

TEST_CASE("an aioice check gets a signed success with XOR-MAPPED-ADDRESS (RFC 8445 §7.3)") {
    auto checks = aioice_checks();
    IceLiteResponder ice(kOurs, kPeer);
    std::uint8_t buf[128];
    auto o = ice.on_stun(t0, browser, checks.at("controlling"), buf);
    REQUIRE(o.response_size > 0);
    CHECK(o.valid);
    CHECK_FALSE(o.nominated);
    CHECK_FALSE(ice.selected());
    CHECK(ice.last_consent() == t0);
    auto r = response(buf, o.response_size);
    CHECK(r.cls() == stun::Class::Success);
    CHECK(r.method() == stun::method::Binding);
    const auto req = *stun::Message::parse(checks.at("controlling"));
    CHECK(r.transaction_id() == req.transaction_id());
    CHECK(r.get_xor_address(stun::attr::XorMappedAddress) == browser);
    CHECK(stun::check_message_integrity(r, key(kOurs.pwd)));
    REQUIRE(r.find(stun::attr::Fingerprint));
    CHECK(stun::check_fingerprint(r));
}

TEST_CASE("media sources: any authenticated check's source until a nomination, then the selected pair only") {
    auto checks = aioice_checks();
    IceLiteResponder ice(kOurs, kPeer);
    std::uint8_t buf[128];
    const auto relay = *Endpoint::parse("198.51.100.7:61000");
    CHECK_FALSE(ice.accepts(browser));
    CHECK(ice.on_stun(t0, browser, checks.at("controlling"), buf).valid);
    CHECK(ice.accepts(browser));
    CHECK_FALSE(ice.accepts(relay));
    CHECK(ice.on_stun(t0, relay, checks.at("controlling use-candidate"), buf).nominated);
    CHECK(ice.accepts(relay));
    CHECK_FALSE(ice.accepts(browser));
    // Many sources: the table keeps the last few, and never grows.
    IceLiteResponder busy(kOurs, kPeer);
    for (std::uint16_t port = 1000; port < 1100; ++port)
        busy.on_stun(t0, Endpoint{browser.ip, port}, checks.at("controlling"), buf);
    CHECK(busy.accepts(Endpoint{browser.ip, 1099}));
    CHECK_FALSE(busy.accepts(Endpoint{browser.ip, 1000}));
}

TEST_CASE("USE-CANDIDATE from the controlling agent selects the pair; a later one moves it") {
    auto checks = aioice_checks();
    IceLiteResponder ice(kOurs, kPeer);
    std::uint8_t buf[128];
    auto o = ice.on_stun(t0, browser, checks.at("controlling use-candidate"), buf);
    CHECK(o.nominated);
    REQUIRE(ice.selected());
    CHECK(*ice.selected() == browser);
    const auto other = *Endpoint::parse("[2001:db8::5]:40000");
    o = ice.on_stun(t0 + std::chrono::seconds(5), other, checks.at("controlling use-candidate"), buf);
    CHECK(o.nominated);
    CHECK(*ice.selected() == other);
    CHECK(response(buf, o.response_size).get_xor_address(stun::attr::XorMappedAddress) == other);
    CHECK(ice.last_consent() == t0 + std::chrono::seconds(5));
}

TEST_CASE("bad credentials get no answer (Deviation from RFC 8489 §9.1.3's 401), a controlled peer gets 487") {
    auto checks = aioice_checks();
    IceLiteResponder ice(kOurs, kPeer);
    std::uint8_t buf[128];
    for (const char* name : {"wrong password", "wrong ufrag"}) {
        CAPTURE(name);
        auto o = ice.on_stun(t0, browser, checks.at(name), buf);
        CHECK_FALSE(o.valid);
        CHECK(o.rejected);
        CHECK(o.response_size == 0);
        CHECK_FALSE(ice.accepts(browser));
    }
    auto o = ice.on_stun(t0, browser, checks.at("controlled (role conflict for a lite agent)"), buf);
    CHECK_FALSE(o.valid);
    auto r = response(buf, o.response_size);
    CHECK(r.get_error_code() == kRoleConflict);
    CHECK(stun::check_message_integrity(r, key(kOurs.pwd)));
    CHECK_FALSE(ice.selected());
    CHECK_FALSE(ice.last_consent());
    // A mismatching remote ufrag is rejected once the remote is known...
    IceLiteResponder other(kOurs, IceCredentials{"zzzz", "x"});
    CHECK(other.on_stun(t0, browser, checks.at("controlling"), buf).rejected);
    // ...but accepted while the browser's SDP has not arrived yet.
    IceLiteResponder early(kOurs, IceCredentials{});
    CHECK(early.on_stun(t0, browser, checks.at("controlling"), buf).valid);
}

TEST_CASE("checks missing USERNAME or MESSAGE-INTEGRITY, without FINGERPRINT, or not requests get nothing") {
    IceLiteResponder ice(kOurs, kPeer);
    std::uint8_t req[128], buf[128];
    stun::TransactionId tid{1, 2, 3};
    {
        stun::MessageBuilder b(req, stun::method::Binding, stun::Class::Request, tid);
        b.add_u32(stun::attr::Priority, 1);
        b.add_fingerprint();
        auto o = ice.on_stun(t0, browser, {req, b.size()}, buf);
        CHECK(o.response_size == 0);
        CHECK(o.rejected);
    }
    {
        stun::MessageBuilder b(req, stun::method::Binding, stun::Class::Request, tid);
        b.add_string(stun::attr::Username, "gwUfrag1:aio1");
        b.add_message_integrity(key(kOurs.pwd));
        CHECK(ice.on_stun(t0, browser, {req, b.size()}, buf).response_size == 0);  // no FINGERPRINT
    }
    {
        stun::MessageBuilder b(req, stun::method::Binding, stun::Class::Indication, tid);
        b.add_fingerprint();
        CHECK(ice.on_stun(t0, browser, {req, b.size()}, buf).response_size == 0);  // keepalive
    }
    {
        stun::MessageBuilder b(req, stun::method::Binding, stun::Class::Request, tid);
        b.add_string(stun::attr::Username, "gwUfrag1:aio1");
        b.add_u32(0x0030, 7);  // unknown, comprehension-required
        b.add_message_integrity(key(kOurs.pwd));
        b.add_fingerprint();
        auto o = ice.on_stun(t0, browser, {req, b.size()}, buf);
        auto r = response(buf, o.response_size);
        CHECK(r.get_error_code() == 420);
        REQUIRE(r.get(stun::attr::UnknownAttributes));
        CHECK((*r.get(stun::attr::UnknownAttributes))[1] == 0x30);
    }
    CHECK_FALSE(ice.last_consent());
}
