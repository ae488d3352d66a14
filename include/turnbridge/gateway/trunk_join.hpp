// SPDX-License-Identifier: Apache-2.0
#pragma once
// Issue 14, attended transfer: two trunk legs joined by the gateway after the browser user that
// had both calls left them (what Asterisk's local bridge does). The frames one trunk party sends
// are queued here in the other trunk leg's codec, and that leg's 20 ms tick takes one each time,
// so the other party hears a continuous stream of ours (its SSRC, sequence and clock go on).
// G.711 passes as it is or changes law; G.722 is coded in its narrowband mode (160 samples at
// 8 kHz, spandsp), so no resampler is needed. A bounded queue: when one party's clock runs faster
// the oldest frames go (at most kMaxFrames of delay); when none is queued the tick gets silence.
// State is made once per join (or codec change), never per frame.
#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "turnbridge/gateway/g722.hpp"
#include "turnbridge/gateway/trunk_codec.hpp"

namespace turnbridge::gateway {

class TrunkJoin {
public:
    static constexpr std::size_t kMaxFrames = 6;   // 120 ms

    TrunkJoin(TrunkCodec from, TrunkCodec to);
    TrunkCodec from() const { return from_; }
    TrunkCodec to() const { return to_; }

    // One 20 ms frame of the other party, in `from`.
    void push(std::span<const std::uint8_t, kTrunkFrameBytes> frame);
    // The next frame in `to`; false when none was queued (silence was written).
    bool pop(std::span<std::uint8_t, kTrunkFrameBytes> out);
    std::size_t queued() const { return count_; }
    std::uint64_t overflowed() const { return overflowed_; }   // frames dropped from a full queue

private:
    void convert(std::span<const std::uint8_t, kTrunkFrameBytes> in, std::span<std::uint8_t, kTrunkFrameBytes> out);

    TrunkCodec from_, to_;
    std::unique_ptr<G722Decoder> decoder_;   // from G.722
    std::unique_ptr<G722Encoder> encoder_;   // to G.722 (also its silence)
    std::array<std::int16_t, kTrunkFrameBytes> pcm_{};
    std::array<std::array<std::uint8_t, kTrunkFrameBytes>, kMaxFrames> ring_{};
    std::size_t head_ = 0, count_ = 0;
    std::uint64_t overflowed_ = 0;
};

}  // namespace turnbridge::gateway
