// SPDX-License-Identifier: Apache-2.0
#pragma once
// A worker's accounting: hears allocations come and go (turn::AllocationObserver) and, every
// flush interval, snapshots the counters that changed into records for the AccountingHub.
// Runs on the worker's thread, off the packet path: relaying only bumps counters in the core.
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "turnbridge/accounting/record.hpp"
#include "turnbridge/turn/server.hpp"

namespace turnbridge::server {

class WorkerAccounting : public turn::AllocationObserver {
public:
    // `ended` is called when an allocation ends, so its final record can be posted at once
    // rather than at the next flush (a crash must not lose closed allocations).
    // `node` is the fleet node id ("" without [fleet]): it makes record ids fleet-unique.
    WorkerAccounting(std::string node, std::int64_t instance_ms, std::function<void()> ended)
        : node_(std::move(node)), instance_ms_(instance_ms), ended_(std::move(ended)) {}

    void on_created(const turn::Allocation& a) override;
    void on_closed(const turn::Allocation& a, turn::CloseReason why) override;

    // Records for allocations whose counters moved since the last call, then everything queued
    // by on_created/on_closed, in order. Clears the queue.
    std::vector<accounting::AllocationRecord> take(const turn::Server& server);
    // Only the creation and end records queued since the last take: what an allocation's end
    // posts at once, without walking every live allocation (10,000 idle ones made each end
    // cost twice as much CPU).
    std::vector<accounting::AllocationRecord> take_queued();

    accounting::AllocationRecord record(const turn::Allocation& a) const;

private:
    std::string node_;
    std::int64_t instance_ms_;
    std::function<void()> ended_;
    std::vector<accounting::AllocationRecord> queued_;
    std::unordered_map<turn::AllocationId, std::uint64_t> last_packets_;  // sum over directions
};

}  // namespace turnbridge::server
