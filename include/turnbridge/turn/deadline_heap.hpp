// SPDX-License-Identifier: Apache-2.0
#pragma once
// A binary min-heap of items keyed by their next deadline, one entry per item. Each item keeps
// its own position (`heap_slot`), so rescheduling and removal are O(log n) and on_timer only
// touches what is due instead of scanning every allocation. Sans-I/O: times come from the caller.
#include <cstdint>
#include <optional>
#include <vector>

#include "turnbridge/turn/clock.hpp"

namespace turnbridge::turn {

constexpr std::uint32_t kNotQueued = 0xFFFFFFFFu;

// T has a member `std::uint32_t heap_slot = kNotQueued;`. Items must outlive their entry.
template <class T> class DeadlineHeap {
public:
    // Inserts `item` due at `when`, or moves it there if already queued.
    void schedule(T& item, Time when) {
        if (item.heap_slot == kNotQueued) {
            item.heap_slot = static_cast<std::uint32_t>(heap_.size());
            heap_.push_back(Entry{when, &item});
            up(item.heap_slot);
            return;
        }
        const std::uint32_t i = item.heap_slot;
        const Time old = heap_[i].when;
        heap_[i].when = when;
        if (when < old) up(i);
        else down(i);
    }
    void remove(T& item) {
        const std::uint32_t i = item.heap_slot;
        if (i == kNotQueued) return;
        item.heap_slot = kNotQueued;
        const std::uint32_t last = static_cast<std::uint32_t>(heap_.size() - 1);
        if (i != last) {
            heap_[i] = heap_[last];
            heap_[i].item->heap_slot = i;
        }
        heap_.pop_back();
        if (i < heap_.size()) {
            up(i);
            down(heap_[i].item->heap_slot);
        }
    }
    // The earliest item due at or before `now`, taken out of the heap; nullptr when none is due.
    T* pop_due(Time now) {
        if (heap_.empty() || heap_.front().when > now) return nullptr;
        T* item = heap_.front().item;
        remove(*item);
        return item;
    }
    std::optional<Time> next() const {
        if (heap_.empty()) return std::nullopt;
        return heap_.front().when;
    }
    std::size_t size() const { return heap_.size(); }
    bool empty() const { return heap_.empty(); }

private:
    struct Entry {
        Time when;
        T* item;
    };
    void place(std::uint32_t i, const Entry& e) {
        heap_[i] = e;
        e.item->heap_slot = i;
    }
    void up(std::uint32_t i) {
        const Entry e = heap_[i];
        while (i > 0) {
            const std::uint32_t parent = (i - 1) / 2;
            if (!(e.when < heap_[parent].when)) break;
            place(i, heap_[parent]);
            i = parent;
        }
        place(i, e);
    }
    void down(std::uint32_t i) {
        const Entry e = heap_[i];
        const std::uint32_t n = static_cast<std::uint32_t>(heap_.size());
        for (;;) {
            std::uint32_t child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && heap_[child + 1].when < heap_[child].when) ++child;
            if (!(heap_[child].when < e.when)) break;
            place(i, heap_[child]);
            i = child;
        }
        place(i, e);
    }

    std::vector<Entry> heap_;
};

}  // namespace turnbridge::turn
