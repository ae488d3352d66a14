// SPDX-License-Identifier: Apache-2.0
#pragma once
// A seeded 64-bit hash for fixed tables keyed by what an outsider sends (source addresses, user
// names): with a random seed a sender cannot pick keys that land on a given slot. Not a MAC.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace turnbridge {

// splitmix64's finaliser: every input bit moves every output bit.
constexpr std::uint64_t mix64(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Folds `bytes` into `h` eight at a time, then their count (so "ab" + "c" differs from "a" + "bc").
constexpr std::uint64_t keyed_hash(std::uint64_t h, const std::uint8_t* bytes, std::size_t n) {
    for (std::size_t i = 0; i < n; i += 8) {
        std::uint64_t word = 0;
        for (std::size_t j = i; j < i + 8 && j < n; ++j) word = word << 8 | bytes[j];
        h = mix64(h ^ word);
    }
    return mix64(h ^ n);
}

inline std::uint64_t keyed_hash(std::uint64_t h, std::string_view s) {
    return keyed_hash(h, reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

}  // namespace turnbridge
