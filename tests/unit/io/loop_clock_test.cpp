// SPDX-License-Identifier: Apache-2.0
// io's LoopClock: uv_now() as the monotonic time (the same clock as steady_clock), the wall clock
// read at most once a second.
#include <doctest/doctest.h>

#include <chrono>
#include <uv.h>

#include "turnbridge/io/loop_clock.hpp"

using namespace turnbridge;
using namespace std::chrono;

TEST_CASE("LoopClock's monotonic time is uv_now() and compares with steady_clock (issue 12)") {
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    io::LoopClock clock(&loop);
    uv_update_time(&loop);
    const auto a = clock.now();
    CHECK(duration_cast<milliseconds>(a.mono.time_since_epoch()).count() == static_cast<long long>(uv_now(&loop)));
    // libuv may read CLOCK_MONOTONIC_COARSE (a few ms behind): the two agree within 50 ms.
    const auto skew = steady_clock::now() - a.mono;
    CHECK(skew > -milliseconds(50));
    CHECK(skew < milliseconds(50));
    const auto wall = duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
    CHECK(a.unix_seconds >= wall - 1);
    CHECK(a.unix_seconds <= wall);
    // Without uv_update_time the loop's time stands still: a datagram batch shares one reading.
    CHECK(clock.now().mono == a.mono);
    uv_loop_close(&loop);
}
