// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test tones and their measurement, shared by the gateway's audio tests.
#include <cmath>
#include <cstdint>
#include <vector>

namespace turnbridge::gateway::test {

constexpr double kPi = 3.14159265358979323846;

// Goertzel power of `f` Hz in `x` sampled at `rate`.
inline double goertzel(const std::vector<double>& x, double f, double rate) {
    const double w = 2 * kPi * f / rate, c = 2 * std::cos(w);
    double s1 = 0, s2 = 0;
    for (double v : x) {
        const double s0 = v + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    return s1 * s1 + s2 * s2 - c * s1 * s2;
}

// The strongest frequency between 100 Hz and `max_hz` (default: 100 Hz below Nyquist), 5 Hz steps.
inline double dominant_frequency(const std::vector<double>& x, double rate, double max_hz = 0) {
    if (max_hz <= 0) max_hz = rate / 2 - 100;
    double best = 0, best_f = 0;
    for (double f = 100; f < max_hz; f += 5) {
        const double p = goertzel(x, f, rate);
        if (p > best) { best = p; best_f = f; }
    }
    return best_f;
}

inline std::vector<std::int16_t> sine(double f, double rate, std::size_t n, double amplitude, std::size_t offset = 0) {
    std::vector<std::int16_t> v(n);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = static_cast<std::int16_t>(amplitude * std::sin(2 * kPi * f * static_cast<double>(i + offset) / rate));
    return v;
}

}  // namespace turnbridge::gateway::test
