// SPDX-License-Identifier: Apache-2.0
#pragma once
// RFC 4733 telephone-event payloads (DTMF) and their move between clock rates: Chrome offers
// telephone-event at 48000 beside Opus and at 8000 beside G.711; trunks use 8000.
#include <cstdint>
#include <optional>

#include "turnbridge/gateway/rtp_packet.hpp"

namespace turnbridge::gateway {

constexpr std::size_t kTelephoneEventSize = 4;

struct TelephoneEvent {
    std::uint8_t event = 0;     // 0-9, * = 10, # = 11, A-D = 12-15 (RFC 4733 §3.2)
    bool end = false;           // E bit
    std::uint8_t volume = 0;    // 0..63, -dBm0
    std::uint16_t duration = 0; // in timestamp units of the payload's clock rate
    friend bool operator==(const TelephoneEvent&, const TelephoneEvent&) = default;
};

// RFC 4733 §2.3: the first event block (redundant blocks of §2.5.1.4 are ignored).
std::optional<TelephoneEvent> parse_telephone_event(Bytes payload);
std::size_t write_telephone_event(const TelephoneEvent& ev, MutableBytes out);  // 4, or 0 if short

// Duration in `to_rate` units, rounded to nearest, saturating at 0xFFFF (RFC 4733 §2.5.2.3
// splits longer events into segments; a relay keeps the saturated value).
std::uint16_t rescale_duration(std::uint16_t duration, std::uint32_t from_rate, std::uint32_t to_rate);

// Relays one direction of telephone-events from one leg's clock to the other's. All packets of an
// event share its start timestamp (RFC 4733 §2.5.1.2), so the incoming start timestamp names the
// event; the outgoing start is taken from the outgoing stream's media time at the first packet.
class TelephoneEventRelay {
public:
    TelephoneEventRelay(std::uint32_t from_rate, std::uint32_t to_rate) : from_(from_rate), to_(to_rate) {}

    struct Out {
        TelephoneEvent event;     // duration rescaled
        std::uint32_t media_time; // event start on the outgoing stream (pass to RtpStream::next)
        bool marker;              // first packet of a new event (RFC 4733 §2.5.1.3)
    };
    // `out_media_time` is the outgoing stream's current media time.
    Out on_packet(std::uint32_t in_timestamp, const TelephoneEvent& ev, std::uint32_t out_media_time);

private:
    std::uint32_t from_, to_;
    bool active_ = false;
    std::uint32_t in_start_ = 0;
    std::uint32_t out_start_ = 0;
};

}  // namespace turnbridge::gateway
