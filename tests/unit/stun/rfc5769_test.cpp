// SPDX-License-Identifier: Apache-2.0
// RFC 5769 §2 test vectors, read from tests/fixtures/rfc5769 (copied from shared/vectors).
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "turnbridge/stun/integrity.hpp"
#include "turnbridge/stun/message.hpp"

using namespace turnbridge;
using namespace turnbridge::stun;

namespace {
std::vector<std::uint8_t> read_vector(const std::string& name) {
    std::ifstream f(std::string(TURNBRIDGE_VECTORS_DIR) + "/" + name, std::ios::binary);
    REQUIRE_MESSAGE(f.good(), "missing vector " << name);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
Bytes as_bytes(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }
}  // namespace

TEST_CASE("RFC 5769 §2.1 sample request: attributes, short-term integrity and fingerprint") {
    auto bytes = read_vector("rfc5769-2.1-sample-request.bin");
    auto m = Message::parse(bytes);
    REQUIRE(m);
    CHECK(m->method() == method::Binding);
    CHECK(m->cls() == Class::Request);
    CHECK(m->get_string(attr::Software) == "STUN test client");
    CHECK(m->get_u32(attr::Priority) == 0x6e0001ffu);
    CHECK(m->get_string(attr::Username) == "evtj:h6vY");
    CHECK(check_message_integrity(*m, as_bytes("VOkJxbRl1RmTxUk/WvJxBt")));
    CHECK_FALSE(check_message_integrity(*m, as_bytes("VOkJxbRl1RmTxUk/WvJxBu")));
    CHECK(check_fingerprint(*m));
    bytes[30] ^= 1;  // inside SOFTWARE: both integrity and fingerprint must now fail
    auto bad = Message::parse(bytes);
    REQUIRE(bad);
    CHECK_FALSE(check_message_integrity(*bad, as_bytes("VOkJxbRl1RmTxUk/WvJxBt")));
    CHECK_FALSE(check_fingerprint(*bad));
}

TEST_CASE("RFC 5769 §2.2 and §2.3 responses decode XOR-MAPPED-ADDRESS") {
    struct Row { const char* file; const char* mapped; };
    const Row rows[] = {{"rfc5769-2.2-sample-ipv4-response.bin", "192.0.2.1:32853"},
                        {"rfc5769-2.3-sample-ipv6-response.bin", "[2001:db8:1234:5678:11:2233:4455:6677]:32853"}};
    for (const auto& r : rows) {
        CAPTURE(r.file);
        auto bytes = read_vector(r.file);
        auto m = Message::parse(bytes);
        REQUIRE(m);
        CHECK(m->cls() == Class::Success);
        CHECK(m->get_string(attr::Software) == "test vector");
        auto mapped = m->get_xor_address(attr::XorMappedAddress);
        REQUIRE(mapped);
        CHECK(mapped->to_string() == r.mapped);
        CHECK(check_message_integrity(*m, as_bytes("VOkJxbRl1RmTxUk/WvJxBt")));
        CHECK(check_fingerprint(*m));
    }
}

TEST_CASE("RFC 5769 §2.4 long-term credentials: MD5 key from user, realm and SASLprep'd password") {
    auto bytes = read_vector("rfc5769-2.4-sample-request-long-term-auth.bin");
    auto m = Message::parse(bytes);
    REQUIRE(m);
    const std::string user = "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";  // マトリックス
    CHECK(m->get_string(attr::Username) == user);
    CHECK(m->get_string(attr::Realm) == "example.org");
    CHECK(m->get_string(attr::Nonce) == "f//499k954d6OL34oL9FSTvy64sA");
    auto key = long_term_key_md5(user, "example.org", "TheMatrIX");
    CHECK(check_message_integrity(*m, key));
    auto wrong = long_term_key_md5(user, "example.org", "TheMatrIx");
    CHECK_FALSE(check_message_integrity(*m, wrong));
}

TEST_CASE("a message we build verifies with our own checks and round-trips (RFC 8489 §14.5-14.7)") {
    std::array<std::uint8_t, 512> buf{};
    TransactionId tid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    MessageBuilder b(buf, method::Allocate, Class::Success, tid);
    b.add_xor_address(attr::XorRelayedAddress, *Endpoint::parse("[2001:db8::1]:61000"));
    b.add_u32(attr::Lifetime, 600);
    b.add_string(attr::Software, "turnbridge");
    auto key = long_term_key_sha256("test", "example.org", "secret");
    b.add_message_integrity(Bytes(key.data(), 16));
    b.add_message_integrity_sha256(key);
    b.add_fingerprint();
    REQUIRE(b.ok());
    auto m = Message::parse(b.bytes());
    REQUIRE(m);
    CHECK(m->method() == method::Allocate);
    CHECK(m->cls() == Class::Success);
    CHECK(m->transaction_id() == tid);
    CHECK(m->get_xor_address(attr::XorRelayedAddress)->to_string() == "[2001:db8::1]:61000");
    CHECK(m->get_u32(attr::Lifetime) == 600u);
    CHECK(check_message_integrity(*m, Bytes(key.data(), 16)));
    CHECK(check_message_integrity_sha256(*m, key));
    CHECK(check_fingerprint(*m));
}
