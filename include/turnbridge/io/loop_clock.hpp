// SPDX-License-Identifier: Apache-2.0
#pragma once
// The net layer is where the clock is read (STYLE.md: cores never read it).
#include <chrono>

#include "turnbridge/turn/clock.hpp"

namespace turnbridge::net {

inline turn::Clock read_clock() {
    using namespace std::chrono;
    return turn::Clock{steady_clock::now(),
                       duration_cast<seconds>(system_clock::now().time_since_epoch()).count()};
}

}  // namespace turnbridge::net
