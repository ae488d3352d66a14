// SPDX-License-Identifier: Apache-2.0
// RFC 4568 SDES: the a=crypto attribute (§9.1 grammar), offered and answered per §7.1.
#include "turnbridge/gateway/sdes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "turnbridge/base/base64.hpp"

namespace turnbridge::gateway {
namespace {

constexpr std::string_view kSuite80 = "AES_CM_128_HMAC_SHA1_80";
constexpr std::string_view kSuite32 = "AES_CM_128_HMAC_SHA1_32";
// We never re-key: a key must be good for longer than any call. RFC 3711 §9.2 caps SRTCP at 2^31.
constexpr unsigned kMinLifetimeLog2 = 31, kMaxLifetimeLog2 = 48;   // RFC 3711 §3.2.1: at most 2^48

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// The next whitespace-separated field of `s`, which moves past it.
std::string_view next_field(std::string_view& s) {
    std::size_t i = 0;
    while (i < s.size() && is_wsp(s[i])) ++i;
    std::size_t j = i;
    while (j < s.size() && !is_wsp(s[j])) ++j;
    const auto f = s.substr(i, j - i);
    s.remove_prefix(j);
    return f;
}

template <class T>
bool parse_digits(std::string_view s, std::size_t max_digits, T& out) {
    if (s.empty() || s.size() > max_digits || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    return std::from_chars(s.data(), s.data() + s.size(), out).ec == std::errc{};
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return (x | 0x20) == (y | 0x20); });
}

// RFC 4568 §6.1: lifetime = ["2^"] 1*(DIGIT), in packets.
bool lifetime_ok(std::string_view s) {
    if (s.starts_with("2^")) {
        unsigned n = 0;
        return parse_digits(s.substr(2), 2, n) && n >= kMinLifetimeLog2 && n <= kMaxLifetimeLog2;
    }
    std::uint64_t n = 0;
    return parse_digits(s, 15, n) && n >= (std::uint64_t{1} << kMinLifetimeLog2) && n <= (std::uint64_t{1} << kMaxLifetimeLog2);
}

// RFC 4568 §6.3: session parameters. WSH (§6.3.7) is a hint we may ignore; KDR=0 (§6.3.1) is
// libsrtp's one key derivation rate. The UNENCRYPTED_*/UNAUTHENTICATED_SRTP and FEC ones, or any
// we do not know, would change what the packets are: that line is not taken.
bool session_param_ok(std::string_view p) {
    unsigned n = 0;
    if (p.starts_with("WSH=")) return parse_digits(p.substr(4), 9, n) && n >= 64;
    return p == "KDR=0";
}

}  // namespace

std::string_view to_string(SrtpMode m) {
    switch (m) {
    case SrtpMode::Off: return "off";
    case SrtpMode::Optional: return "optional";
    case SrtpMode::Required: return "required";
    }
    return "off";
}

std::string_view to_string(SdesSuite s) {
    return s == SdesSuite::AesCm128HmacSha1_32 ? kSuite32 : kSuite80;
}

SrtpProfile srtp_profile(SdesSuite s) {
    return s == SdesSuite::AesCm128HmacSha1_32 ? SrtpProfile::Aes128CmSha1_32 : SrtpProfile::Aes128CmSha1_80;
}

