// SPDX-License-Identifier: Apache-2.0
#pragma once
// What we received of one RTP source (RFC 3550 §6.4.1, Appendix A.1, A.3, A.8): extended highest
// sequence, expected and lost packets, interarrival jitter. Feeds our RTCP report blocks and the
// call record's quality. Arrival times come from the caller (no clock here).
#include <chrono>
#include <cstdint>
#include <optional>

#include "turnbridge/gateway/rtcp.hpp"

namespace turnbridge::gateway {

class RtpReceiveStats {
public:
    using Time = std::chrono::steady_clock::time_point;

    // One RTP packet of the source at `clock_rate` Hz. A new SSRC starts a new source (§8.2: the
    // old one left); the totals below keep what the earlier sources lost.
    void on_packet(Time arrival, std::uint32_t ssrc, std::uint16_t sequence, std::uint32_t timestamp,
                   std::uint32_t clock_rate);
    // An SR from the source (§6.4.1 LSR/DLSR): its NTP time and when we got it.
    void on_sender_report(Time arrival, std::uint64_t ntp);

    bool heard() const { return ssrc_.has_value(); }
    std::uint32_t ssrc() const { return ssrc_.value_or(0); }
    // §A.3 over the whole call: expected from the sequence range, lost = expected - received
    // (negative with duplicates: §6.4.1 allows it; clamped to 0 here).
    std::uint64_t expected() const;
    std::uint64_t lost() const;
    std::uint64_t received() const { return received_total_ + received_; }
    double jitter_ms() const;        // the current source's §A.8 estimate
    std::uint32_t jitter_units() const { return static_cast<std::uint32_t>(jitter_ >> 4); }

    // The block for our next report: fraction lost since the previous one (§A.3), LSR/DLSR at `now`.
    ReportBlock report(Time now);

private:
    void fold();  // the current source's counts into the totals
    std::optional<std::uint32_t> ssrc_;
    std::uint32_t clock_rate_ = 8000;
    // §A.1
    std::uint16_t max_seq_ = 0;
    std::uint32_t cycles_ = 0, base_seq_ = 0, bad_seq_ = 0, probation_ = 0;
    std::uint64_t received_ = 0;
    // §A.3
    std::uint64_t expected_prior_ = 0, received_prior_ = 0;
    // §A.8: jitter in timestamp units, scaled by 16 as in the RFC's integer version.
    std::uint32_t jitter_ = 0;
    std::optional<std::int64_t> transit_;
    // Earlier sources of this leg (another media server after a re-INVITE).
    std::uint64_t expected_total_ = 0, received_total_ = 0;
    // The source's last SR.
    std::uint32_t last_sr_ = 0;
    std::optional<Time> last_sr_at_;
};

}  // namespace turnbridge::gateway
