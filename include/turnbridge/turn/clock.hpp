// SPDX-License-Identifier: Apache-2.0
#pragma once
// Time as the cores see it: given by the caller, never read here (STYLE.md, sans-I/O).
#include <chrono>
#include <cstdint>

namespace turnbridge::turn {

using Time = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;

struct Clock {
    Time mono;                     // lifetimes, expiry, nonces
    std::int64_t unix_seconds = 0; // wall clock, for TURN REST API usernames (expiry timestamps)
};

}  // namespace turnbridge::turn
