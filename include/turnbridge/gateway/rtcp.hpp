// SPDX-License-Identifier: Apache-2.0
#pragma once
// RTCP sender and receiver reports (RFC 3550 §6.4) with the SDES CNAME every compound packet
// carries (§6.1): built into a caller's buffer and parsed from a datagram. No I/O, no clock.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "turnbridge/gateway/rtp_packet.hpp"

namespace turnbridge::gateway {

constexpr std::uint8_t kRtcpSr = 200, kRtcpRr = 201, kRtcpSdes = 202, kRtcpBye = 203;
constexpr std::size_t kMaxReportBlocks = 4;  // we report on one source per leg; more are ignored

// RFC 3550 §6.4.1: one reception report block.
struct ReportBlock {
    std::uint32_t ssrc = 0;             // the source this block is about
    std::uint8_t fraction_lost = 0;     // since the previous report, fixed point /256
    std::int32_t cumulative_lost = 0;   // 24-bit signed on the wire
    std::uint32_t highest_sequence = 0; // extended (cycles << 16 | sequence)
    std::uint32_t jitter = 0;           // timestamp units (§6.4.1, A.8)
    std::uint32_t last_sr = 0;          // LSR: middle 32 bits of the last SR's NTP time
    std::uint32_t delay_since_last_sr = 0;  // DLSR, 1/65536 s
};

struct SenderInfo {
    std::uint64_t ntp = 0;       // NTP format, 32.32 fixed point seconds
    std::uint32_t rtp_timestamp = 0;
    std::uint32_t packets = 0;
    std::uint32_t octets = 0;
};

// An SR (with sender info) or RR, whichever the sender sent.
struct RtcpReport {
    std::uint32_t ssrc = 0;
    std::optional<SenderInfo> sender;
    std::array<ReportBlock, kMaxReportBlocks> blocks{};
    std::size_t block_count = 0;
};

// RFC 3550 §4: NTP format from a monotonic clock. §4 allows "system uptime" style clocks where no
// wallclock is at hand; only the differences matter for RTT (LSR/DLSR, §6.4.1).
std::uint64_t ntp_time(std::chrono::steady_clock::time_point t);
inline std::uint32_t ntp_middle(std::uint64_t ntp) { return static_cast<std::uint32_t>(ntp >> 16); }

// A compound packet: SR (if `report.sender`) or RR, then SDES with one CNAME item (§6.5.1).
// Returns the bytes written, 0 when `out` is too short.
std::size_t write_rtcp_compound(const RtcpReport& report, std::string_view cname, MutableBytes out);

// The first SR or RR of a compound packet (§6.1: a compound packet starts with one). Every
// packet's length must fit; nullopt when the datagram is not valid RTCP (§A.2 checks: version 2,
// first packet SR or RR, lengths adding up to the datagram).
std::optional<RtcpReport> parse_rtcp_report(Bytes datagram);

// RFC 3550 §6.4.1: round-trip time from a report block about our stream, received at `now`
// (NTP format); nullopt when the peer has not heard our SR yet (LSR 0).
std::optional<std::chrono::microseconds> round_trip(const ReportBlock& b, std::uint64_t now_ntp);

}  // namespace turnbridge::gateway
