// SPDX-License-Identifier: Apache-2.0
#pragma once
// The I/O layer is where the clock is read (STYLE.md: cores never read it).
#include <chrono>
#include <cstdint>
#include <uv.h>

#include "turnbridge/turn/clock.hpp"

namespace turnbridge::io {

// Both clocks, read now: for code that runs outside a loop's callbacks or once in a while.
inline turn::Clock read_clock() {
    using namespace std::chrono;
    return turn::Clock{steady_clock::now(),
                       duration_cast<seconds>(system_clock::now().time_since_epoch()).count()};
}

// A loop's clock for its per-datagram work: the monotonic time is uv_now() (libuv reads it once
// per loop iteration; CLOCK_MONOTONIC in ms, the clock std::chrono::steady_clock reads, so the
// two compare), and the wall clock (TURN REST expiries, nonces) is read again at most once a
// second. No clock_gettime per datagram.
class LoopClock {
public:
    explicit LoopClock(uv_loop_t* loop) : loop_(loop) {}
    turn::Clock now() {
        const std::uint64_t ms = uv_now(loop_);
        if (unix_ == 0 || ms - unix_read_ms_ >= 1000) {
            unix_ = read_clock().unix_seconds;
            unix_read_ms_ = ms;
        }
        return turn::Clock{std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms)), unix_};
    }

private:
    uv_loop_t* loop_;
    std::uint64_t unix_read_ms_ = 0;
    std::int64_t unix_ = 0;
};

}  // namespace turnbridge::io
