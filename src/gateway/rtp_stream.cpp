// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/rtp_stream.hpp"

namespace turnbridge::gateway {

RtpStream RtpStream::random(const RandomSource& rng) {
    const auto ssrc = random_value<std::uint32_t>(rng);
    // RFC 3711 §3.3.1: keep the initial sequence number below 2^15 so the SRTP rollover counter
    // guess is unambiguous for the first packets.
    const auto seq = static_cast<std::uint16_t>(random_value<std::uint16_t>(rng) & 0x7FFF);
    const auto ts = random_value<std::uint32_t>(rng);
    return RtpStream(ssrc, seq, ts);
}

RtpHeader RtpStream::next(std::uint8_t payload_type, std::uint32_t media_time, bool marker) {
    RtpHeader h;
    h.marker = marker || packets_ == 0;
    h.payload_type = payload_type;
    h.sequence = sequence_++;
    h.timestamp = timestamp_base_ + media_time;
    h.ssrc = ssrc_;
    ++packets_;
    return h;
}

}  // namespace turnbridge::gateway
