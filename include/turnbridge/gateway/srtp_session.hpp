// SPDX-License-Identifier: Apache-2.0
#pragma once
// libsrtp2 sessions for one SRTP association: one for what we send, one for what we receive, keyed
// from the DTLS exporter (RFC 5764 §4.2, browser leg) or SDES (RFC 4568, trunk leg). Protect and
// unprotect work in place.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

namespace turnbridge::gateway {

// RFC 5764 §4.1.2 / RFC 7714 §14.2 protection profiles: 80 and GCM negotiated over DTLS; 32 (and
// 80) also keyed by SDES on the trunk leg (RFC 4568 §6.2).
enum class SrtpProfile : std::uint16_t { Aes128CmSha1_80 = 0x0001, Aes128CmSha1_32 = 0x0002, AeadAes128Gcm = 0x0007 };

// Room a protected packet needs beyond the plain one (auth tag; GCM tag is 16).
constexpr std::size_t kSrtpMaxTrailer = 16 + 4;  // + SRTCP index

struct SrtpKeys {
    SrtpProfile profile = SrtpProfile::Aes128CmSha1_80;
    std::span<const std::uint8_t> local_key, local_salt, remote_key, remote_salt;
};

class SrtpSession {
public:
    static std::optional<SrtpSession> create(const SrtpKeys& keys);
    SrtpSession(SrtpSession&&) noexcept;
    SrtpSession& operator=(SrtpSession&&) noexcept;
    ~SrtpSession();

    // `len` bytes of plain RTP/RTCP at the start of `buf`; `buf` has kSrtpMaxTrailer spare.
    // Returns the new length, or nullopt (bad packet, replay, auth failure).
    std::optional<std::size_t> protect_rtp(std::span<std::uint8_t> buf, std::size_t len);
    std::optional<std::size_t> protect_rtcp(std::span<std::uint8_t> buf, std::size_t len);
    std::optional<std::size_t> unprotect_rtp(std::span<std::uint8_t> buf, std::size_t len);
    std::optional<std::size_t> unprotect_rtcp(std::span<std::uint8_t> buf, std::size_t len);

private:
    SrtpSession() = default;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace turnbridge::gateway
