// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/rtp_receive_stats.hpp"

#include <algorithm>

namespace turnbridge::gateway {
namespace {

constexpr std::uint32_t kSeqMod = 1u << 16;
constexpr std::uint32_t kMaxDropout = 3000;   // §A.1
constexpr std::uint32_t kMaxMisorder = 100;

}  // namespace

void RtpReceiveStats::fold() {
    if (!ssrc_) return;
    const std::uint64_t extended_max = std::uint64_t{cycles_} + max_seq_;
    expected_total_ += extended_max >= base_seq_ ? extended_max - base_seq_ + 1 : 0;
    received_total_ += received_;
}

void RtpReceiveStats::on_packet(Time arrival, std::uint32_t ssrc, std::uint16_t seq, std::uint32_t timestamp,
                                std::uint32_t clock_rate) {
    if (ssrc_ != ssrc) {
        fold();
        // §A.1 init_seq; we take the first packet at once (no probation: the source's address is
        // already pinned by the SDP and the strict-source check).
        ssrc_ = ssrc;
        clock_rate_ = clock_rate == 0 ? 8000 : clock_rate;
        base_seq_ = seq;
        max_seq_ = seq;
        bad_seq_ = kSeqMod + 1;
        cycles_ = 0;
        received_ = 0;
        expected_prior_ = received_prior_ = 0;
        jitter_ = 0;
        transit_.reset();
        last_sr_ = 0;
        last_sr_at_.reset();
    } else {
        // §A.1 update_seq.
        const std::uint16_t udelta = static_cast<std::uint16_t>(seq - max_seq_);
        if (udelta < kMaxDropout) {
            if (seq < max_seq_) cycles_ += kSeqMod;  // wrapped
            max_seq_ = seq;
        } else if (udelta <= kSeqMod - kMaxMisorder) {
            // A very large jump: taken as a restart only when the next packet follows it.
            if (seq == bad_seq_) {
                fold();
                base_seq_ = seq;
                max_seq_ = seq;
                cycles_ = 0;
                received_ = 0;
                expected_prior_ = received_prior_ = 0;
                bad_seq_ = kSeqMod + 1;
            } else {
                bad_seq_ = (std::uint32_t{seq} + 1) & (kSeqMod - 1);
                return;
            }
        }
        // else: duplicate or reordered, counted as received
    }
    ++received_;
    // §A.8: transit = arrival (in timestamp units) - timestamp; J += (|D| - J) / 16.
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(arrival.time_since_epoch()).count();
    const std::int64_t arrival_units = us * static_cast<std::int64_t>(clock_rate_) / 1000000;
    const std::int64_t transit = static_cast<std::int32_t>(static_cast<std::uint32_t>(arrival_units) - timestamp);
    if (transit_) {
        std::int64_t d = transit - *transit_;
        if (d < 0) d = -d;
        // The RFC's scaled integer form: jitter_ holds 16 J.
        const std::int64_t j = static_cast<std::int64_t>(jitter_) + d - ((static_cast<std::int64_t>(jitter_) + 8) >> 4);
        jitter_ = static_cast<std::uint32_t>(j < 0 ? 0 : j);
    }
    transit_ = transit;
}

void RtpReceiveStats::on_sender_report(Time arrival, std::uint64_t ntp) {
    last_sr_ = ntp_middle(ntp);
    last_sr_at_ = arrival;
}

std::uint64_t RtpReceiveStats::expected() const {
    if (!ssrc_) return expected_total_;
    const std::uint64_t extended_max = std::uint64_t{cycles_} + max_seq_;
    return expected_total_ + (extended_max >= base_seq_ ? extended_max - base_seq_ + 1 : 0);
}

std::uint64_t RtpReceiveStats::lost() const {
    const auto e = expected(), r = received();
    return e > r ? e - r : 0;
}

double RtpReceiveStats::jitter_ms() const {
    return static_cast<double>(jitter_units()) * 1000.0 / static_cast<double>(clock_rate_);
}

ReportBlock RtpReceiveStats::report(Time now) {
    ReportBlock b;
    b.ssrc = ssrc_.value_or(0);
    const std::uint64_t extended_max = std::uint64_t{cycles_} + max_seq_;
    const std::uint64_t expected = extended_max >= base_seq_ ? extended_max - base_seq_ + 1 : 0;
    const std::int64_t lost = static_cast<std::int64_t>(expected) - static_cast<std::int64_t>(received_);
    b.cumulative_lost = static_cast<std::int32_t>(lost > 0x7FFFFF ? 0x7FFFFF : (lost < -0x800000 ? -0x800000 : lost));
    b.highest_sequence = static_cast<std::uint32_t>(extended_max);
    // §A.3: the fraction over the interval since the last report.
    const std::uint64_t expected_interval = expected - expected_prior_;
    const std::uint64_t received_interval = received_ - received_prior_;
    expected_prior_ = expected;
    received_prior_ = received_;
    const std::int64_t lost_interval = static_cast<std::int64_t>(expected_interval) - static_cast<std::int64_t>(received_interval);
    b.fraction_lost = expected_interval == 0 || lost_interval <= 0
                          ? 0
                          : static_cast<std::uint8_t>(std::min<std::int64_t>(
                                255, (lost_interval << 8) / static_cast<std::int64_t>(expected_interval)));
    b.jitter = jitter_units();
    if (last_sr_at_) {
        b.last_sr = last_sr_;
        const auto since = std::chrono::duration_cast<std::chrono::microseconds>(now - *last_sr_at_).count();
        b.delay_since_last_sr = static_cast<std::uint32_t>((static_cast<std::uint64_t>(since < 0 ? 0 : since) << 16) / 1000000);
    }
    return b;
}

}  // namespace turnbridge::gateway
