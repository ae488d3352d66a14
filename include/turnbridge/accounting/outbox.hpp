// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fleet mode (issue 15): the shipper's view of the outbox the store fills in each write (see
// StoreOptions::outbox_max_rows). Its own SQLite connection, for the shipper's thread: rows are
// read oldest first and deleted only once PostgreSQL has committed them.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "turnbridge/accounting/record.hpp"

namespace turnbridge::accounting {

// One write's effect on one allocation: `record.traffic` holds the increase (deltas), not totals.
struct OutboxRow {
    std::int64_t seq = 0;          // never reused in the file
    AllocationRecord record;
    std::int64_t written_ms = 0;   // when the local write happened: the hour its traffic counts in
    bool started = false;          // this write created the allocation
};

// A call waiting to be shipped (schema 5's call_outbox joined with its row in `calls`).
struct OutboxCall {
    std::int64_t seq = 0;
    CallRecord record;
};

class Outbox {
public:
    virtual ~Outbox() = default;
    // Opens the server's database (which must exist, with schema 5 or later). Throws
    // std::runtime_error naming the file.
    static std::unique_ptr<Outbox> open(const std::filesystem::path& file);
    // Up to `limit` of the oldest rows. Throws std::runtime_error when SQLite fails.
    virtual std::vector<OutboxRow> read(std::size_t limit) = 0;
    // Deletes every row up to and including `seq`. Throws std::runtime_error when SQLite fails.
    virtual void erase_through(std::int64_t seq) = 0;
    // Rows waiting (rows are deleted oldest first, so this is the span of their numbers).
    virtual std::uint64_t rows() = 0;
    // The same for calls (issue 15): up to `limit` of the oldest, and their deletion once shipped.
    virtual std::vector<OutboxCall> read_calls(std::size_t limit) = 0;
    virtual void erase_calls_through(std::int64_t seq) = 0;
};

}  // namespace turnbridge::accounting
