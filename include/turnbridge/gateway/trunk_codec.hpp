// SPDX-License-Identifier: Apache-2.0
#pragma once
// The trunk leg's audio codecs: G.711 (PCMU, PCMA) and G.722 (HD voice). All three carry 20 ms in
// 160 bytes on an 8000 Hz RTP clock: G.711 is 8 bits at 8 kHz; G.722 is 64 kbit/s and samples at
// 16 kHz, but RFC 3551 §4.5.2 keeps its RTP clock (and rtpmap, G722/8000) at 8000.
#include <cstdint>
#include <optional>
#include <string_view>

#include "turnbridge/gateway/g711.hpp"

namespace turnbridge::gateway {

enum class TrunkCodec : std::uint8_t { Pcmu, Pcma, G722 };

constexpr std::size_t kTrunkFrameBytes = 160;   // 20 ms of any trunk codec
constexpr std::uint32_t kTrunkFrameTicks = 160; // 20 ms at the 8000 Hz RTP clock of all three

// The rtpmap encoding name and RFC 3551 §6 static payload type.
constexpr std::string_view to_string(TrunkCodec c) {
    return c == TrunkCodec::Pcmu ? "PCMU" : c == TrunkCodec::Pcma ? "PCMA" : "G722";
}
constexpr std::uint8_t static_payload_type(TrunkCodec c) {
    return c == TrunkCodec::Pcmu ? 0 : c == TrunkCodec::Pcma ? 8 : 9;
}
constexpr std::optional<G711Law> g711_law(TrunkCodec c) {
    if (c == TrunkCodec::Pcmu) return G711Law::Pcmu;
    if (c == TrunkCodec::Pcma) return G711Law::Pcma;
    return std::nullopt;
}
constexpr TrunkCodec trunk_codec(G711Law law) { return law == G711Law::Pcmu ? TrunkCodec::Pcmu : TrunkCodec::Pcma; }

}  // namespace turnbridge::gateway
