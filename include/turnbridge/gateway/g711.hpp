// SPDX-License-Identifier: Apache-2.0
#pragma once
// ITU-T G.711 companding: mu-law (PCMU) and A-law (PCMA), 16-bit linear in and out.
// Bit arithmetic, no tables, no allocation.
#include <cstdint>
#include <span>

namespace turnbridge::gateway {

enum class G711Law : std::uint8_t { Pcmu, Pcma };

std::uint8_t linear_to_ulaw(std::int16_t sample);
std::int16_t ulaw_to_linear(std::uint8_t code);
std::uint8_t linear_to_alaw(std::int16_t sample);
std::int16_t alaw_to_linear(std::uint8_t code);

// Whole frames; `out` must be at least as long as `in` (only in.size() items are written).
void g711_encode(G711Law law, std::span<const std::int16_t> in, std::span<std::uint8_t> out);
void g711_decode(G711Law law, std::span<const std::uint8_t> in, std::span<std::int16_t> out);

// Transcode one G.711 frame to the other law in place of a decode + encode pair.
void g711_convert(G711Law from, std::span<const std::uint8_t> in, std::span<std::uint8_t> out);

}  // namespace turnbridge::gateway
