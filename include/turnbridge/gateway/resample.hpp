// SPDX-License-Identifier: Apache-2.0
#pragma once
// 2:1 sample-rate conversion between the trunk's narrowband audio (8 kHz, G.711) and 16 kHz
// linear PCM (an AI agent's L16 stream, issue 17), without I/O or allocation after construction.
// Both directions use one linear-phase low-pass FIR at 16 kHz (a windowed sinc, cut-off 3.8 kHz,
// Blackman window, kTaps taps: passband flat to about 3 kHz, stopband from about 4.9 kHz,
// attenuation beyond it over 70 dB):
//   up   8 -> 16 kHz: each input sample followed by a zero (the spectrum's image above 4 kHz
//        appears), then the filter with gain 2 removes the image: an interpolator, not a sample
//        repeat (which would leave the image at 8 kHz minus f, audible as a buzz);
//   down 16 -> 8 kHz: the filter first (nothing above 4 kHz is left to alias), then every
//        second sample (decimation).
// The filter's state (the last kTaps samples) carries across calls, so 20 ms frames join
// without clicks; the delay is (kTaps - 1) / 2 samples at 16 kHz (1.4 ms).
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace turnbridge::gateway {

class Resampler2x {
public:
    static constexpr std::size_t kTaps = 47;
    static const std::array<float, kTaps>& taps();   // computed once per process

    // 8 kHz -> 16 kHz: writes 2 * in.size() samples to `out` (which must hold them).
    void up(std::span<const std::int16_t> in, std::span<std::int16_t> out);
    // 16 kHz -> 8 kHz: writes in.size() / 2 samples (an odd last sample waits for the next
    // call). Returns the count written.
    std::size_t down(std::span<const std::int16_t> in, std::span<std::int16_t> out);

private:
    // A ring of the last kTaps samples at 16 kHz, doubled so that a window is contiguous.
    struct History {
        std::array<float, 2 * kTaps> x{};
        std::size_t pos = 0;
        void push(float v) {
            x[pos] = v;
            x[pos + kTaps] = v;
            pos = pos + 1 == kTaps ? 0 : pos + 1;
        }
        float filter(float gain) const;
    };
    History up_, down_;
    bool odd_ = false;   // down(): one 16 kHz sample pushed, its pair not yet
};

}  // namespace turnbridge::gateway
