// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/trunk_join.hpp"

#include <algorithm>

#include "turnbridge/gateway/g711.hpp"

namespace turnbridge::gateway {

TrunkJoin::TrunkJoin(TrunkCodec from, TrunkCodec to) : from_(from), to_(to) {
    if (from_ != to_ && from_ == TrunkCodec::G722) decoder_ = std::make_unique<G722Decoder>(false);
    if (to_ == TrunkCodec::G722) encoder_ = std::make_unique<G722Encoder>(false);
}

void TrunkJoin::convert(std::span<const std::uint8_t, kTrunkFrameBytes> in, std::span<std::uint8_t, kTrunkFrameBytes> out) {
    if (from_ == to_) {
        std::copy(in.begin(), in.end(), out.begin());
        return;
    }
    const auto from_law = g711_law(from_);
    const auto to_law = g711_law(to_);
    if (from_law && to_law) return g711_convert(*from_law, in, out);
    if (from_law) g711_decode(*from_law, in, pcm_);
    else decoder_->decode(in, pcm_);
    if (to_law) g711_encode(*to_law, pcm_, out);
    else encoder_->encode(pcm_, out);
}

void TrunkJoin::push(std::span<const std::uint8_t, kTrunkFrameBytes> frame) {
    if (count_ == kMaxFrames) {   // the sender's clock runs ahead of our tick: drop the oldest
        head_ = (head_ + 1) % kMaxFrames;
        --count_;
        ++overflowed_;
    }
    convert(frame, ring_[(head_ + count_) % kMaxFrames]);
    ++count_;
}

bool TrunkJoin::pop(std::span<std::uint8_t, kTrunkFrameBytes> out) {
    if (count_ == 0) {
        if (const auto law = g711_law(to_)) {
            std::fill(out.begin(), out.end(), *law == G711Law::Pcmu ? std::uint8_t{0xff} : std::uint8_t{0xd5});
        } else {
            pcm_.fill(0);
            encoder_->encode(pcm_, out);
        }
        return false;
    }
    const auto& f = ring_[head_];
    std::copy(f.begin(), f.end(), out.begin());
    head_ = (head_ + 1) % kMaxFrames;
    --count_;
    return true;
}

}  // namespace turnbridge::gateway
