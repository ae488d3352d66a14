// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fleet-wide byte quotas (issue 15): this node may relay a quota user's payload only within the
// leases PostgreSQL granted it. A LeaseSlot is the packet path's view of one user's leases on this
// node, shared by that user's allocations on every worker: `limit` is written by the lease thread
// (app/fleet_leases), `used` counted by the workers. take() is one compare-and-swap, never a lock,
// and never lets `used` pass `limit`, so a node relays no byte beyond what it holds.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "turnbridge/config/config.hpp"

namespace turnbridge::turn {

struct LeaseSlot {
    std::atomic<std::uint64_t> used{0};    // payload bytes relayed here (relay->peer + relay->client)
    std::atomic<std::uint64_t> limit{0};   // relaying stops when used would pass it
    std::atomic<std::uint32_t> allocations{0};  // live allocations holding this slot
    std::atomic<std::uint64_t> refused{0};      // bytes not relayed for want of a lease

    // True, and `bytes` counted, when they fit under the limit; otherwise nothing is counted.
    bool take(std::size_t bytes) {
        std::uint64_t cur = used.load(std::memory_order_relaxed);
        do {
            if (cur + bytes > limit.load(std::memory_order_acquire)) {
                refused.fetch_add(bytes, std::memory_order_relaxed);
                return false;
            }
        } while (!used.compare_exchange_weak(cur, cur + bytes, std::memory_order_relaxed));
        return true;
    }
};

// Hands allocations of quota users their slot (Allocate only, so it may lock). Thread-safe.
class LeaseGate {
public:
    virtual ~LeaseGate() = default;
    // The slot of `account` in `realm` (whose quota_bytes is not 0), its allocation count raised;
    // null when byte quotas are not fleet-wide (then nothing is checked per packet).
    virtual std::shared_ptr<LeaseSlot> attach(const config::Realm& realm, const std::string& account) = 0;
};

// An allocation holding `slot` ended: the lease thread returns what the user's allocations here
// no longer need once none is left.
inline void detach(LeaseSlot& slot) { slot.allocations.fetch_sub(1, std::memory_order_acq_rel); }

}  // namespace turnbridge::turn
