// SPDX-License-Identifier: Apache-2.0
#pragma once
// Message integrity, fingerprint and long-term credential keys (RFC 8489 §9.2.2, §14.5-14.7).
#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "turnbridge/stun/message.hpp"

namespace turnbridge::stun {

std::uint32_t crc32(Bytes data);

// RFC 8489 §14.5: HMAC-SHA1 over the message up to the attribute, length adjusted.
bool check_message_integrity(const Message& m, Bytes key);
// RFC 8489 §14.6: HMAC-SHA256, possibly truncated (16..32 bytes, multiple of 4).
bool check_message_integrity_sha256(const Message& m, Bytes key);
// RFC 8489 §14.7. True when the message has no FINGERPRINT too (it is optional).
bool check_fingerprint(const Message& m);

// RFC 8489 §9.2.2: key = MD5(username ":" realm ":" password) or SHA-256 of the same.
// Passwords are used as given (OpaqueString of ASCII is the identity).
std::array<std::uint8_t, 16> long_term_key_md5(std::string_view user, std::string_view realm,
                                               std::string_view password);
std::array<std::uint8_t, 32> long_term_key_sha256(std::string_view user, std::string_view realm,
                                                  std::string_view password);
// RFC 8489 §14.4: USERHASH = SHA-256(username ":" realm).
std::array<std::uint8_t, 32> userhash(std::string_view user, std::string_view realm);

// Plain HMACs (TURN REST passwords, nonce MACs), with a per-thread context and digests fetched
// once, so a flood of requests costs no provider lookups.
std::array<std::uint8_t, 20> hmac_sha1(Bytes key, Bytes data);
std::array<std::uint8_t, 32> hmac_sha256(Bytes key, Bytes data);

// Constant-time comparison (CRYPTO_memcmp) for secrets and MACs.
bool equal_secret(Bytes a, Bytes b);

}  // namespace turnbridge::stun
