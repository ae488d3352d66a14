// SPDX-License-Identifier: Apache-2.0
#pragma once
// Bounds what a spoofed source can make us send (RFC 8656 §21): answers to
// unauthenticated UDP requests that are larger than the request are limited per source IP with
// a sliding-window counter. A fixed table of kSlots slots hashed by source IP: no heap per packet
// and no growth however many sources a flood uses.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "turnbridge/base/address.hpp"
#include "turnbridge/turn/clock.hpp"

namespace turnbridge::turn {

class ReflectionGuard {
public:
    static constexpr std::size_t kSlots = 4096;

    // `rate` answers per second per source IP (0 = unlimited), at most `burst` (>= 1) within
    // any window of burst/rate seconds. `seed` keys the slot hash so that a sender cannot
    // pick addresses that share a slot with a victim.
    ReflectionGuard(std::uint32_t rate, std::uint32_t burst, std::uint64_t seed);
    static ReflectionGuard with_random_seed(std::uint32_t rate, std::uint32_t burst);

    // SIGHUP: new limits; the counts so far stay.
    void set_limits(std::uint32_t rate, std::uint32_t burst);

    // May a response of `response_size` bytes to a `request_size`-byte request from `source`
    // be sent? Responses no larger than their request always may, and are not counted.
    // A refusal is counted in dropped().
    bool allow(Time now, const IpAddress& source, std::size_t request_size, std::size_t response_size);
    // The same count for every event from `source`, whatever its size (the gateway's per-source
    // limit on SIP requests): true while `source` is within the limit; a refusal is counted.
    bool admit(Time now, const IpAddress& source);

    std::uint64_t dropped() const { return dropped_; }

private:
    struct Slot {
        IpAddress source;
        bool used = false;
        Time window_start{};
        std::uint32_t previous = 0;  // answers in the window before window_start
        std::uint32_t current = 0;   // answers since window_start
    };
    std::size_t slot_of(const IpAddress& ip) const;

    std::uint32_t rate_ = 0;
    std::uint32_t burst_ = 1;
    Duration window_{1};
    std::uint64_t seed_;
    std::uint64_t dropped_ = 0;
    std::unique_ptr<std::array<Slot, kSlots>> slots_;  // made once, on first use: 160 KiB
};

}  // namespace turnbridge::turn
