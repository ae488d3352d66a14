// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/rtcp.hpp"

#include <cstring>

namespace turnbridge::gateway {
namespace {

void put16(std::uint8_t* p, std::uint16_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}
std::uint32_t get32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

constexpr std::size_t kBlockSize = 24;

void write_block(const ReportBlock& b, std::uint8_t* p) {
    put32(p, b.ssrc);
    // §6.4.1: cumulative lost is a 24-bit signed count, clamped to its range.
    const std::int32_t lost = b.cumulative_lost > 0x7FFFFF ? 0x7FFFFF : (b.cumulative_lost < -0x800000 ? -0x800000 : b.cumulative_lost);
    put32(p + 4, std::uint32_t{b.fraction_lost} << 24 | (static_cast<std::uint32_t>(lost) & 0xFFFFFF));
    put32(p + 8, b.highest_sequence);
    put32(p + 12, b.jitter);
    put32(p + 16, b.last_sr);
    put32(p + 20, b.delay_since_last_sr);
}

ReportBlock read_block(const std::uint8_t* p) {
    ReportBlock b;
    b.ssrc = get32(p);
    const std::uint32_t w = get32(p + 4);
    b.fraction_lost = static_cast<std::uint8_t>(w >> 24);
    const std::uint32_t lost = w & 0xFFFFFF;
    b.cumulative_lost = (lost & 0x800000) != 0 ? static_cast<std::int32_t>(lost | 0xFF000000u) : static_cast<std::int32_t>(lost);
    b.highest_sequence = get32(p + 8);
    b.jitter = get32(p + 12);
    b.last_sr = get32(p + 16);
    b.delay_since_last_sr = get32(p + 20);
    return b;
}

}  // namespace

std::uint64_t ntp_time(std::chrono::steady_clock::time_point t) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
    const auto secs = static_cast<std::uint64_t>(us / 1000000);
    const auto frac = (static_cast<std::uint64_t>(us % 1000000) << 32) / 1000000;
    return secs << 32 | frac;
}

std::size_t write_rtcp_compound(const RtcpReport& report, std::string_view cname, MutableBytes out) {
    const std::size_t blocks = report.block_count > kMaxReportBlocks ? kMaxReportBlocks : report.block_count;
    const std::size_t report_len = 8 + (report.sender ? 20 : 0) + blocks * kBlockSize;
    if (cname.size() > 255) cname = cname.substr(0, 255);
    // SDES: header, SSRC, item (type, length, text), at least one null octet, padded to 32 bits (§6.5).
    const std::size_t sdes_len = (8 + 2 + cname.size() + 1 + 3) / 4 * 4;
    if (out.size() < report_len + sdes_len) return 0;
    std::uint8_t* p = out.data();
    p[0] = static_cast<std::uint8_t>(0x80 | blocks);
    p[1] = report.sender ? kRtcpSr : kRtcpRr;
    put16(p + 2, static_cast<std::uint16_t>(report_len / 4 - 1));
    put32(p + 4, report.ssrc);
    std::size_t at = 8;
    if (report.sender) {
        put32(p + 8, static_cast<std::uint32_t>(report.sender->ntp >> 32));
        put32(p + 12, static_cast<std::uint32_t>(report.sender->ntp));
        put32(p + 16, report.sender->rtp_timestamp);
        put32(p + 20, report.sender->packets);
        put32(p + 24, report.sender->octets);
        at = 28;
    }
    for (std::size_t i = 0; i < blocks; ++i, at += kBlockSize) write_block(report.blocks[i], p + at);
    std::uint8_t* s = p + report_len;
    std::memset(s, 0, sdes_len);
    s[0] = 0x81;  // one chunk
    s[1] = kRtcpSdes;
    put16(s + 2, static_cast<std::uint16_t>(sdes_len / 4 - 1));
    put32(s + 4, report.ssrc);
    s[8] = 1;  // CNAME
    s[9] = static_cast<std::uint8_t>(cname.size());
    std::memcpy(s + 10, cname.data(), cname.size());
    return report_len + sdes_len;
}

std::optional<RtcpReport> parse_rtcp_report(Bytes datagram) {
    // §A.2: the lengths of the packets of a compound packet add up to the datagram.
    std::size_t at = 0;
    std::optional<RtcpReport> first;
    while (at < datagram.size()) {
        const auto h = RtcpHeader::parse(datagram.subspan(at));
        if (!h || (datagram[at] & 0xC0) != 0x80) return std::nullopt;
        if (at == 0) {
            if (h->packet_type != kRtcpSr && h->packet_type != kRtcpRr) return std::nullopt;
            if ((datagram[0] & 0x20) != 0) return std::nullopt;  // §A.2: no padding on the first packet
            const std::size_t info = h->packet_type == kRtcpSr ? 20 : 0;
            if (h->length_bytes < 8 + info + h->count * kBlockSize) return std::nullopt;
            const std::uint8_t* p = datagram.data();
            RtcpReport r;
            r.ssrc = h->ssrc;
            if (info != 0) {
                SenderInfo s;
                s.ntp = std::uint64_t{get32(p + 8)} << 32 | get32(p + 12);
                s.rtp_timestamp = get32(p + 16);
                s.packets = get32(p + 20);
                s.octets = get32(p + 24);
                r.sender = s;
            }
            for (std::size_t i = 0; i < h->count && i < kMaxReportBlocks; ++i)
                r.blocks[r.block_count++] = read_block(p + 8 + info + i * kBlockSize);
            first = r;
        }
        at += h->length_bytes;
    }
    if (at != datagram.size()) return std::nullopt;
    return first;
}

std::optional<std::chrono::microseconds> round_trip(const ReportBlock& b, std::uint64_t now_ntp) {
    if (b.last_sr == 0) return std::nullopt;
    // §6.4.1: A - LSR - DLSR in 1/65536 s, all as the middle 32 bits of NTP time.
    const std::uint32_t rtt = ntp_middle(now_ntp) - b.last_sr - b.delay_since_last_sr;
    if (static_cast<std::int32_t>(rtt) < 0) return std::chrono::microseconds{0};
    return std::chrono::microseconds{(std::uint64_t{rtt} * 1000000) >> 16};
}

}  // namespace turnbridge::gateway
