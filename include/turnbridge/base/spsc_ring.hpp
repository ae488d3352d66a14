// SPDX-License-Identifier: Apache-2.0
#pragma once
// A bounded single-producer/single-consumer ring for what crosses between two threads on the
// packet path (ARCHITECTURE.md: "through a preallocated single-producer/single-consumer ring").
// Every slot is allocated once, up front; push and pop copy into and out of slots in place, take
// no lock and allocate nothing. Exactly one thread pushes and exactly one thread pops. The head
// and tail live on their own cache lines so the two threads do not write the same line.
// Full: push fails and the caller drops (like a full socket buffer; memory never grows).
#include <atomic>
#include <cstddef>
#include <memory>
#include <new>

namespace turnbridge::base {

template <class T>
class SpscRing {
public:
    // `capacity` slots (rounded up to a power of two so an index is a mask, at least 2).
    explicit SpscRing(std::size_t capacity) : mask_(round_up(capacity) - 1), slots_(std::make_unique<T[]>(mask_ + 1)) {}
    SpscRing(const SpscRing&) = delete;
    SpscRing& operator=(const SpscRing&) = delete;

    std::size_t capacity() const { return mask_ + 1; }

    // Producer: `fill(T&)` writes the next slot in place; false (and `fill` not called) when full.
    template <class Fill>
    bool push(Fill&& fill) {
        const std::size_t tail = tail_.load(std::memory_order_relaxed);
        if (tail - head_cache_ > mask_) {
            head_cache_ = head_.load(std::memory_order_acquire);
            if (tail - head_cache_ > mask_) return false;
        }
        fill(slots_[tail & mask_]);
        tail_.store(tail + 1, std::memory_order_release);
        return true;
    }

    // Consumer: calls `use(const T&)` for each slot waiting (at most `max`), releasing them to the
    // producer once all are used; returns how many it used. Slots pushed meanwhile wait for the
    // next call.
    template <class Use>
    std::size_t pop_all(Use&& use, std::size_t max = static_cast<std::size_t>(-1)) {
        const std::size_t head = head_.load(std::memory_order_relaxed);
        const std::size_t tail = tail_.load(std::memory_order_acquire);
        std::size_t n = tail - head;
        if (n > max) n = max;
        for (std::size_t i = 0; i < n; ++i) use(static_cast<const T&>(slots_[(head + i) & mask_]));
        head_.store(head + n, std::memory_order_release);
        return n;
    }

    // Either thread: an estimate (exact when the other thread is idle).
    bool empty() const { return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire); }

private:
    static std::size_t round_up(std::size_t n) {
        std::size_t p = 2;
        while (p < n) p <<= 1;
        return p;
    }
    static constexpr std::size_t kLine = 64;   // std::hardware_destructive_interference_size, which g++ warns about

    const std::size_t mask_;
    std::unique_ptr<T[]> slots_;
    alignas(kLine) std::atomic<std::size_t> head_{0};   // written by the consumer
    alignas(kLine) std::atomic<std::size_t> tail_{0};   // written by the producer
    std::size_t head_cache_ = 0;                        // the producer's last look at head_
};

}  // namespace turnbridge::base
