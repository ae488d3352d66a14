// SPDX-License-Identifier: Apache-2.0
#pragma once
// RTP and RTCP headers (RFC 3550 §5.1, §6.4): a bounds-checked parsed view and a header writer.
// No allocation; the payload is a view into the caller's datagram.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace turnbridge::gateway {

using Bytes = std::span<const std::uint8_t>;
using MutableBytes = std::span<std::uint8_t>;

constexpr std::size_t kRtpHeaderSize = 12;  // without CSRCs or extension

struct RtpHeader {
    bool marker = false;
    std::uint8_t payload_type = 0;
    std::uint16_t sequence = 0;
    std::uint32_t timestamp = 0;
    std::uint32_t ssrc = 0;
};

struct RtpPacket {
    RtpHeader header;
    std::uint8_t csrc_count = 0;
    bool has_extension = false;
    Bytes payload;  // after CSRCs and extension, without padding

    // RFC 3550 §5.1: version 2, CSRCs and extension (§5.3.1) within bounds, padding count
    // (last octet) no larger than what is left.
    static std::optional<RtpPacket> parse(Bytes datagram);
};

// Writes a 12-byte header (no CSRC, no extension). Returns bytes written, 0 if `out` is short.
std::size_t write_rtp_header(const RtpHeader& h, MutableBytes out);

// RFC 5761 §4: with rtcp-mux, a second octet whose low 7 bits are 64..95 is RTCP (RTCP packet
// types 192..223 all fall there); every dynamic and static RTP payload type we use does not.
bool is_rtcp(Bytes datagram);

struct RtcpHeader {
    std::uint8_t count = 0;         // RC/SC/FMT, low 5 bits of the first octet
    std::uint8_t packet_type = 0;   // 200 SR, 201 RR, 202 SDES, 203 BYE, 205/206 feedback
    std::size_t length_bytes = 0;   // of this packet, header included ((length + 1) * 4)
    std::uint32_t ssrc = 0;         // sender SSRC

    // RFC 3550 §6.4.1: the first packet of a compound packet; the length must fit the datagram.
    static std::optional<RtcpHeader> parse(Bytes datagram);
};

}  // namespace turnbridge::gateway
