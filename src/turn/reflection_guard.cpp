// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/turn/reflection_guard.hpp"

#include <openssl/rand.h>

#include "turnbridge/base/keyed_hash.hpp"

namespace turnbridge::turn {

ReflectionGuard::ReflectionGuard(std::uint32_t rate, std::uint32_t burst, std::uint64_t seed)
    : seed_(seed) {
    set_limits(rate, burst);
}

ReflectionGuard ReflectionGuard::with_random_seed(std::uint32_t rate, std::uint32_t burst) {
    std::uint64_t seed = 0;
    RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed);
    return ReflectionGuard(rate, burst, seed);
}

void ReflectionGuard::set_limits(std::uint32_t rate, std::uint32_t burst) {
    rate_ = rate;
    burst_ = burst == 0 ? 1 : burst;
    // `burst` answers per window of burst/rate seconds averages out at `rate` per second.
    if (rate_ != 0)
        window_ = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(double(burst_) / rate_));
    if (window_ <= Duration::zero()) window_ = Duration(1);
}

std::size_t ReflectionGuard::slot_of(const IpAddress& ip) const {
    return static_cast<std::size_t>(keyed_hash(seed_ ^ static_cast<std::uint64_t>(ip.family), ip.bytes.data(), ip.size()) %
                                    kSlots);
}

bool ReflectionGuard::allow(Time now, const IpAddress& source, std::size_t request_size,
                            std::size_t response_size) {
    if (response_size <= request_size) return true;  // nothing to amplify
    return admit(now, source);
}

bool ReflectionGuard::admit(Time now, const IpAddress& source) {
    if (rate_ == 0) return true;  // no limit
    // The table is made on first use, once: workers that never answer strangers do not pay.
    if (!slots_) slots_ = std::make_unique<std::array<Slot, kSlots>>();
    Slot& s = (*slots_)[slot_of(source)];
    if (!s.used || !(s.source == source)) {
        // A different source takes the slot over. Deviation from an exact per-source count:
        // with more than kSlots active sources a count may restart early, but one source's
        // flood never throttles another address.
        s = Slot{source, true, now, 0, 0};
    }
    // Slide: whole windows since window_start move `current` into `previous` (or clear both).
    if (now >= s.window_start + window_) {
        const auto passed = (now - s.window_start) / window_;
        s.previous = passed == 1 ? s.current : 0;
        s.current = 0;
        s.window_start += passed * window_;
    } else if (now < s.window_start) {
        s.window_start = now;  // callers never go back in time; do not rely on it
    }
    // The count over the last window: all of `current` plus the share of `previous` that the
    // sliding window still overlaps.
    const double into = std::chrono::duration<double>(now - s.window_start) / window_;
    const double estimate = s.previous * (1.0 - into) + s.current;
    if (estimate + 1.0 > burst_) {
        ++dropped_;
        return false;
    }
    ++s.current;
    return true;
}

}  // namespace turnbridge::turn
