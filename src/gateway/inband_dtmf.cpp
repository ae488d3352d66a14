// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/inband_dtmf.hpp"

// spandsp's headers need their prerequisites first (what <spandsp.h> includes before dtmf.h).
#include <cstddef>
#include <cstdint>
#include <spandsp/telephony.h>
#include <spandsp/logging.h>
#include <spandsp/complex.h>
#include <spandsp/tone_detect.h>
#include <spandsp/tone_generate.h>
#include <spandsp/super_tone_rx.h>
#include <spandsp/dtmf.h>

#include <algorithm>
#include <new>

namespace turnbridge::gateway {
namespace {

// RFC 4733 §3.2: 0-9, * = 10, # = 11, A-D = 12-15.
std::optional<std::uint8_t> event_code(int ascii) {
    if (ascii >= '0' && ascii <= '9') return static_cast<std::uint8_t>(ascii - '0');
    if (ascii == '*') return 10;
    if (ascii == '#') return 11;
    if (ascii >= 'A' && ascii <= 'D') return static_cast<std::uint8_t>(12 + ascii - 'A');
    return std::nullopt;
}

// RFC 4733 §2.3.4: the volume is the power level in -dBm0. spandsp reports the level it detected
// only roughly, so the usual -10 dBm0 of a DTMF generator is stated.
constexpr std::uint8_t kVolume = 10;

void realtime(void* user, int code, int, int) { static_cast<InbandDtmf*>(user)->on_tone(code); }

}  // namespace

InbandDtmf::InbandDtmf() : rx_(dtmf_rx_init(nullptr, nullptr, nullptr)) {
    if (!rx_) throw std::bad_alloc();
    dtmf_rx_set_realtime_callback(rx_, &realtime, this);
}

InbandDtmf::~InbandDtmf() { dtmf_rx_free(rx_); }

std::span<const InbandDtmf::Event> InbandDtmf::on_frame(std::span<const std::int16_t, kTrunkFrameBytes> pcm,
                                                         std::uint32_t timestamp) {
    used_ = 0;
    frame_end_ = timestamp + kTrunkFrameTicks;
    dtmf_rx(rx_, pcm.data(), static_cast<int>(pcm.size()));  // calls on_tone()
    if (active_) emit(false);  // RFC 4733 §2.5.1.2: one update per frame while the tone lasts
    return {out_.data(), used_};
}

void InbandDtmf::on_tone(int code) {
    if (active_) {
        // The end (or a new digit without a pause): the final packet, sent three times (§2.5.1.4).
        for (int i = 0; i < 3; ++i) emit(true);
        active_ = false;
    }
    const auto ev = event_code(code);
    if (!ev) return;
    active_ = true;
    digit_ = *ev;
    // The tone began before the detector was sure of it; the event starts with this frame.
    start_ = frame_end_ - kTrunkFrameTicks;
}

void InbandDtmf::emit(bool end) {
    if (used_ == out_.size()) return;
    // §2.5.2.3 splits events longer than 0xFFFF; a tone that long is saturated instead.
    const std::uint32_t d = std::min<std::uint32_t>(frame_end_ - start_, 0xFFFF);
    out_[used_++] = {start_, {digit_, end, kVolume, static_cast<std::uint16_t>(d)}};
}

}  // namespace turnbridge::gateway
