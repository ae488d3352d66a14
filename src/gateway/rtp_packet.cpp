// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/rtp_packet.hpp"

namespace turnbridge::gateway {
namespace {
std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
void put32(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}
}  // namespace

std::optional<RtpPacket> RtpPacket::parse(Bytes d) {
    if (d.size() < kRtpHeaderSize || (d[0] >> 6) != 2) return std::nullopt;
    RtpPacket p;
    const bool padding = (d[0] & 0x20) != 0;
    p.has_extension = (d[0] & 0x10) != 0;
    p.csrc_count = d[0] & 0x0F;
    p.header.marker = (d[1] & 0x80) != 0;
    p.header.payload_type = d[1] & 0x7F;
    p.header.sequence = be16(&d[2]);
    p.header.timestamp = be32(&d[4]);
    p.header.ssrc = be32(&d[8]);
    std::size_t offset = kRtpHeaderSize + 4u * p.csrc_count;
    if (offset > d.size()) return std::nullopt;
    if (p.has_extension) {  // RFC 3550 §5.3.1: 16-bit profile, 16-bit length in 32-bit words
        if (offset + 4 > d.size()) return std::nullopt;
        offset += 4 + 4u * be16(&d[offset + 2]);
        if (offset > d.size()) return std::nullopt;
    }
    std::size_t end = d.size();
    if (padding) {  // RFC 3550 §5.1: the last octet counts the padding, itself included
        const std::size_t pad = d[d.size() - 1];
        if (pad == 0 || pad > end - offset) return std::nullopt;
        end -= pad;
    }
    p.payload = d.subspan(offset, end - offset);
    return p;
}

std::size_t write_rtp_header(const RtpHeader& h, MutableBytes out) {
    if (out.size() < kRtpHeaderSize) return 0;
    out[0] = 0x80;  // V=2, no padding, no extension, no CSRC
    out[1] = static_cast<std::uint8_t>((h.marker ? 0x80 : 0) | (h.payload_type & 0x7F));
    out[2] = static_cast<std::uint8_t>(h.sequence >> 8);
    out[3] = static_cast<std::uint8_t>(h.sequence);
    put32(&out[4], h.timestamp);
    put32(&out[8], h.ssrc);
    return kRtpHeaderSize;
}

bool is_rtcp(Bytes d) {
    if (d.size() < 2) return false;
    const int pt = d[1] & 0x7F;
    return pt >= 64 && pt <= 95;
}

std::optional<RtcpHeader> RtcpHeader::parse(Bytes d) {
    if (d.size() < 8 || (d[0] >> 6) != 2) return std::nullopt;
    RtcpHeader h;
    h.count = d[0] & 0x1F;
    h.packet_type = d[1];
    if (h.packet_type < 192 || h.packet_type > 223) return std::nullopt;
    h.length_bytes = (std::size_t{be16(&d[2])} + 1) * 4;
    if (h.length_bytes > d.size()) return std::nullopt;
    h.ssrc = be32(&d[4]);
    return h;
}

}  // namespace turnbridge::gateway
