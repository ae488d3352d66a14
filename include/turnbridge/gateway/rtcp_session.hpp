// SPDX-License-Identifier: Apache-2.0
#pragma once
// One leg's RTCP (RFC 3550 §6): when the next report is due (§6.2, §6.3), the compound packet
// we send (SR while we send, RR blocks for what we receive) and what the peer's reports say
// about our stream (its loss, jitter and the round trip). No I/O, no clock.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "turnbridge/gateway/call_quality.hpp"
#include "turnbridge/gateway/random.hpp"
#include "turnbridge/gateway/rtcp.hpp"
#include "turnbridge/gateway/rtp_receive_stats.hpp"
#include "turnbridge/gateway/rtp_stream.hpp"

namespace turnbridge::gateway {

// §6.2: the recommended minimum interval; the first report comes after half of it.
constexpr std::chrono::milliseconds kRtcpMinInterval{5000};

class RtcpSession {
public:
    using Time = std::chrono::steady_clock::time_point;

    RtcpSession(RandomSource rng, std::string cname) : rng_(std::move(rng)), cname_(std::move(cname)) {}

    // True when a report is due at `now` (then the next one is scheduled). The first call only
    // schedules the first report.
    bool due(Time now);

    // Our compound packet: SR when `ours` has sent RTP (§6.4: SR from active senders), with one
    // report block on `theirs` when we have heard it. `rtp_timestamp` is `ours` at `now`.
    std::size_t build(Time now, const RtpStream& ours, std::uint32_t rtp_timestamp, RtpReceiveStats& theirs,
                      MutableBytes out) const;

    // A compound packet from the peer: its SR feeds `theirs` (our LSR/DLSR), a block about
    // `ours` (sent at `clock_rate` Hz) is kept for peer_view(). False when it is not valid RTCP (§A.2).
    bool on_packet(Time now, Bytes datagram, const RtpStream& ours, RtpReceiveStats& theirs, std::uint32_t clock_rate);

    // How the peer received our stream, from its latest report block about it.
    DirectionQuality peer_view() const { return peer_; }
    std::uint64_t reports_sent() const { return sent_; }
    std::uint64_t reports_received() const { return received_; }
    void count_sent() { ++sent_; }

private:
    RandomSource rng_;
    std::string cname_;
    std::optional<Time> next_;
    DirectionQuality peer_;
    std::uint64_t sent_ = 0, received_ = 0;
};

}  // namespace turnbridge::gateway
