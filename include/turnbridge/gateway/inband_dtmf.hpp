// SPDX-License-Identifier: Apache-2.0
#pragma once
// In-band DTMF on the trunk leg (carriers that send tones, not RFC 4733 events), detected with
// spandsp's dtmf_rx (ITU-T Q.23/Q.24 limits) and turned into RFC 4733 telephone-events at 8000 Hz:
// a packet per 20 ms frame while the tone lasts, then the end packet three times (RFC 4733
// §2.5.1.4). Fixed-size state and output: nothing is allocated per frame.
#include <array>
#include <cstdint>
#include <span>

#include "turnbridge/gateway/telephone_event.hpp"
#include "turnbridge/gateway/trunk_codec.hpp"

struct dtmf_rx_state_s;

namespace turnbridge::gateway {

class InbandDtmf {
public:
    struct Event {
        std::uint32_t start;   // the event's start timestamp (8000 Hz, the trunk's RTP clock)
        TelephoneEvent event;  // duration in 8000 Hz units
    };

    InbandDtmf();
    ~InbandDtmf();
    InbandDtmf(const InbandDtmf&) = delete;  // spandsp calls back into `this`
    InbandDtmf& operator=(const InbandDtmf&) = delete;

    // One 20 ms frame of 8 kHz audio whose first sample has RTP timestamp `timestamp`: the
    // telephone-event packets it gives (none, one, or an end and the next start).
    std::span<const Event> on_frame(std::span<const std::int16_t, kTrunkFrameBytes> pcm, std::uint32_t timestamp);

    void on_tone(int code);  // spandsp's realtime callback: an ASCII digit starts, 0 ends

private:
    void emit(bool end);

    dtmf_rx_state_s* rx_;
    std::array<Event, 8> out_{};
    std::size_t used_ = 0;
    std::uint32_t frame_end_ = 0;  // timestamp just after the frame being detected
    bool active_ = false;
    std::uint8_t digit_ = 0;
    std::uint32_t start_ = 0;
};

}  // namespace turnbridge::gateway
