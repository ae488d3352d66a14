// SPDX-License-Identifier: Apache-2.0
#pragma once
// The SQLite store's insides, shared by sqlite_store.cpp (schema, migrations, writes) and
// sqlite_store_queries.cpp (usage, calls, allocation, quota reads). Private to src/accounting:
// with those two files, the only code that includes <sqlite3.h> (STYLE.md).
#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "calendar.hpp"
#include "counters.hpp"
#include "memory_store.hpp"
#include "turnbridge/accounting/store.hpp"

namespace turnbridge::accounting::sqlite {

using detail::counter;
using detail::counter_name;
using detail::kCounters;
using detail::kDayMs;
using detail::kHourMs;
using detail::kMinuteMs;

inline constexpr std::int64_t kMinMs = std::numeric_limits<std::int64_t>::min();
inline constexpr std::int64_t kMaxMs = std::numeric_limits<std::int64_t>::max();

// A failed SQLite call with SQLite's message; turned into the Store's own answer at its edges.
struct SqliteError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The 12 counter columns, each through `pattern` ("{}" is the name), joined with ", ".
std::string counter_columns(std::string_view pattern);
// The allocation columns in AllocationRecord order; reads and writes use this order.
const std::string& allocation_columns();
// The call columns in CallRecord order; reads and writes use this order.
inline constexpr const char* kCallColumns =
    "id, realm, account, direction, remote, start_ms, answer_ms, end_ms, status, codecs, end_reason, relayed, "
    "browser_in_packets, browser_in_bytes, browser_out_packets, browser_out_bytes, "
    "trunk_in_packets, trunk_in_bytes, trunk_out_packets, trunk_out_bytes";

// The call quality columns (schema version 3), in CallRecord::quality order, four per slot.
const std::string& call_quality_columns();

// A prepared statement in use: bind, step, read; reset for the next use when it goes.
class Query {
public:
    Query(sqlite3* db, sqlite3_stmt* stmt) : db_(db), s_(stmt) {}
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;
    ~Query() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }

    Query& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(s_, i, v)); }
    Query& bind(int i, std::uint64_t v) { return bind(i, static_cast<std::int64_t>(v)); }
    Query& bind(int i, double v) { return check(sqlite3_bind_double(s_, i, v)); }
    Query& bind_null(int i) { return check(sqlite3_bind_null(s_, i)); }
    Query& bind(int i, const std::string& v) {
        return check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
    Query& bind(int i, const std::optional<std::string>& v) {
        return v ? bind(i, *v) : check(sqlite3_bind_null(s_, i));
    }
    // True while there is a row to read.
    bool step() {
        const int rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        throw SqliteError(sqlite3_errmsg(db_));
    }
    std::int64_t int64(int col) const { return sqlite3_column_int64(s_, col); }
    double real(int col) const { return sqlite3_column_double(s_, col); }
    bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
    std::uint64_t uint64(int col) const { return static_cast<std::uint64_t>(sqlite3_column_int64(s_, col)); }
    std::string text(int col) const {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
    }
    void read_traffic(int first_col, Traffic& t) const {
        for (std::size_t i = 0; i < kCounters; ++i) counter(t, i) = uint64(first_col + static_cast<int>(i));
    }

private:
    Query& check(int rc) {
        if (rc != SQLITE_OK) throw SqliteError(sqlite3_errmsg(db_));
        return *this;
    }
    sqlite3* db_;
    sqlite3_stmt* s_;
};

// One call from a row that starts with kCallColumns at `first` (and, if `quality`, the quality
// columns after them, then, if `trunk`, the trunk column): for the store's listing and the
// fleet shipper's call outbox.
CallRecord read_call(const Query& s, int first, bool quality, bool trunk);

// A usage row in the making, keyed by (bucket start, realm, account) with what is not grouped
// left empty.
struct RowAcc {
    UsageRow row;
    std::int64_t relayed_ms = 0;
    std::set<std::string> realms;
};
using RowKey = std::tuple<std::int64_t, std::string, std::string>;
using RowAccs = std::map<RowKey, RowAcc>;

class SqliteStore final : public Store {
public:
    SqliteStore(std::string file, bool writer) : file_(std::move(file)), writer_(writer) {}
    ~SqliteStore() override {
        for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
        sqlite3_close(db_);
        if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
    }

