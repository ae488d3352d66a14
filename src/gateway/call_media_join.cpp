// SPDX-License-Identifier: Apache-2.0
// CallMedia, attended transfer (issue 14): the browser user had two calls and transferred one
// party to the other (RFC 3891 Replaces in a REFER, sip::Call's call_attended.cpp). Both browser
// legs end, both trunk legs stay, and the gateway joins their media as Asterisk's local bridge
// does: each trunk party's audio frames go, in the other leg's codec (TrunkJoin), out of the other
// leg's RTP socket on its 20 ms tick. Both calls live on one worker (the placement keeps a user's
// calls together), so the two CallMedia objects know each other by plain pointers; whichever is
// destroyed first unhooks the other.
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

void CallMedia::joined_frame(std::span<std::uint8_t, kTrunkFrameBytes> out) {
    if (!join_ || !trunk_ || join_->to() != trunk_->codec) join_.emplace(trunk_ ? trunk_->codec : TrunkCodec::Pcmu,
                                                                         trunk_ ? trunk_->codec : TrunkCodec::Pcmu);
    join_->pop(out);   // silence while the other party sends nothing (or has hung up)
}

}  // namespace turnbridge::gateway
