// SPDX-License-Identifier: Apache-2.0
// HMAC_CTX streams the header with its adjusted length without copying the message; OpenSSL 3
// marks it deprecated in favour of EVP_MAC, which needs a provider fetch per call.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "turnbridge/stun/integrity.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstring>
#include <memory>

namespace turnbridge::stun {
namespace {

constexpr std::uint32_t kFingerprintXor = 0x5354554e;  // RFC 8489 §14.7

constexpr std::array<std::uint32_t, 256> make_crc_table() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        t[i] = c;
    }
    return t;
}
constexpr auto kCrcTable = make_crc_table();

std::uint32_t crc32_update(std::uint32_t crc, Bytes data) {
    for (auto byte : data) crc = kCrcTable[(crc ^ byte) & 0xFF] ^ (crc >> 8);
    return crc;
}

// Digests fetched once: OpenSSL 3 looks up a provider on every init given a legacy EVP_sha1()
// style handle, which cost more than the hash itself in profiles of Allocate floods.
enum class Md { Md5, Sha1, Sha256 };
const EVP_MD* md(Md which) {
    static EVP_MD* const md5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
    static EVP_MD* const sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    switch (which) {
        case Md::Md5: return md5;
        case Md::Sha1: return sha1;
        case Md::Sha256: return sha256;
    }
    return nullptr;
}

// One context per thread, reused: no allocation per message, nothing shared between workers.
struct HmacCtxFree {
    void operator()(HMAC_CTX* c) const { HMAC_CTX_free(c); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
HMAC_CTX* hmac_ctx() {
    thread_local std::unique_ptr<HMAC_CTX, HmacCtxFree> ctx(HMAC_CTX_new());
    return ctx.get();
}
EVP_MD_CTX* md_ctx() {
    thread_local std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    return ctx.get();
}

// HMAC over the message prefix [0, end) with the header's length field replaced by `length`
// (RFC 8489 §14.5: the length is as if the integrity attribute were the last one).
void hmac_prefix(Md which, Bytes key, Bytes message, std::size_t end, std::uint16_t length,
                 std::uint8_t* out, unsigned* out_len) {
    HMAC_CTX* ctx = hmac_ctx();
    const std::uint8_t len_be[2] = {static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length)};
    HMAC_Init_ex(ctx, key.data(), static_cast<int>(key.size()), md(which), nullptr);
    HMAC_Update(ctx, message.data(), 2);
    HMAC_Update(ctx, len_be, 2);
    HMAC_Update(ctx, message.data() + 4, end - 4);
    HMAC_Final(ctx, out, out_len);
}

template <std::size_t N>
std::array<std::uint8_t, N> digest(Md which, std::string_view a, std::string_view b, std::string_view c) {
    std::array<std::uint8_t, N> out{};
    EVP_MD_CTX* ctx = md_ctx();
    EVP_DigestInit_ex(ctx, md(which), nullptr);
    EVP_DigestUpdate(ctx, a.data(), a.size());
    EVP_DigestUpdate(ctx, ":", 1);
    EVP_DigestUpdate(ctx, b.data(), b.size());
    if (c.data() != nullptr) {
        EVP_DigestUpdate(ctx, ":", 1);
        EVP_DigestUpdate(ctx, c.data(), c.size());
    }
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx, out.data(), &n);
    return out;
}

template <std::size_t N>
std::array<std::uint8_t, N> hmac(Md which, Bytes key, Bytes data) {
    std::array<std::uint8_t, N> out{};
    HMAC_CTX* ctx = hmac_ctx();
    unsigned n = 0;
    HMAC_Init_ex(ctx, key.data(), static_cast<int>(key.size()), md(which), nullptr);
    HMAC_Update(ctx, data.data(), data.size());
    HMAC_Final(ctx, out.data(), &n);
    return out;
}

}  // namespace

std::array<std::uint8_t, 20> hmac_sha1(Bytes key, Bytes data) { return hmac<20>(Md::Sha1, key, data); }
std::array<std::uint8_t, 32> hmac_sha256(Bytes key, Bytes data) { return hmac<32>(Md::Sha256, key, data); }

