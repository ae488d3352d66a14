// SPDX-License-Identifier: Apache-2.0
#pragma once
// SDES keys for SRTP on the trunk leg (RFC 4568 "a=crypto"): parse, choose and write crypto
// attributes. Only what libsrtp2 does for us without re-keying: AES_CM_128_HMAC_SHA1_80 and _32,
// one inline key (no MKI), a lifetime that outlasts any call, and the WSH/KDR=0 session params.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "turnbridge/gateway/random.hpp"
#include "turnbridge/gateway/sdp.hpp"
#include "turnbridge/gateway/srtp_session.hpp"

namespace turnbridge::gateway {

// Per trunk (config `srtp`). Optional is RFC 8643 opportunistic SRTP: RTP/AVP with a=crypto.
enum class SrtpMode : std::uint8_t { Off, Optional, Required };
std::string_view to_string(SrtpMode m);

// RFC 4568 §6.2: both suites take a 128-bit master key and a 112-bit master salt.
constexpr std::size_t kSdesKeySize = 16, kSdesSaltSize = 14, kSdesKeySaltSize = kSdesKeySize + kSdesSaltSize;
// More a=crypto lines in one m= section than any peer sends; the rest are not read.
constexpr std::size_t kMaxCryptoLines = 16;

enum class SdesSuite : std::uint8_t { AesCm128HmacSha1_80, AesCm128HmacSha1_32 };
std::string_view to_string(SdesSuite s);
SrtpProfile srtp_profile(SdesSuite s);

struct SdesCrypto {
    std::uint32_t tag = 1;   // RFC 4568 §9.1: 1*9DIGIT
    SdesSuite suite = SdesSuite::AesCm128HmacSha1_80;
    std::array<std::uint8_t, kSdesKeySaltSize> key_salt{};   // master key || master salt
    bool operator==(const SdesCrypto&) const = default;
};

// One a=crypto value (after "crypto:"). The error names what we do not take: an unknown suite, a
// key that is not 30 bytes of base64, an MKI, a short lifetime, an unknown session parameter.
SdpResult<SdesCrypto> parse_crypto(std::string_view value);
// "1 AES_CM_128_HMAC_SHA1_80 inline:<base64 of 30 bytes>"
std::string format_crypto(const SdesCrypto& c);

// Our offer: one line per suite (80 first, as Asterisk and rtpengine), each with a fresh key.
std::vector<SdesCrypto> offer_crypto(const RandomSource& random);
// Our answer to the peer's lines: the first we take (RFC 4568 §7.1.1: the offerer's order), with
// its tag and suite and our key for that suite (from `ours`, made once per call by offer_crypto).
// The error is why the last line was not taken.
struct SdesChoice {
    SdesCrypto remote;   // their key: what we unprotect with
    SdesCrypto local;    // ours: what we protect with, written in our answer
    bool operator==(const SdesChoice&) const = default;
};
SdpResult<SdesChoice> answer_crypto(const std::vector<std::string>& offered, const std::vector<SdesCrypto>& ours);
// The answerer's one line against what we offered: same tag, same suite (RFC 4568 §7.1.2).
SdpResult<SdesChoice> accept_crypto(const std::vector<std::string>& answered, const std::vector<SdesCrypto>& offered);

// What keys the trunk leg's SRTP session (SrtpSession::create).
SrtpKeys srtp_keys(const SdesChoice& c);

}  // namespace turnbridge::gateway
