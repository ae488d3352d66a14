// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/srtp_session.hpp"

#include <srtp2/srtp.h>

#include <cstring>
#include <vector>

namespace turnbridge::gateway {
namespace {

bool library_ready() {
    static const bool ok = srtp_init() == srtp_err_status_ok;  // once per process, thread-safe
    return ok;
}

srtp_t make(SrtpProfile profile, std::span<const std::uint8_t> key, std::span<const std::uint8_t> salt,
            srtp_ssrc_type_t direction) {
    srtp_policy_t p;
    std::memset(&p, 0, sizeof p);
    if (profile == SrtpProfile::AeadAes128Gcm) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtcp);
    } else if (profile == SrtpProfile::Aes128CmSha1_32) {
        // RFC 5764 §4.1.2 / RFC 4568 §6.2.2: the 32-bit tag is SRTP's only; SRTCP keeps 80 bits.
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p.rtp);
        srtp_crypto_policy_set_rtcp_default(&p.rtcp);
    } else {
        srtp_crypto_policy_set_rtp_default(&p.rtp);   // AES-128-CM, HMAC-SHA1 80
        srtp_crypto_policy_set_rtcp_default(&p.rtcp);
    }
    // libsrtp takes the master key followed by the master salt.
    std::vector<std::uint8_t> material(key.begin(), key.end());
    material.insert(material.end(), salt.begin(), salt.end());
    p.key = material.data();
    p.ssrc.type = direction;
    p.window_size = 1024;  // RFC 3711 §3.3.2 allows more than 64; browsers reorder
    p.allow_repeat_tx = 0;
    srtp_t s = nullptr;
    if (srtp_create(&s, &p) != srtp_err_status_ok) return nullptr;
    return s;
}

}  // namespace

struct SrtpSession::Impl {
    srtp_t send = nullptr;
    srtp_t receive = nullptr;
    ~Impl() {
        if (send) srtp_dealloc(send);
        if (receive) srtp_dealloc(receive);
    }
};

std::optional<SrtpSession> SrtpSession::create(const SrtpKeys& k) {
    if (!library_ready()) return std::nullopt;
    SrtpSession s;
    s.impl_ = std::make_unique<Impl>();
    s.impl_->send = make(k.profile, k.local_key, k.local_salt, ssrc_any_outbound);
    s.impl_->receive = make(k.profile, k.remote_key, k.remote_salt, ssrc_any_inbound);
    if (!s.impl_->send || !s.impl_->receive) return std::nullopt;
    return s;
}

SrtpSession::SrtpSession(SrtpSession&&) noexcept = default;
SrtpSession& SrtpSession::operator=(SrtpSession&&) noexcept = default;
SrtpSession::~SrtpSession() = default;

namespace {
template <class F>
std::optional<std::size_t> run(F f, srtp_t s, std::span<std::uint8_t> buf, std::size_t len, bool grows) {
    if (!s || len > buf.size() || (grows && buf.size() - len < kSrtpMaxTrailer)) return std::nullopt;
    int n = static_cast<int>(len);
    if (f(s, buf.data(), &n) != srtp_err_status_ok) return std::nullopt;
    return static_cast<std::size_t>(n);
}
}  // namespace

std::optional<std::size_t> SrtpSession::protect_rtp(std::span<std::uint8_t> buf, std::size_t len) {
    return run(srtp_protect, impl_->send, buf, len, true);
}
std::optional<std::size_t> SrtpSession::protect_rtcp(std::span<std::uint8_t> buf, std::size_t len) {
    return run(srtp_protect_rtcp, impl_->send, buf, len, true);
}
std::optional<std::size_t> SrtpSession::unprotect_rtp(std::span<std::uint8_t> buf, std::size_t len) {
    return run(srtp_unprotect, impl_->receive, buf, len, false);
}
std::optional<std::size_t> SrtpSession::unprotect_rtcp(std::span<std::uint8_t> buf, std::size_t len) {
    return run(srtp_unprotect_rtcp, impl_->receive, buf, len, false);
}

}  // namespace turnbridge::gateway
