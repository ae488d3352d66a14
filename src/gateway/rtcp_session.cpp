// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/rtcp_session.hpp"

namespace turnbridge::gateway {

bool RtcpSession::due(Time now) {
    // §6.3.1: the interval randomised over [0.5, 1.5] of its value, divided by e - 3/2 to make up
    // for the reconsideration's bias. With two members and voice bandwidth the computed interval
    // is far below §6.2's 5 s minimum, so the minimum is the interval.
    const auto randomised = [this](std::chrono::milliseconds t) {
        const double r = 0.5 + static_cast<double>(random_value<std::uint16_t>(rng_)) / 65535.0;
        return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double, std::milli>(static_cast<double>(t.count()) * r / 1.21828));
    };
    if (!next_) {
        next_ = now + randomised(kRtcpMinInterval / 2);  // §6.2: the first one after half the minimum
        return false;
    }
    if (now < *next_) return false;
    next_ = now + randomised(kRtcpMinInterval);
    return true;
}

std::size_t RtcpSession::build(Time now, const RtpStream& ours, std::uint32_t rtp_timestamp, RtpReceiveStats& theirs,
                               MutableBytes out) const {
    RtcpReport r;
    r.ssrc = ours.ssrc();
    if (ours.packets_sent() > 0) r.sender = SenderInfo{ntp_time(now), rtp_timestamp, ours.packets_sent(), ours.octets_sent()};
    if (theirs.heard()) r.blocks[r.block_count++] = theirs.report(now);
    return write_rtcp_compound(r, cname_, out);
}

bool RtcpSession::on_packet(Time now, Bytes datagram, const RtpStream& ours, RtpReceiveStats& theirs,
                            std::uint32_t clock_rate) {
    const auto r = parse_rtcp_report(datagram);
    if (!r) return false;
    ++received_;
    if (r->sender && (!theirs.heard() || theirs.ssrc() == r->ssrc)) theirs.on_sender_report(now, r->sender->ntp);
    for (std::size_t i = 0; i < r->block_count; ++i) {
        const ReportBlock& b = r->blocks[i];
        if (b.ssrc != ours.ssrc()) continue;
        peer_.measured = true;
        peer_.lost = b.cumulative_lost;
        // What the peer expected: what we had sent by now (the packets in flight are few).
        peer_.expected = ours.packets_sent();
        // §6.4.1: in our stream's timestamp units.
        peer_.jitter_ms = clock_rate == 0 ? 0.0 : static_cast<double>(b.jitter) * 1000.0 / clock_rate;
        if (const auto rtt = round_trip(b, ntp_time(now)))
            peer_.rtt_ms = static_cast<double>(rtt->count()) / 1000.0;
    }
    return true;
}

}  // namespace turnbridge::gateway
