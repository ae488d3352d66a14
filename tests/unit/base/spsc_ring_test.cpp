// SPDX-License-Identifier: Apache-2.0
// base::SpscRing: bounded, FIFO, lock-free between one producer and one consumer thread.
#include <doctest/doctest.h>

#include <cstdint>
#include <thread>
#include <vector>

#include "turnbridge/base/spsc_ring.hpp"

using turnbridge::base::SpscRing;

TEST_SUITE_BEGIN("base");

TEST_CASE("spsc ring: capacity rounds up to a power of two; a full ring refuses and keeps what it holds") {
    SpscRing<int> ring(5);
    CHECK(ring.capacity() == 8);
    for (int i = 0; i < 8; ++i) CHECK(ring.push([&](int& slot) { slot = i; }));
    bool called = false;
    CHECK_FALSE(ring.push([&](int&) { called = true; }));
    CHECK_FALSE(called);
    std::vector<int> got;
    CHECK(ring.pop_all([&](const int& v) { got.push_back(v); }) == 8);
    CHECK(got == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
    CHECK(ring.empty());
}

TEST_CASE("spsc ring: FIFO across the wrap; pop_all takes at most `max` and leaves the rest") {
    SpscRing<int> ring(4);
    std::vector<int> got;
    int next = 0;
    for (int round = 0; round < 10; ++round) {
        while (ring.push([&](int& slot) { slot = next; })) ++next;
        CHECK(ring.pop_all([&](const int& v) { got.push_back(v); }, 3) == 3);
    }
    ring.pop_all([&](const int& v) { got.push_back(v); });
    REQUIRE(got.size() == static_cast<std::size_t>(next));
    for (int i = 0; i < next; ++i) CHECK(got[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("spsc ring: one producer and one consumer thread; every item arrives once, in order") {
    struct Item {
        std::uint64_t seq;
        std::uint64_t check;
    };
    SpscRing<Item> ring(64);
    constexpr std::uint64_t kItems = 200'000;
    std::thread producer([&] {
        for (std::uint64_t i = 0; i < kItems;) {
            if (ring.push([&](Item& it) { it = {i, ~i}; })) ++i;
            else std::this_thread::yield();
        }
    });
    std::uint64_t expected = 0;
    bool ordered = true;
    while (expected < kItems) {
        ring.pop_all([&](const Item& it) {
            ordered = ordered && it.seq == expected && it.check == ~expected;
            ++expected;
        });
    }
    producer.join();
    CHECK(ordered);
    CHECK(expected == kItems);
    CHECK(ring.empty());
}

TEST_SUITE_END();
