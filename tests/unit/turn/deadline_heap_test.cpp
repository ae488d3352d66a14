// SPDX-License-Identifier: Apache-2.0
// DeadlineHeap: the expiry queue behind turn::Server::on_timer.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "turnbridge/turn/deadline_heap.hpp"

namespace turn = turnbridge::turn;

namespace {

struct Item {
    int id = 0;
    turn::Time when{};
    std::uint32_t heap_slot = turn::kNotQueued;
};

turn::Time at(int s) { return turn::Time{} + std::chrono::seconds(s); }

}  // namespace

TEST_CASE("DeadlineHeap pops only what is due, earliest first") {
    std::vector<Item> items(5);
    turn::DeadlineHeap<Item> heap;
    const int whens[] = {50, 10, 40, 20, 30};
    for (int i = 0; i < 5; ++i) {
        items[i].id = i;
        heap.schedule(items[i], at(whens[i]));
    }
    CHECK(heap.size() == 5);
    CHECK(heap.next() == at(10));
    CHECK(heap.pop_due(at(9)) == nullptr);
    Item* a = heap.pop_due(at(25));
    REQUIRE(a != nullptr);
    CHECK(a->id == 1);
    CHECK(a->heap_slot == turn::kNotQueued);
    Item* b = heap.pop_due(at(25));
    REQUIRE(b != nullptr);
    CHECK(b->id == 3);
    CHECK(heap.pop_due(at(25)) == nullptr);
    CHECK(heap.size() == 3);
}

TEST_CASE("DeadlineHeap reschedules an item in place, later or earlier, and removes from the middle") {
    std::vector<Item> items(4);
    turn::DeadlineHeap<Item> heap;
    for (int i = 0; i < 4; ++i) {
        items[i].id = i;
        heap.schedule(items[i], at(10 * (i + 1)));
    }
    heap.schedule(items[0], at(100));  // later: a refresh
    CHECK(heap.size() == 4);
    CHECK(heap.next() == at(20));
    heap.schedule(items[3], at(5));    // earlier: a shortened lifetime
    CHECK(heap.next() == at(5));
    heap.remove(items[1]);
    heap.remove(items[1]);  // twice is harmless
    CHECK(heap.size() == 3);
    std::vector<int> order;
    while (Item* it = heap.pop_due(at(1000))) order.push_back(it->id);
    CHECK(order == std::vector<int>{3, 2, 0});
    CHECK(heap.empty());
}

TEST_CASE("DeadlineHeap agrees with a sorted list under random schedule/remove/pop") {
    std::mt19937 rng(12345);
    std::vector<Item> items(200);
    turn::DeadlineHeap<Item> heap;
    std::vector<bool> queued(items.size(), false);
    for (std::size_t i = 0; i < items.size(); ++i) items[i].id = static_cast<int>(i);
    for (int step = 0; step < 20000; ++step) {
        const std::size_t i = rng() % items.size();
        switch (rng() % 3) {
            case 0:
            case 1:
                items[i].when = at(static_cast<int>(rng() % 1000));
                heap.schedule(items[i], items[i].when);
                queued[i] = true;
                break;
            case 2:
                heap.remove(items[i]);
                queued[i] = false;
                break;
        }
        if (step % 97 == 0) {
            const turn::Time now = at(static_cast<int>(rng() % 1000));
            std::vector<int> expect;
            for (std::size_t k = 0; k < items.size(); ++k)
                if (queued[k] && items[k].when <= now) expect.push_back(static_cast<int>(k));
            std::vector<int> got;
            turn::Time last{};
            while (Item* it = heap.pop_due(now)) {
                CHECK(it->when >= last);  // earliest first
                last = it->when;
                got.push_back(it->id);
                queued[static_cast<std::size_t>(it->id)] = false;
            }
            std::sort(got.begin(), got.end());
            REQUIRE(got == expect);
        }
        std::size_t n = 0;
        for (bool q : queued) n += q;
        REQUIRE(heap.size() == n);
    }
}