SdpResult<SdesCrypto> parse_crypto(std::string_view value) {
    SdesCrypto c;
    if (!parse_digits(next_field(value), 9, c.tag)) return SdpError{"a=crypto tag"};
    const auto suite = next_field(value);
    if (suite == kSuite80) c.suite = SdesSuite::AesCm128HmacSha1_80;
    else if (suite == kSuite32) c.suite = SdesSuite::AesCm128HmacSha1_32;
    else return SdpError{"a=crypto suite not supported (AES_CM_128_HMAC_SHA1_80 or _32)"};
    const auto key_params = next_field(value);
    // RFC 4568 §9.1: several key-params are several master keys, told apart by their MKI.
    if (key_params.find(';') != std::string_view::npos) return SdpError{"a=crypto with several keys (MKI) not supported"};
    const auto colon = key_params.find(':');
    if (colon == std::string_view::npos || !iequals(key_params.substr(0, colon), "inline"))
        return SdpError{"a=crypto key method is not inline"};
    std::string_view info = key_params.substr(colon + 1);
    const auto bar = info.find('|');
    const auto key = info.substr(0, bar);
    const auto decoded = base64_decode(key);
    if (!decoded) return SdpError{"a=crypto key is not base64"};
    if (decoded->size() != kSdesKeySaltSize) return SdpError{"a=crypto key is not 30 bytes (16 key + 14 salt)"};
    std::copy(decoded->begin(), decoded->end(), c.key_salt.begin());
    if (bar != std::string_view::npos) {
        // "|lifetime", "|MKI:length" or both, in that order (RFC 4568 §9.1).
        std::string_view rest = info.substr(bar + 1);
        const auto bar2 = rest.find('|');
        const auto first = rest.substr(0, bar2);
        if (bar2 != std::string_view::npos || first.find(':') != std::string_view::npos)
            return SdpError{"a=crypto MKI not supported"};
        if (!lifetime_ok(first)) return SdpError{"a=crypto lifetime shorter than 2^31 packets or malformed"};
    }
    for (auto p = next_field(value); !p.empty(); p = next_field(value))
        if (!session_param_ok(p)) return SdpError{"a=crypto session parameter not supported"};
    return c;
}

std::string format_crypto(const SdesCrypto& c) {
    return fmt::format("{} {} inline:{}", c.tag, to_string(c.suite), base64_encode(c.key_salt));
}

namespace {
SdesCrypto fresh(std::uint32_t tag, SdesSuite suite, const RandomSource& random) {
    SdesCrypto c;
    c.tag = tag;
    c.suite = suite;
    random(c.key_salt);
    return c;
}
}  // namespace

std::vector<SdesCrypto> offer_crypto(const RandomSource& random) {
    return {fresh(1, SdesSuite::AesCm128HmacSha1_80, random), fresh(2, SdesSuite::AesCm128HmacSha1_32, random)};
}

SdpResult<SdesChoice> answer_crypto(const std::vector<std::string>& offered, const std::vector<SdesCrypto>& ours) {
    SdpError why{"no a=crypto in the offer"};
    const std::size_t n = std::min(offered.size(), kMaxCryptoLines);
    for (std::size_t i = 0; i < n; ++i) {
        auto c = parse_crypto(offered[i]);
        if (!c) {
            why = c.error();
            continue;
        }
        for (auto local : ours) {
            if (local.suite != c->suite) continue;
            local.tag = c->tag;   // RFC 4568 §7.1.2: the answer echoes the chosen line's tag
            return SdesChoice{*c, local};
        }
        why = SdpError{"a=crypto suite we have no key for"};
    }
    return why;
}

SdpResult<SdesChoice> accept_crypto(const std::vector<std::string>& answered, const std::vector<SdesCrypto>& offered) {
    // RFC 4568 §7.1.2: exactly one crypto attribute in the answer's media section.
    if (answered.empty()) return SdpError{"no a=crypto in the answer"};
    if (answered.size() > 1) return SdpError{"more than one a=crypto in the answer"};
    auto c = parse_crypto(answered.front());
    if (!c) return c.error();
    for (const auto& o : offered) {
        if (o.tag != c->tag) continue;
        if (o.suite != c->suite) return SdpError{"a=crypto answer changes the suite of our offer's tag"};
        return SdesChoice{*c, o};
    }
    return SdpError{"a=crypto answer names a tag we did not offer"};
}

SrtpKeys srtp_keys(const SdesChoice& c) {
    SrtpKeys k;
    k.profile = srtp_profile(c.local.suite);
    k.local_key = std::span(c.local.key_salt).first(kSdesKeySize);
    k.local_salt = std::span(c.local.key_salt).subspan(kSdesKeySize);
    k.remote_key = std::span(c.remote.key_salt).first(kSdesKeySize);
    k.remote_salt = std::span(c.remote.key_salt).subspan(kSdesKeySize);
    return k;
}

}  // namespace turnbridge::gateway
