// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/turn/nonce.hpp"

#include <openssl/rand.h>

#include <charconv>
#include <cstring>

#include "turnbridge/stun/integrity.hpp"

namespace turnbridge::turn {
namespace {

// RFC 8489 §9.2: 24 security-feature bits, bit 0 first, base64 in 4 characters.
// Set: bit 0 password algorithms, bit 1 username anonymity (0xC00000 -> "wAAA").
constexpr std::string_view kFeatures = "wAAA";
constexpr std::size_t kExpiryHex = 12;
constexpr std::size_t kMacHex = 16;

std::int64_t to_seconds(Time t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

void to_hex(std::uint64_t v, std::size_t digits, std::string& out) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (std::size_t i = digits; i-- > 0;) out.push_back(kHex[(v >> (4 * i)) & 0xF]);
}

}  // namespace

NonceMinter::NonceMinter(std::array<std::uint8_t, 32> key, std::chrono::seconds lifetime)
    : key_(key), lifetime_(lifetime) {}

NonceMinter NonceMinter::with_random_key(std::chrono::seconds lifetime) {
    std::array<std::uint8_t, 32> key{};
    RAND_bytes(key.data(), static_cast<int>(key.size()));
    return NonceMinter(key, lifetime);
}

std::string NonceMinter::mac(std::int64_t expiry, const IpAddress& client) const {
    std::uint8_t input[8 + 1 + 16];
    for (int i = 0; i < 8; ++i) input[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(expiry) >> (56 - 8 * i));
    input[8] = static_cast<std::uint8_t>(client.family);
    std::memcpy(input + 9, client.bytes.data(), 16);
    const auto out = stun::hmac_sha256(key_, stun::Bytes(input, sizeof input));
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | out[i];
    std::string s;
    to_hex(v, kMacHex, s);
    return s;
}

std::string NonceMinter::mint(Time now, const IpAddress& client) const {
    const std::int64_t expiry = to_seconds(now) + lifetime_.count();
    std::string s;
    s.reserve(kCookie.size() + kFeatures.size() + kExpiryHex + kMacHex);
    s.append(kCookie).append(kFeatures);
    to_hex(static_cast<std::uint64_t>(expiry), kExpiryHex, s);
    s.append(mac(expiry, client));
    return s;
}

NonceMinter::Check NonceMinter::check(std::string_view nonce, Time now, const IpAddress& client) const {
    const std::size_t prefix = kCookie.size() + kFeatures.size();
    if (nonce.size() != prefix + kExpiryHex + kMacHex || nonce.substr(0, kCookie.size()) != kCookie)
        return Check::Invalid;
    std::uint64_t expiry = 0;
    const char* first = nonce.data() + prefix;
    auto [p, ec] = std::from_chars(first, first + kExpiryHex, expiry, 16);
    if (ec != std::errc() || p != first + kExpiryHex) return Check::Invalid;
    const std::string expected = mac(static_cast<std::int64_t>(expiry), client);
    const auto got = nonce.substr(prefix + kExpiryHex);
    if (!stun::equal_secret({reinterpret_cast<const std::uint8_t*>(expected.data()), expected.size()},
                            {reinterpret_cast<const std::uint8_t*>(got.data()), got.size()}))
        return Check::Invalid;
    return static_cast<std::int64_t>(expiry) > to_seconds(now) ? Check::Valid : Check::Stale;
}

bool NonceMinter::announces_password_algorithms(std::string_view nonce) {
    // The first feature character carries bit 0 (password algorithms) as its 0x20 bit.
    if (nonce.size() < kCookie.size() + 4 || nonce.substr(0, kCookie.size()) != kCookie) return false;
    const char c = nonce[kCookie.size()];
    static constexpr std::string_view kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto v = kB64.find(c);
    return v != std::string_view::npos && (v & 0x20) != 0;
}

}  // namespace turnbridge::turn
