// SPDX-License-Identifier: Apache-2.0
#pragma once
// The durable accounting store (SQLite, WAL). The only code that includes <sqlite3.h> is
// src/accounting/sqlite_store*. Written by one control thread; readable by other processes
// (`turnbridge report`) while the server runs.
//
// Tables: `allocations` holds one row per AllocationRecord (its totals and the time of its last
// write, `last_checkpoint_ms`); `hourly` holds per (UTC hour, realm, account) the allocations
// started in that hour and the traffic *written* in that hour: each write adds the difference
// between the new totals and the stored ones to the hour containing `now_ms`. `calls` holds one
// row per gateway CallRecord (schema version 2), written when the call ends; call figures in
// usage rows are summed from it at query time.
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/accounting/calls.hpp"
#include "turnbridge/accounting/record.hpp"
#include "turnbridge/accounting/usage.hpp"

namespace turnbridge::accounting {

struct Prices {
    double per_gb = 0;
    std::string currency;
};

// Tuning for open(); the defaults suit the server.
struct StoreOptions {
    int busy_timeout_ms = 5000;   // how long a statement waits for another connection's lock
    std::uint32_t max_pages = 0;  // PRAGMA max_page_count; 0 = SQLite's limit. Tests use it to
                                  // make writes fail with SQLITE_FULL, as on a full disk.
    int schema_version = 0;       // migrate a writer's file only this far; 0 = this turnbridge's
                                  // schema. Tests build older databases with it to migrate them.
    // Fleet mode (issue 15): each write also queues what it added in the `outbox` table, in the
    // same transaction, up to this many rows (fleet.spool_max_rows); 0 = no outbox.
    std::uint64_t outbox_max_rows = 0;
};

class Store {
public:
    virtual ~Store() = default;
    // Creates or migrates the schema (versioned), enables WAL. With `writer`, allocations
    // left open by a previous run are closed as "crashed" at their last checkpoint.
    // Throws std::runtime_error naming the file on failure (startup only).
    // Without `writer` the file is opened read-only and must already hold the current schema.
    static std::unique_ptr<Store> open(const std::filesystem::path& file, bool writer);
    static std::unique_ptr<Store> open(const std::filesystem::path& file, bool writer, const StoreOptions& options);

    // One transaction: inserts new allocations, updates counters of known ones (totals, not
    // deltas), and adds the difference since the previous write to the hourly per-user and
    // per-realm rollups. Returns false (and logs) on a full or read-only disk: the caller keeps
    // the batch and retries; relaying never waits for this. A total below the stored one adds
    // nothing and the stored total is kept (logged), so the hourly deltas of an allocation always
    // sum to its stored totals. Also false on a store opened without `writer`.
    // Call records go in the same transaction; writing one again (a retried batch) replaces it.
    virtual bool write(const std::vector<AllocationRecord>& batch, const std::vector<CallRecord>& calls,
                       std::int64_t now_ms) = 0;
    bool write(const std::vector<AllocationRecord>& batch, std::int64_t now_ms) { return write(batch, {}, now_ms); }

    // The report: rows grouped as asked, cost from `prices` (realm name -> price; a realm not in
    // it costs 0 in currency ""). Throws std::runtime_error if SQLite fails.
    // - by allocation: rows of `allocations` whose start_ms is in [since, until), whole totals,
    //   relayed_minutes = (end_ms, or last_checkpoint_ms while open, - start_ms) / 60000.
    // - by user, realm, day or hour: sums of the `hourly` buckets whose start is in [since,
    //   until), so the window is in whole hours: [since rounded up to the hour, until rounded up).
    //   relayed_minutes: the time each matching allocation ran (start to end or last checkpoint)
    //   inside that window and, for day/hour, inside the row's day or hour. A bucket where an
    //   allocation ran without writing traffic still gets a row.
    // - user rows are per (realm, account); the realm alone (account "") has key "(realm)".
    // - cost: egress_bytes / 1e9 x price_per_gb of each realm in the row, summed; currency ""
    //   when the row's realms have different currencies.
    // - calls (all but by allocation): the calls whose start_ms is in the same whole-hour window,
    //   each in the row of its realm, account and the day or hour it started; a user with calls
    //   but no allocations still gets a row.
    virtual std::vector<UsageRow> usage(const UsageQuery& q, const std::map<std::string, Prices>& prices) = 0;
    // One allocation's stored row (totals as of its last write), if there is one.
    virtual std::optional<AllocationRecord> allocation(const std::string& id) = 0;
    // Call records whose start_ms is in [since, until) (exact, not whole hours), filtered by realm
    // and account, by start_ms then id. Throws std::runtime_error if SQLite fails.
    virtual std::vector<CallRecord> calls(const CallQuery& q) = 0;
    // Byte quotas: relayed payload bytes of each account of `realm` in the hourly buckets starting
    // at or after `since_ms` (use an hour boundary), counted both ways through the relay:
    // payload_bytes[1] + payload_bytes[3] (relay->peer plus relay->client). Headers and framing
    // are not counted. Empty (logged) if SQLite fails: a broken disk never blocks relaying.
    virtual std::map<std::string, std::uint64_t> relayed_bytes(const std::string& realm, std::int64_t since_ms) = 0;
    // Fleet mode: outbox rows not queued because the outbox was full (spool_max_rows).
    virtual std::uint64_t outbox_dropped() const { return 0; }
};

}  // namespace turnbridge::accounting
