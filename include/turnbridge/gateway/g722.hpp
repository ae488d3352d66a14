// SPDX-License-Identifier: Apache-2.0
#pragma once
// ITU-T G.722 at 64 kbit/s through spandsp (a maintained, ITU-conformant implementation), one
// 20 ms frame at a time: 320 samples at 16 kHz <-> 160 bytes. Narrowband mode (spandsp's
// G722_SAMPLE_RATE_8000) codes 160 samples at 8 kHz as the lower sub-band only, for a G.711
// browser leg: no resampler. State is allocated once per call, never per frame.
#include <cstdint>
#include <span>

#include "turnbridge/gateway/trunk_codec.hpp"

struct g722_encode_state_s;
struct g722_decode_state_s;

namespace turnbridge::gateway {

constexpr std::size_t kWideFrameSamples = 320;  // 20 ms at 16 kHz

class G722Encoder {
public:
    explicit G722Encoder(bool wideband);
    ~G722Encoder();
    G722Encoder(const G722Encoder&) = delete;
    G722Encoder& operator=(const G722Encoder&) = delete;
    // 320 samples (wideband) or 160 (narrowband) in; one frame out. False if `pcm` has another size.
    bool encode(std::span<const std::int16_t> pcm, std::span<std::uint8_t, kTrunkFrameBytes> out);
    std::size_t frame_samples() const { return wideband_ ? kWideFrameSamples : kTrunkFrameBytes; }

private:
    bool wideband_;
    g722_encode_state_s* s_;
};

class G722Decoder {
public:
    explicit G722Decoder(bool wideband);
    ~G722Decoder();
    G722Decoder(const G722Decoder&) = delete;
    G722Decoder& operator=(const G722Decoder&) = delete;
    // One frame in; frame_samples() samples written to `pcm` (which must hold them). Returns the count.
    std::size_t decode(std::span<const std::uint8_t, kTrunkFrameBytes> in, std::span<std::int16_t> pcm);
    std::size_t frame_samples() const { return wideband_ ? kWideFrameSamples : kTrunkFrameBytes; }

private:
    bool wideband_;
    g722_decode_state_s* s_;
};

}  // namespace turnbridge::gateway
