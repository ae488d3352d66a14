// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/g722.hpp"

#include <cstdint>
#include <spandsp/telephony.h>
#include <spandsp/g722.h>

#include <new>

namespace turnbridge::gateway {
namespace {
constexpr int kRate = 64000;  // RFC 3551 §4.5.2: the RTP payload is always mode 1, 64 kbit/s
int options(bool wideband) { return wideband ? 0 : G722_SAMPLE_RATE_8000; }
}  // namespace

G722Encoder::G722Encoder(bool wideband)
    : wideband_(wideband), s_(g722_encode_init(nullptr, kRate, options(wideband))) {
    if (!s_) throw std::bad_alloc();
}

G722Encoder::~G722Encoder() { g722_encode_free(s_); }

bool G722Encoder::encode(std::span<const std::int16_t> pcm, std::span<std::uint8_t, kTrunkFrameBytes> out) {
    if (pcm.size() != frame_samples()) return false;
    return g722_encode(s_, out.data(), pcm.data(), static_cast<int>(pcm.size())) == static_cast<int>(out.size());
}

G722Decoder::G722Decoder(bool wideband)
    : wideband_(wideband), s_(g722_decode_init(nullptr, kRate, options(wideband))) {
    if (!s_) throw std::bad_alloc();
}

G722Decoder::~G722Decoder() { g722_decode_free(s_); }

std::size_t G722Decoder::decode(std::span<const std::uint8_t, kTrunkFrameBytes> in, std::span<std::int16_t> pcm) {
    if (pcm.size() < frame_samples()) return 0;
    const int n = g722_decode(s_, pcm.data(), in.data(), static_cast<int>(in.size()));
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

}  // namespace turnbridge::gateway
