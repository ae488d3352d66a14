// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <vector>

#include "turnbridge/stun/integrity.hpp"
#include "turnbridge/stun/message.hpp"

using namespace turnbridge;
using namespace turnbridge::stun;

namespace {
std::vector<std::uint8_t> header(std::uint16_t type, std::uint16_t length) {
    std::vector<std::uint8_t> v = {static_cast<std::uint8_t>(type >> 8), static_cast<std::uint8_t>(type),
                                   static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length),
                                   0x21, 0x12, 0xA4, 0x42};
    for (int i = 0; i < 12; ++i) v.push_back(static_cast<std::uint8_t>(i));
    return v;
}
}  // namespace

TEST_CASE("message type packs method and class (RFC 8489 §6)") {
    CHECK(message_type(method::Binding, Class::Request) == 0x0001);
    CHECK(message_type(method::Binding, Class::Success) == 0x0101);
    CHECK(message_type(method::Binding, Class::Error) == 0x0111);
    CHECK(message_type(method::Allocate, Class::Request) == 0x0003);
    CHECK(message_type(method::Send, Class::Indication) == 0x0016);
    CHECK(message_type(method::Data, Class::Indication) == 0x0017);
    CHECK(message_type(method::ChannelBind, Class::Error) == 0x0119);
}

TEST_CASE("malformed messages are rejected, never read out of bounds") {
    struct Row { const char* name; std::vector<std::uint8_t> bytes; };
    std::vector<Row> rows;
    rows.push_back({"empty", {}});
    rows.push_back({"short header", std::vector<std::uint8_t>(19, 0)});
    auto no_cookie = header(0x0001, 0); no_cookie[4] = 0;
    rows.push_back({"no magic cookie", no_cookie});
    rows.push_back({"length beyond datagram", header(0x0001, 8)});
    auto odd = header(0x0001, 2); odd.push_back(0); odd.push_back(0);
    rows.push_back({"length not a multiple of 4", odd});
    auto attr_over = header(0x0001, 4);
    for (auto b : {0x80, 0x22, 0x00, 0x10}) attr_over.push_back(static_cast<std::uint8_t>(b));
    rows.push_back({"attribute longer than message", attr_over});
    auto no_pad = header(0x0001, 8);
    for (auto b : {0x80, 0x22, 0x00, 0x05, 1, 2, 3, 4}) no_pad.push_back(static_cast<std::uint8_t>(b));
    rows.push_back({"attribute padding missing", no_pad});
    auto top_bits = header(0xC001, 0);
    rows.push_back({"top bits set", top_bits});
    auto after_fp = header(0x0001, 16);
    for (auto b : {0x80, 0x28, 0x00, 0x04, 0, 0, 0, 0, 0x80, 0x22, 0x00, 0x04, 1, 2, 3, 4})
        after_fp.push_back(static_cast<std::uint8_t>(b));
    rows.push_back({"attribute after FINGERPRINT", after_fp});
    for (const auto& r : rows) {
        CAPTURE(r.name);
        CHECK_FALSE(Message::parse(r.bytes));
    }
    auto ok = header(0x0001, 0);
    CHECK(Message::parse(ok));
}

TEST_CASE("attributes after MESSAGE-INTEGRITY are ignored except MI-SHA256 and FINGERPRINT (RFC 8489 §14.5)") {
    std::array<std::uint8_t, 256> buf{};
    TransactionId tid{};
    MessageBuilder b(buf, method::Binding, Class::Request, tid);
    b.add_string(attr::Username, "u");
    b.add_message_integrity(Bytes(reinterpret_cast<const std::uint8_t*>("k"), 1));
    b.add_string(attr::Software, "after");
    b.add_fingerprint();
    auto m = Message::parse(b.bytes());
    REQUIRE(m);
    CHECK(m->find(attr::Software) == nullptr);
    CHECK(m->find(attr::Fingerprint) != nullptr);
    CHECK(m->get_string(attr::Username) == "u");
}

TEST_CASE("MESSAGE-INTEGRITY-SHA256 may be truncated to 16 bytes but no shorter (RFC 8489 §14.6)") {
    auto key = long_term_key_sha256("test", "example.org", "secret");
    // A Refresh request whose only attribute is a MI-SHA256 of `mac_len` bytes, MAC'd by hand.
    auto make = [&](std::size_t mac_len) {
        std::vector<std::uint8_t> msg = {0x00, 0x04, 0x00, static_cast<std::uint8_t>(4 + mac_len),
                                         0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        unsigned char mac[32];
        unsigned n = 0;
        HMAC(EVP_sha256(), key.data(), 32, msg.data(), msg.size(), mac, &n);
        for (auto b : {0x00, 0x1C, 0x00, static_cast<int>(mac_len)}) msg.push_back(static_cast<std::uint8_t>(b));
        msg.insert(msg.end(), mac, mac + mac_len);
        return msg;
    };
    for (std::size_t len : {32u, 24u, 16u}) {
        CAPTURE(len);
        auto bytes = make(len);
        auto m = Message::parse(bytes);
        REQUIRE(m);
        CHECK(check_message_integrity_sha256(*m, key));
        bytes.back() ^= 1;
        CHECK_FALSE(check_message_integrity_sha256(*Message::parse(bytes), key));
    }
    auto tiny = make(12);
    CHECK_FALSE(check_message_integrity_sha256(*Message::parse(tiny), key));
}

TEST_CASE("builder latches failure when the buffer is too small") {
    std::array<std::uint8_t, 28> buf{};
    TransactionId tid{};
    MessageBuilder b(buf, method::Binding, Class::Success, tid);
    b.add_u32(attr::Lifetime, 1);
    CHECK(b.ok());
    b.add_u32(attr::Lifetime, 2);
    CHECK_FALSE(b.ok());
    CHECK(b.size() == 28);
}

TEST_CASE("ERROR-CODE and UNKNOWN-ATTRIBUTES encode as RFC 8489 §14.8-14.9 say") {
    std::array<std::uint8_t, 128> buf{};
    TransactionId tid{};
    MessageBuilder b(buf, method::Allocate, Class::Error, tid);
    b.add_error_code(StunCode::UnknownAttribute, "Unknown Attribute");
    const std::uint16_t unknown[] = {0x0031, 0x7FFF};
    b.add_unknown_attributes(unknown);
    auto m = Message::parse(b.bytes());
    REQUIRE(m);
    CHECK(m->get_error_code() == 420);
    auto v = m->get(attr::UnknownAttributes);
    REQUIRE(v);
    REQUIRE(v->size() == 4);
    CHECK((*v)[0] == 0x00); CHECK((*v)[1] == 0x31); CHECK((*v)[2] == 0x7F); CHECK((*v)[3] == 0xFF);
}