std::uint32_t crc32(Bytes data) { return crc32_update(0xFFFFFFFFu, data) ^ 0xFFFFFFFFu; }

bool equal_secret(Bytes a, Bytes b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool check_message_integrity(const Message& m, Bytes key) {
    const auto* a = m.find(attr::MessageIntegrity);
    if (a == nullptr || a->length != 20) return false;
    std::uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    hmac_prefix(Md::Sha1, key, m.bytes(), a->offset - 4u, static_cast<std::uint16_t>(a->offset + 20 - kHeaderSize), mac, &n);
    return equal_secret(Bytes(mac, 20), m.value(*a));
}

bool check_message_integrity_sha256(const Message& m, Bytes key) {
    const auto* a = m.find(attr::MessageIntegritySha256);
    // RFC 8489 §14.6: at least 16 bytes, a multiple of 4, at most 32.
    if (a == nullptr || a->length < 16 || a->length > 32 || a->length % 4 != 0) return false;
    std::uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    hmac_prefix(Md::Sha256, key, m.bytes(), a->offset - 4u,
                static_cast<std::uint16_t>(a->offset + a->length - kHeaderSize), mac, &n);
    return equal_secret(Bytes(mac, a->length), m.value(*a));
}

bool check_fingerprint(const Message& m) {
    const auto* a = m.find(attr::Fingerprint);
    if (a == nullptr) return true;
    if (a->length != 4) return false;
    const auto b = m.bytes();
    const std::uint16_t length = static_cast<std::uint16_t>(a->offset + 4 - kHeaderSize);
    const std::uint8_t len_be[2] = {static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length)};
    std::uint32_t crc = crc32_update(0xFFFFFFFFu, b.first(2));
    crc = crc32_update(crc, Bytes(len_be, 2));
    crc = crc32_update(crc, b.subspan(4, a->offset - 4u - 4u)) ^ 0xFFFFFFFFu;
    const auto v = m.value(*a);
    const std::uint32_t got = static_cast<std::uint32_t>(v[0]) << 24 | static_cast<std::uint32_t>(v[1]) << 16 |
                              static_cast<std::uint32_t>(v[2]) << 8 | v[3];
    return (crc ^ kFingerprintXor) == got;
}

void MessageBuilder::add_message_integrity(Bytes key) {
    std::uint8_t* p = reserve(attr::MessageIntegrity, 20);
    if (!p) return;
    std::uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    hmac_prefix(Md::Sha1, key, bytes(), size_ - 24, static_cast<std::uint16_t>(size_ - kHeaderSize), mac, &n);
    std::memcpy(p, mac, 20);
}

void MessageBuilder::add_message_integrity_sha256(Bytes key) {
    std::uint8_t* p = reserve(attr::MessageIntegritySha256, 32);
    if (!p) return;
    std::uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    hmac_prefix(Md::Sha256, key, bytes(), size_ - 36, static_cast<std::uint16_t>(size_ - kHeaderSize), mac, &n);
    std::memcpy(p, mac, 32);
}

void MessageBuilder::add_fingerprint() {
    std::uint8_t* p = reserve(attr::Fingerprint, 4);
    if (!p) return;
    const std::uint32_t v = crc32(Bytes(buf_.data(), size_ - 8)) ^ kFingerprintXor;
    p[0] = static_cast<std::uint8_t>(v >> 24); p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8); p[3] = static_cast<std::uint8_t>(v);
}

std::array<std::uint8_t, 16> long_term_key_md5(std::string_view user, std::string_view realm, std::string_view password) {
    return digest<16>(Md::Md5, user, realm, password.data() ? password : std::string_view("", 0));
}
std::array<std::uint8_t, 32> long_term_key_sha256(std::string_view user, std::string_view realm, std::string_view password) {
    return digest<32>(Md::Sha256, user, realm, password.data() ? password : std::string_view("", 0));
}
std::array<std::uint8_t, 32> userhash(std::string_view user, std::string_view realm) {
    return digest<32>(Md::Sha256, user, realm, std::string_view());
}

}  // namespace turnbridge::stun
