// SPDX-License-Identifier: Apache-2.0
#pragma once
// A Store in memory holding given rows, so that the fleet ledger's reports run the very queries
// of the SQLite store (same columns, same windows). Private to src/accounting.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "turnbridge/accounting/store.hpp"

namespace turnbridge::accounting::detail {

struct StoredAllocation {
    AllocationRecord record;            // totals
    std::int64_t last_checkpoint_ms = 0;
};

struct HourlyRow {
    std::int64_t hour_start_ms = 0;
    std::string realm, account;
    std::uint64_t allocations_started = 0;
    Traffic traffic;
};

std::unique_ptr<Store> memory_store(const std::vector<StoredAllocation>& allocations,
                                    const std::vector<HourlyRow>& hourly, const std::vector<CallRecord>& calls);

}  // namespace turnbridge::accounting::detail
