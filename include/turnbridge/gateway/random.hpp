// SPDX-License-Identifier: Apache-2.0
#pragma once
// Randomness is injected (ICE credentials, SSRCs, initial sequence numbers) so that cores stay
// deterministic under test. Production passes random_bytes() (OpenSSL RAND_bytes).
#include <cstdint>
#include <functional>
#include <span>

namespace turnbridge::gateway {

using RandomSource = std::function<void(std::span<std::uint8_t>)>;

// OpenSSL's CSPRNG; aborts never, fills with RAND_bytes.
void random_bytes(std::span<std::uint8_t> out);

template <class T>
T random_value(const RandomSource& rng) {
    std::uint8_t b[sizeof(T)];
    rng(b);
    T v = 0;
    for (auto x : b) v = static_cast<T>((v << 8) | x);
    return v;
}

}  // namespace turnbridge::gateway
