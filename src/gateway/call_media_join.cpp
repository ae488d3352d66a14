// SPDX-License-Identifier: Apache-2.0
// CallMedia, attended transfer (issue 14): the browser user had two calls and transferred one
// party to the other (RFC 3891 Replaces in a REFER, sip::Call's call_attended.cpp). Both browser
// legs end, both trunk legs stay, and the gateway joins their media as Asterisk's local bridge
// does: each trunk party's audio frames go, in the other leg's codec (TrunkJoin), out of the other
// leg's RTP socket on its 20 ms tick. Both calls live on one worker (the placement keeps a user's
// calls together), so the two CallMedia objects know each other by plain pointers; whichever is
// destroyed first unhooks the other. RFC 4733 events pass too (a caller keying a PIN into the
// party it was transferred to), re-stamped onto the other leg's stream and payload type.
#include <utility>

#include "turnbridge/gateway/call_media.hpp"

namespace turnbridge::gateway {

CallMedia::~CallMedia() {
    if (peer_ != nullptr) peer_->peer_ = nullptr;
}

bool CallMedia::join_trunk(sip::MediaSdp& other) {
    auto* o = dynamic_cast<CallMedia*>(&other);
    if (o == nullptr || o == this || peer_ != nullptr || o->peer_ != nullptr || browser_released_ ||
        o->browser_released_ || !trunk_ || !o->trunk_ || ended() || o->ended())
        return false;
    peer_ = o;
    o->peer_ = this;
    browser_released_ = o->browser_released_ = true;
    return true;
}

void CallMedia::from_peer(const RtpPacket& p, TrunkCodec codec) {
    if (!trunk_) return;
    // The codecs of the moment: either party may change its own with a re-INVITE (then the
    // converter is made again; never per frame otherwise).
    if (!join_ || join_->from() != codec || join_->to() != trunk_->codec) join_.emplace(codec, trunk_->codec);
    // A party sending longer packets (ptime 40, 60) still arrives frame by frame.
    const auto overflowed = join_->overflowed();
    for (std::size_t i = 0; i + kTrunkFrameBytes <= p.payload.size(); i += kTrunkFrameBytes)
        join_->push(p.payload.subspan(i).first<kTrunkFrameBytes>());
    stats_.dropped += static_cast<std::uint32_t>(join_->overflowed() - overflowed);   // a party sending too fast
}

void CallMedia::event_from_peer(std::uint32_t timestamp, const TelephoneEvent& ev) {
    // A party we cannot signal events to (no telephone-event in its SDP) hears none: its
    // in-band tones, if the other party's phone plays them, still pass as audio.
    if (!trunk_ || !trunk_->telephone_event || peer_event_count_ == peer_events_.size()) {
        ++stats_.dropped;
        return;
    }
    peer_events_[peer_event_count_++] = {timestamp, ev};
}

void CallMedia::joined_events(MediaOutput& out) {
    const std::size_t n = std::exchange(peer_event_count_, 0);
    if (n == 0 || !trunk_ || !trunk_->telephone_event || !trunk_remote_ || !sends(trunk_->direction)) return;
    // RFC 4733 §2.5.1.2: every packet of one event carries the event's start on our stream's
    // clock; both trunk legs count events at 8000 Hz, so durations pass unchanged.
    if (!dtmf_joined_) dtmf_joined_.emplace(8000, 8000);
    for (std::size_t i = 0; i < n; ++i) {
        const auto r = dtmf_joined_->on_packet(peer_events_[i].timestamp, peer_events_[i].event, trunk_media_time_);
        std::array<std::uint8_t, kTelephoneEventSize> payload{};
        write_telephone_event(r.event, payload);
        send_to_trunk(out, trunk_stream_.next(*trunk_->telephone_event, r.media_time, r.marker), payload);
        ++stats_.dtmf_to_trunk;
    }
}

void CallMedia::joined_frame(std::span<std::uint8_t, kTrunkFrameBytes> out) {
    if (!join_ || !trunk_ || join_->to() != trunk_->codec) join_.emplace(trunk_ ? trunk_->codec : TrunkCodec::Pcmu,
                                                                         trunk_ ? trunk_->codec : TrunkCodec::Pcmu);
    join_->pop(out);   // silence while the other party sends nothing (or has hung up)
}

}  // namespace turnbridge::gateway
