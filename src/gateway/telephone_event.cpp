// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/telephone_event.hpp"

namespace turnbridge::gateway {

std::optional<TelephoneEvent> parse_telephone_event(Bytes p) {
    if (p.size() < kTelephoneEventSize) return std::nullopt;
    TelephoneEvent ev;
    ev.event = p[0];
    ev.end = (p[1] & 0x80) != 0;
    ev.volume = p[1] & 0x3F;  // bit 6 is reserved (R)
    ev.duration = static_cast<std::uint16_t>((p[2] << 8) | p[3]);
    return ev;
}

std::size_t write_telephone_event(const TelephoneEvent& ev, MutableBytes out) {
    if (out.size() < kTelephoneEventSize) return 0;
    out[0] = ev.event;
    out[1] = static_cast<std::uint8_t>((ev.end ? 0x80 : 0) | (ev.volume & 0x3F));
    out[2] = static_cast<std::uint8_t>(ev.duration >> 8);
    out[3] = static_cast<std::uint8_t>(ev.duration);
    return kTelephoneEventSize;
}

std::uint16_t rescale_duration(std::uint16_t duration, std::uint32_t from_rate, std::uint32_t to_rate) {
    if (from_rate == 0) return duration;
    const std::uint64_t v = (std::uint64_t{duration} * to_rate + from_rate / 2) / from_rate;
    return static_cast<std::uint16_t>(v > 0xFFFF ? 0xFFFF : v);
}

TelephoneEventRelay::Out TelephoneEventRelay::on_packet(std::uint32_t in_timestamp, const TelephoneEvent& ev,
                                                        std::uint32_t out_media_time) {
    const bool fresh = !active_ || in_timestamp != in_start_;
    if (fresh) {
        active_ = true;
        in_start_ = in_timestamp;
        out_start_ = out_media_time;
    }
    TelephoneEvent out = ev;
    out.duration = rescale_duration(ev.duration, from_, to_);
    return {out, out_start_, fresh};
}

}  // namespace turnbridge::gateway
