// SPDX-License-Identifier: Apache-2.0
#pragma once
// One leg's outgoing RTP stream. Each leg owns its SSRC, sequence and timestamp base (RFC 3550
// §5.1: random initial values) and never forwards the peer's, so a re-INVITE or an ICE restart on
// one side does not show up as a discontinuity on the other.
#include <cstdint>

#include "turnbridge/gateway/random.hpp"
#include "turnbridge/gateway/rtp_packet.hpp"

namespace turnbridge::gateway {

class RtpStream {
public:
    RtpStream(std::uint32_t ssrc, std::uint16_t first_sequence, std::uint32_t timestamp_base)
        : ssrc_(ssrc), sequence_(first_sequence), timestamp_base_(timestamp_base) {}
    static RtpStream random(const RandomSource& rng);

    // Header for the next packet. `media_time` counts samples at this stream's clock since the
    // stream began (+160 per 20 ms at 8 kHz, +960 at 48 kHz); the random base is added here.
    // The first packet always carries the marker (RFC 3551 §4.1: start of a talkspurt).
    RtpHeader next(std::uint8_t payload_type, std::uint32_t media_time, bool marker = false);
    void count_payload(std::size_t bytes) { octets_ += static_cast<std::uint32_t>(bytes); }

    std::uint32_t ssrc() const { return ssrc_; }
    std::uint16_t next_sequence() const { return sequence_; }
    std::uint32_t timestamp_of(std::uint32_t media_time) const { return timestamp_base_ + media_time; }
    std::uint32_t packets_sent() const { return packets_; }  // for RTCP SR (RFC 3550 §6.4.1)
    std::uint32_t octets_sent() const { return octets_; }

private:
    std::uint32_t ssrc_;
    std::uint16_t sequence_;
    std::uint32_t timestamp_base_;
    std::uint32_t packets_ = 0;
    std::uint32_t octets_ = 0;
};

}  // namespace turnbridge::gateway