    void open(const StoreOptions& options);
    // A private in-memory database with the current schema and the given rows (memory_store.hpp).
    void open_memory(const std::vector<detail::StoredAllocation>& allocations,
                     const std::vector<detail::HourlyRow>& hourly, const std::vector<CallRecord>& calls);

    using Store::write;
    bool write(const std::vector<AllocationRecord>& batch, const std::vector<CallRecord>& calls,
               std::int64_t now_ms) override;
    std::vector<UsageRow> usage(const UsageQuery& q, const std::map<std::string, Prices>& prices) override;
    std::optional<AllocationRecord> allocation(const std::string& id) override;
    std::vector<CallRecord> calls(const CallQuery& q) override;
    std::map<std::string, std::uint64_t> relayed_bytes(const std::string& realm, std::int64_t since_ms) override;
    std::uint64_t outbox_dropped() const override { return outbox_dropped_; }

private:
    // Ends a transaction that an exception left open.
    class Transaction {
    public:
        Transaction(SqliteStore& s, const char* begin) : s_(s) { s_.exec(begin); }
        ~Transaction() {
            if (!sqlite3_get_autocommit(s_.db_)) sqlite3_exec(s_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
        }
        void commit() { s_.exec("COMMIT"); }

    private:
        SqliteStore& s_;
    };

    void exec(const std::string& sql);
    Query query(const std::string& sql);
    // The same for a statement whose text lives as long as the program (a function-local
    // static): looked up by address, not by hashing its few hundred characters per record.
    Query hot_query(const std::string& sql);
    int user_version();
    void migrate(int to);
    void close_crashed();
    void lock_writer();
    // One batch's effect on the hourly rollup, summed per (hour, realm, account) so that many
    // allocations of one user cost one upsert rather than one each.
    struct HourlyKey {
        std::int64_t hour;
        std::string realm, account;
        bool operator<(const HourlyKey& o) const { return std::tie(hour, realm, account) < std::tie(o.hour, o.realm, o.account); }
    };
    struct HourlyDelta {
        std::int64_t started = 0;
        Traffic traffic;
    };
    using HourlyBatch = std::map<HourlyKey, HourlyDelta>;
    // Totals stored for allocations still open, so a checkpoint needs no read of its row.
    // Changed only once a batch commits (`pending`), so a failed write leaves it true.
    using StoredTotals = std::unordered_map<std::string, Traffic>;

    void write_one(const AllocationRecord& r, std::int64_t now_ms, HourlyBatch& hourly, StoredTotals& pending);
    void add_hourly(const HourlyKey& key, const HourlyDelta& d);
    void add_outbox(const AllocationRecord& r, std::int64_t now_ms, bool started, const Traffic& delta);
    std::uint64_t outbox_rows();
    void add_call_outbox(const CallRecord& c);
    void write_call(const CallRecord& c);
    std::vector<UsageRow> usage_by_allocation(const UsageQuery& q, const std::map<std::string, Prices>& prices);
    std::vector<UsageRow> usage_by_buckets(const UsageQuery& q, const std::map<std::string, Prices>& prices);
    void add_calls(const UsageQuery& q, std::int64_t from, std::int64_t to, RowAccs& acc);

    std::string file_;
    bool writer_;
    sqlite3* db_ = nullptr;
    std::unordered_map<std::string, sqlite3_stmt*> statements_;  // prepared once per Store
    std::unordered_map<const std::string*, sqlite3_stmt*> hot_;    // the same, by address
    StoredTotals stored_;
    bool failing_ = false;  // the last write failed (logged once per run of failures)
    bool has_calls_ = true; // false for a reader of a schema-1 file: it has no calls yet
    bool has_quality_ = true; // false for a reader of a schema-2 file: its calls have no quality columns
    bool has_trunk_ = true;   // false for a file before schema 6: its calls have no trunk column
    bool has_call_outbox_ = false;  // a writer at schema 5 or later: calls are queued for the fleet
    int lock_fd_ = -1;      // FILE.lock, flock()ed while this server writes FILE
    std::uint64_t outbox_max_ = 0;      // fleet mode: the outbox's bound; 0 = no outbox
    std::uint64_t outbox_dropped_ = 0;  // rows not queued because the outbox was full
};

}  // namespace turnbridge::accounting::sqlite
