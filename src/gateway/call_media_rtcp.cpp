// SPDX-License-Identifier: Apache-2.0
// CallMedia, RTCP side (issue 14): receive statistics of both legs' RTP, our reports toward the
// trunk (RFC 3550 §6: SR while we send, a report block on the trunk's stream), the reports both
// peers send, and the call quality they add up to. The browser leg's RTCP is the browser's own
// business (its SRTCP reports are read, not answered).
#include "turnbridge/gateway/call_media.hpp"

#include <cstring>

namespace turnbridge::gateway {
namespace {

constexpr std::uint32_t kTrunkClock = 8000;  // G.711 and G.722 (RFC 3551 §4.5.2) alike

std::uint32_t clock_of(AudioCodec c) { return c == AudioCodec::Opus ? 48000 : 8000; }

}  // namespace

void CallMedia::note_browser_rtp(Time now, const RtpHeader& h) {
    if (browser_) browser_rx_.on_packet(now, h.ssrc, h.sequence, h.timestamp, clock_of(browser_->codec));
}

void CallMedia::note_trunk_rtp(Time now, const RtpHeader& h) {
    trunk_rx_.on_packet(now, h.ssrc, h.sequence, h.timestamp, kTrunkClock);
}

void CallMedia::on_browser_rtcp(Time now, std::span<const std::uint8_t> bytes) {
    if (browser_) browser_rtcp_.on_packet(now, bytes, browser_stream_, browser_rx_, clock_of(browser_->codec));
}

void CallMedia::on_trunk_rtcp(Time now, std::span<const std::uint8_t> bytes) {
    if (!trunk_rtcp_.on_packet(now, bytes, trunk_stream_, trunk_rx_, kTrunkClock)) ++stats_.dropped;
}

void CallMedia::on_trunk_rtcp_datagram(Time now, const Endpoint& from, std::span<const std::uint8_t> bytes) {
    // RFC 3550 §11: RTCP comes from the trunk's RTP IP (its port is RTP + 1 or a=rtcp's).
    if (!trunk_remote_ || !(from.ip == trunk_remote_->ip)) {
        ++stats_.stranger_trunk;
        return;
    }
    ++stats_.trunk_in.packets;
    stats_.trunk_in.bytes += bytes.size();
    if (ended() || !trunk_) return;
    // SRTCP with SDES keys (RFC 3711 §3.4), as on the RTP socket: what fails authentication is dropped.
    const auto plain = open_trunk(bytes);
    if (!plain) {
        ++stats_.dropped;
        return;
    }
    on_trunk_rtcp(now, *plain);
}

void CallMedia::tick_rtcp(Time now, MediaOutput& out) {
    // Only with a socket for it (host), once the trunk's address is known and not while held
    // without an address (c=0.0.0.0).
    if (!config_.trunk_rtcp_address || !trunk_ || !trunk_remote_ || trunk_remote_->port == 0) return;
    if (!trunk_rtcp_.due(now)) return;
    std::array<std::uint8_t, 256> buf{};
    const auto n = trunk_rtcp_.build(now, trunk_stream_, trunk_stream_.timestamp_of(trunk_media_time_), trunk_rx_, buf);
    if (n == 0) return;
    send_trunk_rtcp(out, {buf.data(), n});
}

void CallMedia::send_trunk_rtcp(MediaOutput& out, std::span<const std::uint8_t> compound) {
    const bool mux = trunk_->rtcp_mux;
    const Endpoint to = mux ? *trunk_remote_
                            : Endpoint{trunk_remote_->ip, trunk_->rtcp_port.value_or(static_cast<std::uint16_t>(trunk_remote_->port + 1))};
    if (compound.size() + kSrtpMaxTrailer > kMaxMediaDatagram) return;
    MediaPacket& p = out.add(mux ? MediaLeg::Trunk : MediaLeg::TrunkRtcp, to);
    std::memcpy(p.buf.data(), compound.data(), compound.size());
    p.size = compound.size();
    if (!seal_trunk(p)) {  // SRTCP when the trunk has SDES keys (call_media_srtp.cpp)
        out.discard_last();
        ++stats_.dropped;
        return;
    }
    trunk_rtcp_.count_sent();
    ++stats_.trunk_out.packets;
    stats_.trunk_out.bytes += p.size;
}

CallMedia::Quality CallMedia::quality() const {
    Quality q;
    const auto ours = [](const RtpReceiveStats& rx) {
        DirectionQuality d;
        d.measured = rx.heard();
        d.expected = rx.expected();
        d.lost = static_cast<std::int64_t>(rx.lost());
        d.jitter_ms = rx.jitter_ms();
        return d;
    };
    q.browser_in = ours(browser_rx_);
    q.trunk_in = ours(trunk_rx_);
    q.browser_out = browser_rtcp_.peer_view();
    q.trunk_out = trunk_rtcp_.peer_view();
    // The round trip each leg's RTCP measured applies to both of its directions.
    if (q.trunk_in.measured) q.trunk_in.rtt_ms = q.trunk_out.rtt_ms;
    if (q.browser_in.measured) q.browser_in.rtt_ms = q.browser_out.rtt_ms;
    q.browser_codec = codec_impairment(browser_ ? to_string(browser_->codec) : "");
    q.trunk_codec = codec_impairment(trunk_ ? to_string(trunk_->codec) : "");
    return q;
}

}  // namespace turnbridge::gateway
