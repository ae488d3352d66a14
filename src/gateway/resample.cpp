// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/resample.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace turnbridge::gateway {
namespace {

constexpr double kRate = 16000.0;
constexpr double kCutoff = 3800.0;   // below 4 kHz (8 kHz's Nyquist) so the transition band ends near it

std::array<float, Resampler2x::kTaps> design() {
    constexpr std::size_t n = Resampler2x::kTaps;
    constexpr double pi = std::numbers::pi;
    const double fc = kCutoff / kRate;   // cycles per sample
    std::array<double, n> h{};
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double m = static_cast<double>(i) - (n - 1) / 2.0;
        const double sinc = m == 0 ? 2 * fc : std::sin(2 * pi * fc * m) / (pi * m);
        const double w = 0.42 - 0.5 * std::cos(2 * pi * i / (n - 1)) + 0.08 * std::cos(4 * pi * i / (n - 1));
        h[i] = sinc * w;
        sum += h[i];
    }
    std::array<float, n> out{};
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(h[i] / sum);   // unity gain at DC
    return out;
}

std::int16_t clamp16(float v) {
    return static_cast<std::int16_t>(std::clamp(std::lround(v), -32768L, 32767L));
}

}  // namespace

const std::array<float, Resampler2x::kTaps>& Resampler2x::taps() {
    static const std::array<float, kTaps> h = design();
    return h;
}

// The window is the last kTaps samples, oldest first; the filter is symmetric, so its order
// does not matter.
float Resampler2x::History::filter(float gain) const {
    const auto& h = taps();
    const float* w = x.data() + pos;
    float acc = 0;
    for (std::size_t i = 0; i < kTaps; ++i) acc += h[i] * w[i];
    return acc * gain;
}

void Resampler2x::up(std::span<const std::int16_t> in, std::span<std::int16_t> out) {
    std::size_t o = 0;
    for (const auto s : in) {
        // Zero stuffing halves the amplitude of the baseband: the gain of 2 restores it.
        up_.push(static_cast<float>(s));
        out[o++] = clamp16(up_.filter(2.0f));
        up_.push(0.0f);
        out[o++] = clamp16(up_.filter(2.0f));
    }
}

std::size_t Resampler2x::down(std::span<const std::int16_t> in, std::span<std::int16_t> out) {
    std::size_t o = 0;
    for (const auto s : in) {
        down_.push(static_cast<float>(s));
        odd_ = !odd_;
        if (!odd_) out[o++] = clamp16(down_.filter(1.0f));   // one output per pair of inputs
    }
    return o;
}

}  // namespace turnbridge::gateway
