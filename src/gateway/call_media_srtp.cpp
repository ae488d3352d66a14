// SPDX-License-Identifier: Apache-2.0
// CallMedia, the trunk leg's SDES-SRTP (RFC 4568 keys, RFC 3711 packets through libsrtp2): keyed
// from each trunk SDP, and one seam each way that every trunk datagram passes.
#include <cstring>

#include "turnbridge/gateway/call_media.hpp"
#include "turnbridge/gateway/demux.hpp"

namespace turnbridge::gateway {

void CallMedia::key_trunk_srtp() {
    trunk_srtp_.reset();
    if (!trunk_ || !trunk_->sdes) return;
    // New keys (a re-INVITE with another key or tag) are a new session: RFC 4568 §7.1.4.
    trunk_srtp_ = SrtpSession::create(srtp_keys(*trunk_->sdes));
    if (!trunk_srtp_) fail("SRTP: libsrtp2 refused the trunk's SDES keys");
}

void CallMedia::refuse_trunk_sdp(const SdpError& why) {
    // Only SRTP refusals end the call as media failures; other SDP refusals keep their old path.
    if (trunk_local_.srtp == SrtpMode::Off || !is_crypto_error(why)) return;
    fail("SRTP: " + std::string(why.what));
}

std::optional<SdesSuite> CallMedia::trunk_srtp() const {
    if (!trunk_srtp_ || !trunk_ || !trunk_->sdes) return std::nullopt;
    return trunk_->sdes->local.suite;
}

bool CallMedia::seal_trunk(MediaPacket& p) {
    if (!trunk_srtp_) return trunk_local_.srtp != SrtpMode::Required;   // required: never clear
    const std::span<std::uint8_t> buf(p.buf);
    const auto n = is_rtcp(p.bytes()) ? trunk_srtp_->protect_rtcp(buf, p.size) : trunk_srtp_->protect_rtp(buf, p.size);
    if (!n) return false;
    p.size = *n;
    return true;
}

std::optional<std::span<const std::uint8_t>> CallMedia::open_trunk(std::span<const std::uint8_t> bytes) {
    if (!trunk_srtp_) {
        if (trunk_local_.srtp == SrtpMode::Required) return std::nullopt;
        return bytes;
    }
    if (bytes.size() > rx_.size()) return std::nullopt;
    std::memcpy(rx_.data(), bytes.data(), bytes.size());
    const auto n = is_rtcp(bytes) ? trunk_srtp_->unprotect_rtcp(rx_, bytes.size()) : trunk_srtp_->unprotect_rtp(rx_, bytes.size());
    if (!n) return std::nullopt;
    return std::span<const std::uint8_t>(rx_.data(), *n);
}

}  // namespace turnbridge::gateway
