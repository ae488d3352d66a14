// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/g711.hpp"

#include <bit>

namespace turnbridge::gateway {
namespace {
// ITU-T G.711 (mu-law): 14-bit magnitude plus a bias of 33 (132 on the 16-bit scale)
// so that every segment boundary is a power of two.
constexpr int kUlawBias = 0x84;
constexpr int kUlawBias14 = 33;
constexpr int kUlawClip14 = 8159;

// Index of the highest set bit of v (v > 0).
int top_bit(unsigned v) { return std::bit_width(v) - 1; }
}  // namespace

std::uint8_t linear_to_ulaw(std::int16_t sample) {
    // Work on 14 bits as G.711 does; arithmetic shift first so that negative inputs round the
    // same way as the CCITT/Sun reference code (and CPython's audioop).
    int s = sample >> 2;
    const int sign = s < 0 ? 0x80 : 0x00;
    if (s < 0) s = -s;
    if (s > kUlawClip14) s = kUlawClip14;
    s += kUlawBias14;  // now 33..8191: the segment is the highest bit above bit 5
    const int segment = top_bit(static_cast<unsigned>(s)) - 5;
    if (segment > 7) return static_cast<std::uint8_t>(~(sign | 0x7F));  // the clip level itself
    const int mantissa = (s >> (segment + 1)) & 0x0F;
    // Codes are transmitted inverted (G.711 Table 2a: all-ones is the smallest positive value).
    return static_cast<std::uint8_t>(~(sign | (segment << 4) | mantissa));
}

std::int16_t ulaw_to_linear(std::uint8_t code) {
    const int c = static_cast<std::uint8_t>(~code);
    const int segment = (c >> 4) & 0x07;
    const int mantissa = c & 0x0F;
    const int magnitude = (((mantissa << 3) + kUlawBias) << segment) - kUlawBias;
    return static_cast<std::int16_t>((c & 0x80) ? -magnitude : magnitude);
}

std::uint8_t linear_to_alaw(std::int16_t sample) {
    // G.711 A-law works on 13 bits; the sign bit is 1 for positive values and even bits are
    // inverted on the wire (XOR 0x55).
    int s = sample >> 3;
    int mask = 0xD5;
    if (s < 0) {
        mask = 0x55;
        s = -s - 1;  // one's-complement magnitude keeps -1 and 0 in the smallest step
    }
    if (s > 0xFFF) return static_cast<std::uint8_t>(0x7F ^ mask);
    const int segment = s < 0x20 ? 0 : top_bit(static_cast<unsigned>(s)) - 4;
    const int mantissa = segment == 0 ? (s >> 1) & 0x0F : (s >> segment) & 0x0F;
    return static_cast<std::uint8_t>(((segment << 4) | mantissa) ^ mask);
}

std::int16_t alaw_to_linear(std::uint8_t code) {
    const int c = code ^ 0x55;
    const int segment = (c >> 4) & 0x07;
    int magnitude = ((c & 0x0F) << 4) + 8;  // the middle of the quantisation step
    if (segment > 0) magnitude = (magnitude + 0x100) << (segment - 1);
    return static_cast<std::int16_t>((c & 0x80) ? magnitude : -magnitude);
}

void g711_encode(G711Law law, std::span<const std::int16_t> in, std::span<std::uint8_t> out) {
    const auto n = in.size() < out.size() ? in.size() : out.size();
    if (law == G711Law::Pcmu)
        for (std::size_t i = 0; i < n; ++i) out[i] = linear_to_ulaw(in[i]);
    else
        for (std::size_t i = 0; i < n; ++i) out[i] = linear_to_alaw(in[i]);
}

void g711_decode(G711Law law, std::span<const std::uint8_t> in, std::span<std::int16_t> out) {
    const auto n = in.size() < out.size() ? in.size() : out.size();
    if (law == G711Law::Pcmu)
        for (std::size_t i = 0; i < n; ++i) out[i] = ulaw_to_linear(in[i]);
    else
        for (std::size_t i = 0; i < n; ++i) out[i] = alaw_to_linear(in[i]);
}

void g711_convert(G711Law from, std::span<const std::uint8_t> in, std::span<std::uint8_t> out) {
    const auto n = in.size() < out.size() ? in.size() : out.size();
    if (from == G711Law::Pcmu)
        for (std::size_t i = 0; i < n; ++i) out[i] = linear_to_alaw(ulaw_to_linear(in[i]));
    else
        for (std::size_t i = 0; i < n; ++i) out[i] = linear_to_ulaw(alaw_to_linear(in[i]));
}

}  // namespace turnbridge::gateway
