// SPDX-License-Identifier: Apache-2.0
// CallMedia, packet side: RFC 7983 demux on the browser leg (STUN to ICE-lite, DTLS to the
// handshake, SRTP to the pipeline), symmetric RTP on the trunk leg, and the 20 ms tick.
#include <algorithm>
#include <cstring>

#include "turnbridge/gateway/call_media.hpp"
#include "turnbridge/gateway/demux.hpp"

namespace turnbridge::gateway {
namespace {

constexpr auto kConsentTimeout = std::chrono::seconds(30);  // RFC 7675 §5.1
// A trunk that sent RTP and then nothing for this long while it should be sending is gone (a
// crashed media server, a lost route): the call ends rather than stay up silent. rtpengine's
// default media timeout is the same.
constexpr auto kTrunkMediaTimeout = std::chrono::seconds(60);

void count(CallMedia::Flow& f, std::size_t bytes) {
    ++f.packets;
    f.bytes += bytes;
}

// RFC 4733 §2.5.1.2: every packet of an event carries the event's start time, here on the
// outgoing stream's clock; the duration is rescaled to the outgoing clock rate.
RtpHeader relay_event(TelephoneEventRelay& relay, const RtpHeader& in, const TelephoneEvent& ev,
                      std::uint32_t out_media_time, RtpStream& stream, std::uint8_t pt,
                      std::span<std::uint8_t, kTelephoneEventSize> payload) {
    const auto r = relay.on_packet(in.timestamp, ev, out_media_time);
    write_telephone_event(r.event, payload);
    return stream.next(pt, r.media_time, r.marker);
}

}  // namespace

void CallMedia::on_browser_datagram(Time now, const Endpoint& from, std::span<const std::uint8_t> bytes,
                                    MediaOutput& out) {
    if (browser_released_) return;   // issue 14: the browser left; its leg is joined to another trunk
    const PacketKind kind = classify(bytes);
    // Media only after ICE, from the pair it selected (issue 11): DTLS and SRTP from anyone
    // else are dropped unread and counted; STUN goes to ICE-lite, which ignores strangers too.
    if (kind != PacketKind::Stun && !ice_.accepts(from)) {
        ++stats_.stranger_browser;
        return;
    }
    if (ended() || kind != PacketKind::Stun) count(stats_.browser_in, bytes.size());
    if (ended()) return;
    switch (kind) {
    case PacketKind::Stun: {
        MediaPacket& p = out.add(MediaLeg::Browser, from);
        const auto o = ice_.on_stun(now, from, bytes, p.buf);
        if (o.rejected) ++stats_.stranger_browser;
        else count(stats_.browser_in, bytes.size());
        if (o.response_size == 0) {
            out.discard_last();
            return;
        }
        p.size = o.response_size;
        count(stats_.browser_out, p.size);
        // RFC 5763 §5: an active (client) DTLS endpoint starts once there is a path to the peer.
        if (o.nominated) start_dtls_client(now, out);
        return;
    }
    case PacketKind::Dtls:
        if (!dtls_) break;
        dtls_from_ = from;
        dtls_out_.clear();
        dtls_->on_datagram(now, bytes, dtls_out_);
        send_dtls(from, out);
        check_dtls();
        return;
    case PacketKind::Rtp:
    case PacketKind::Rtcp:
        on_srtp(now, bytes, out);
        return;
    default: break;
    }
    ++stats_.dropped;
}

void CallMedia::start_dtls_client(Time now, MediaOutput& out) {
    if (!dtls_ || !browser_ || browser_->dtls_role != DtlsRole::Client) return;
    if (dtls_->state() != DtlsSrtpEndpoint::State::New || !ice_.selected()) return;
    dtls_out_.clear();
    dtls_->start(now, dtls_out_);
    send_dtls(*ice_.selected(), out);
    check_dtls();
}

// Handshake flights go where media goes (the nominated pair), else back to the sender.
void CallMedia::send_dtls(const Endpoint& fallback, MediaOutput& out) {
    const Endpoint to = ice_.selected().value_or(fallback);
    for (const auto& d : dtls_out_) {
        if (d.size() > kMaxMediaDatagram) continue;  // cannot happen: records fit the 1200-byte MTU
        MediaPacket& p = out.add(MediaLeg::Browser, to);
        std::memcpy(p.buf.data(), d.data(), d.size());
        p.size = d.size();
        count(stats_.browser_out, p.size);
    }
    dtls_out_.clear();
}

void CallMedia::check_dtls() {
    switch (dtls_->state()) {
    case DtlsSrtpEndpoint::State::Connected:
        if (state_ == State::Negotiated) state_ = State::Connected;
        break;
    case DtlsSrtpEndpoint::State::Failed: fail("DTLS: " + dtls_->failure()); break;
    case DtlsSrtpEndpoint::State::Closed:
        fail("DTLS: the browser closed the association (close_notify)");
        state_ = State::Closed;
        break;
    default: break;
    }
}

void CallMedia::on_srtp(Time now, std::span<const std::uint8_t> bytes, MediaOutput& out) {
    SrtpSession* srtp = dtls_ ? dtls_->srtp() : nullptr;
    if (!srtp || bytes.size() > rx_.size()) {
        ++stats_.dropped;
        return;
    }
    std::memcpy(rx_.data(), bytes.data(), bytes.size());
    if (is_rtcp(bytes)) {
        // The browser's reports describe its leg only; each leg's RTCP stays on that leg.
        if (const auto n = srtp->unprotect_rtcp(rx_, bytes.size())) on_browser_rtcp(now, {rx_.data(), *n});
        else ++stats_.dropped;
        return;
    }
    const auto n = srtp->unprotect_rtp(rx_, bytes.size());
    const auto p = n ? RtpPacket::parse({rx_.data(), *n}) : std::nullopt;
    if (!p) {
        ++stats_.dropped;  // RFC 3711 §3.3: replayed or failed authentication
        return;
    }
    note_browser_rtp(now, p->header);
    browser_rtp(*p, out);
}

void CallMedia::browser_rtp(const RtpPacket& p, MediaOutput& out) {
    if (!browser_) return;
    if (browser_->telephone_event && p.header.payload_type == *browser_->telephone_event) {
        const auto ev = parse_telephone_event(p.payload);
        if (!ev || !trunk_ || !trunk_->telephone_event || !trunk_remote_ || !sends(trunk_->direction) ||
            !dtmf_to_trunk_) {
            ++stats_.dropped;
            return;
        }
        std::array<std::uint8_t, kTelephoneEventSize> payload{};
        const auto h = relay_event(*dtmf_to_trunk_, p.header, *ev, trunk_media_time_, trunk_stream_,
                                   *trunk_->telephone_event, payload);
        send_to_trunk(out, h, payload);
        ++stats_.dtmf_to_trunk;
        return;
    }
    if (p.header.payload_type == browser_->payload_type && to_trunk_) {
        to_trunk_->on_packet(p.header.sequence, p.payload);
        return;
    }
    ++stats_.dropped;  // comfort noise, RED, or a payload type we did not negotiate
}

void CallMedia::on_trunk_datagram(Time now, const Endpoint& from, std::span<const std::uint8_t> bytes,
                                  MediaOutput& out) {
    const bool rtcp = is_rtcp(bytes);
    std::optional<RtpPacket> p;
    if (!rtcp) p = RtpPacket::parse(bytes);
    const bool call_rtp = p && trunk_ && (p->header.payload_type == trunk_->payload_type ||
                                          (trunk_->telephone_event && p->header.payload_type == *trunk_->telephone_event));
    if (!trunk_remote_) {
        ++stats_.dropped;  // no SDP has named the trunk's address yet (inbound early media)
        return;
    }
    if (!trunk_source_ok(from, call_rtp)) {
        ++stats_.stranger_trunk;  // it neither moves our audio nor keeps the call alive
        return;
    }
    count(stats_.trunk_in, bytes.size());
    if (!trunk_srtp_) last_trunk_in_ = now;
    if (ended() || !trunk_) return;
    // SRTP (RFC 3711): the header is clear, so the source check above needs no key; what fails
    // authentication is dropped and does not keep the call alive.
    const auto plain = (rtcp || call_rtp) ? open_trunk(bytes) : std::nullopt;
    if (!plain) {
        ++stats_.dropped;  // not RTP, a payload type we did not negotiate, or failed SRTP
        return;
    }
    last_trunk_in_ = now;
    if (rtcp) {  // rtcp-mux: the trunk's reports describe its leg only
        on_trunk_rtcp(now, *plain);
        return;
    }
    if (plain->data() != bytes.data()) p = RtpPacket::parse(*plain);
    if (!p) {
        ++stats_.dropped;
        return;
    }
    note_trunk_rtp(now, p->header);
    trunk_rtp(*p, out);
}

// Symmetric RTP (RFC 4961) with a strict source (header). Deviation: RFC 4961 learns any
// source; one forged packet would then take the call's audio (the "RTP bleed" of issue 11).
bool CallMedia::trunk_source_ok(const Endpoint& from, bool call_rtp) {
    if (from == *trunk_remote_) {
        if (call_rtp) trunk_latch_open_ = false;  // the trunk sends from where its SDP said
        return true;
    }
    if (!trunk_latch_open_ || !call_rtp || !(from.ip == trunk_remote_->ip) || (trunk_left_ && from == *trunk_left_))
        return false;
    trunk_remote_ = from;
    trunk_latch_open_ = false;
    return true;
}

void CallMedia::trunk_rtp(const RtpPacket& p, MediaOutput& out) {
    if (browser_released_) {   // issue 14: our party talks to the joined call's party
        if (peer_ && p.header.payload_type == trunk_->payload_type) {
            peer_->from_peer(p, trunk_->codec);
        } else if (peer_ && trunk_->telephone_event && p.header.payload_type == *trunk_->telephone_event) {
            if (const auto ev = parse_telephone_event(p.payload)) peer_->event_from_peer(p.header.timestamp, *ev);
            else ++stats_.dropped;
        }
        return;
    }
    if (!browser_ || !to_browser_ || !dtls_ || !dtls_->srtp() || !ice_.selected() || !sends(browser_->direction)) {
        ++stats_.dropped;  // early media before the browser's path is up, or the browser holds us
        return;
    }
    const std::uint32_t media_time = browser_media_time(p.header.timestamp, p.header.ssrc);
    if (trunk_->telephone_event && p.header.payload_type == *trunk_->telephone_event) {
        const auto ev = parse_telephone_event(p.payload);
        if (!ev || !browser_->telephone_event || !dtmf_to_browser_) {
            ++stats_.dropped;
            return;
        }
        std::array<std::uint8_t, kTelephoneEventSize> payload{};
        send_to_browser(out, relay_event(*dtmf_to_browser_, p.header, *ev, media_time, browser_stream_,
                                         *browser_->telephone_event, payload), payload);
        ++stats_.dtmf_to_browser;
        return;
    }
    // We answer a=ptime:20; a trunk sending longer packets still gets through, frame by frame.
    const auto frames = p.payload.size() / kTrunkFrameBytes;
    if (frames == 0) ++stats_.dropped;
    for (std::size_t i = 0; i < frames; ++i) {
        const auto frame = p.payload.subspan(i * kTrunkFrameBytes).first<kTrunkFrameBytes>();
        const auto at = static_cast<std::uint32_t>(i);
        const std::size_t n = to_browser_->on_frame(frame, payload_, p.header.timestamp + at * kTrunkFrameTicks);
        if (n == 0) {
            ++stats_.dropped;
            continue;
        }
        const auto t = media_time + at * to_browser_->ticks_per_frame();
        send_to_browser(out, browser_stream_.next(browser_->payload_type, t, p.header.marker && i == 0),
                        {payload_.data(), n});
        for (const auto& e : to_browser_->dtmf()) detected_dtmf(out, e, t);
    }
}

// In-band DTMF the trunk sent as tones (TrunkToBrowser's detector), to the browser as RFC 4733
// events: the same relay as the trunk's own events, from its 8000 Hz clock to the browser's.
void CallMedia::detected_dtmf(MediaOutput& out, const InbandDtmf::Event& e, std::uint32_t media_time) {
    if (!dtmf_to_browser_ || !browser_->telephone_event) return;
    RtpHeader in{};
    in.timestamp = e.start;
    std::array<std::uint8_t, kTelephoneEventSize> payload{};
    send_to_browser(out, relay_event(*dtmf_to_browser_, in, e.event, media_time, browser_stream_,
                                     *browser_->telephone_event, payload), payload);
    ++stats_.dtmf_to_browser;
}

// The trunk's timestamps on the browser stream's clock (x6 toward Opus). A new trunk SSRC (another
// media server after a re-INVITE) continues our stream one frame after the last packet sent,
// so the browser sees one continuous stream of ours (RFC 3550 §5.1).
std::uint32_t CallMedia::browser_media_time(std::uint32_t trunk_timestamp, std::uint32_t trunk_ssrc) {
    const std::uint32_t step = to_browser_->ticks_per_frame();
    if (trunk_in_ssrc_ != trunk_ssrc) {
        trunk_in_ssrc_ = trunk_ssrc;
        trunk_in_base_ = trunk_timestamp;
        browser_time_base_ = browser_stream_.packets_sent() == 0 ? 0 : browser_media_time_ + step;
    }
    const std::uint32_t t = browser_time_base_ + (trunk_timestamp - trunk_in_base_) * (step / kTrunkFrameTicks);
    if (static_cast<std::int32_t>(t - browser_media_time_) > 0 || browser_stream_.packets_sent() == 0)
        browser_media_time_ = t;
    return t;
}

void CallMedia::send_to_browser(MediaOutput& out, const RtpHeader& h, std::span<const std::uint8_t> payload) {
    if (kRtpHeaderSize + payload.size() + kSrtpMaxTrailer > kMaxMediaDatagram) {
        ++stats_.dropped;
        return;
    }
    MediaPacket& p = out.add(MediaLeg::Browser, *ice_.selected());
    write_rtp_header(h, p.buf);
    std::memcpy(p.buf.data() + kRtpHeaderSize, payload.data(), payload.size());
    const auto n = dtls_->srtp()->protect_rtp(p.buf, kRtpHeaderSize + payload.size());
    if (!n) {
        out.discard_last();
        ++stats_.dropped;
        return;
    }
    p.size = *n;
    browser_stream_.count_payload(payload.size());
    count(stats_.browser_out, p.size);
}

void CallMedia::send_to_trunk(MediaOutput& out, const RtpHeader& h, std::span<const std::uint8_t> payload) {
    MediaPacket& p = out.add(MediaLeg::Trunk, *trunk_remote_);
    write_rtp_header(h, p.buf);
    std::memcpy(p.buf.data() + kRtpHeaderSize, payload.data(), payload.size());
    p.size = kRtpHeaderSize + payload.size();
    if (!seal_trunk(p)) {
        out.discard_last();
        ++stats_.dropped;
        return;
    }
    trunk_stream_.count_payload(payload.size());
    count(stats_.trunk_out, p.size);
}

void CallMedia::on_tick(Time now, MediaOutput& out) {
    if (ended()) return;
    if (dtls_ && !browser_released_) {
        if (const auto at = dtls_->next_timeout(); at && now >= *at) {
            dtls_out_.clear();
            dtls_->on_timer(now, dtls_out_);
            if (const auto to = ice_.selected() ? ice_.selected() : dtls_from_) send_dtls(*to, out);
            check_dtls();
            if (ended()) return;
        }
        start_dtls_client(now, out);
    }
    if (const auto last = ice_.last_consent(); last && now - *last > kConsentTimeout && !browser_released_) {
        fail("ICE consent expired: no check from the browser for 30 s (RFC 7675 §5.1)");
        return;
    }
    if (trunk_ && receives(trunk_->direction) && last_trunk_in_ && now - *last_trunk_in_ > kTrunkMediaTimeout) {
        fail("no RTP from the trunk for 60 s");
        return;
    }
    tick_rtcp(now, out);
    if (!to_trunk_ && !browser_released_) return;
    // One frame per tick whatever the trunk's direction, so the jitter buffer keeps draining;
    // the trunk clock runs on during hold (RFC 3550 §5.1: timestamps follow the sampling clock).
    // Joined (issue 14): the other trunk party's frame instead of the browser's.
    std::array<std::uint8_t, kTrunkFrameBytes> frame{};
    if (browser_released_) {
        joined_events(out);   // the other party's DTMF first: its events lead the audio they cut into
        joined_frame(frame);
    } else {
        to_trunk_->tick(frame);
    }
    if (trunk_remote_ && sends(trunk_->direction))
        send_to_trunk(out, trunk_stream_.next(trunk_->payload_type, trunk_media_time_), frame);
    trunk_media_time_ += kTrunkFrameTicks;
}

}  // namespace turnbridge::gateway
