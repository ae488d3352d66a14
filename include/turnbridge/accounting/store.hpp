// SPDX-License-Identifier: Apache-2.0
#pragma once
// The durable accounting store (SQLite, WAL). The only code that includes <sqlite3.h> is
// src/accounting/sqlite_store.cpp. Written by one control thread; readable by other processes
// (`turnbridge report`) while the server runs.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "turnbridge/accounting/record.hpp"
#include "turnbridge/accounting/usage.hpp"

namespace turnbridge::accounting {

struct Prices {
    double per_gb = 0;
    std::string currency;
};

class Store {
public:
    virtual ~Store() = default;
    // Creates or migrates the schema (versioned), enables WAL. With `writer`, allocations
    // left open by a previous run are closed as "crashed" at their last checkpoint.
    // Throws std::runtime_error naming the file on failure (startup only).
    static std::unique_ptr<Store> open(const std::filesystem::path& file, bool writer);

    // One transaction: inserts new allocations, updates counters of known ones (totals, not
    // deltas), and adds the difference since the previous write to the hourly per-user and
    // per-realm rollups. Returns false (and logs) on a full or read-only disk: the caller keeps
    // the batch and retries; relaying never waits for this.
    virtual bool write(const std::vector<AllocationRecord>& batch, std::int64_t now_ms) = 0;

    // The report: rows grouped as asked, cost from `prices` (realm name -> price).
    virtual std::vector<UsageRow> usage(const UsageQuery& q, const std::map<std::string, Prices>& prices) = 0;
    // Relayed payload+wire totals of `account` in `realm` since `since_ms` (byte quotas).
    virtual std::uint64_t relayed_bytes(const std::string& realm, const std::string& account, std::int64_t since_ms) = 0;
};

}  // namespace turnbridge::accounting
