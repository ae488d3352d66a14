// SPDX-License-Identifier: Apache-2.0
// The accounting store on SQLite in WAL mode: a versioned schema migrated on open, and batched
// writes that keep hourly rollups (the reads are in sqlite_store_queries.cpp). The tables are
// described in store.hpp.
#include "sqlite_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "turnbridge/base/log.hpp"

namespace turnbridge::accounting::sqlite {

// The 12 counter columns, each through `pattern` ("{}" is the name), joined with ", ".
std::string counter_columns(std::string_view pattern) {
    std::string out;
    for (std::size_t i = 0; i < kCounters; ++i)
        out += (i ? ", " : "") + fmt::format(fmt::runtime(pattern), counter_name(i));
    return out;
}

// The allocation columns in AllocationRecord order; reads and writes use this order.
const std::string& allocation_columns() {
    static const std::string s = "id, account, username, realm, client, transport, relay, start_ms, end_ms, peers, "
                                 "end_reason, " + counter_columns("{}") + ", last_checkpoint_ms";
    return s;
}

const std::string& call_quality_columns() {
    static const std::string s = [] {
        std::string out;
        for (const char* p : kCallQualityPrefixes)
            out += fmt::format("{0}{1}_lost, {1}_loss_pct, {1}_jitter_ms, {1}_mos", out.empty() ? "" : ", ", p);
        return out;
    }();
    return s;
}

namespace {

// ?first, ?first+1, ... for the 12 counters.
std::string counter_params(int first) {
    std::string out;
    for (std::size_t i = 0; i < kCounters; ++i) out += fmt::format("{}?{}", i ? ", " : "", first + static_cast<int>(i));
    return out;
}

// What an allocation record says besides its id and counters, in AllocationRecord order: the
// columns of `allocations` (schema 1) and of `outbox` (schema 4).
constexpr const char* kRecordColumns = R"(    account TEXT NOT NULL,
    username TEXT NOT NULL,
    realm TEXT NOT NULL,
    client TEXT NOT NULL,
    transport TEXT NOT NULL,
    relay TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    peers INTEGER NOT NULL,
    end_reason TEXT NOT NULL,
)";

// Migration i takes the schema from version i to i + 1 (PRAGMA user_version). Append new
// versions; never edit a released one.
std::string schema_v1() {
    return fmt::format(R"(
CREATE TABLE allocations (
    id TEXT PRIMARY KEY NOT NULL,
{}    {},
    last_checkpoint_ms INTEGER NOT NULL);
CREATE INDEX allocations_by_start ON allocations (start_ms);
CREATE INDEX allocations_open ON allocations (end_ms) WHERE end_ms = 0;
CREATE TABLE hourly (
    hour_start_ms INTEGER NOT NULL,
    realm TEXT NOT NULL,
    account TEXT NOT NULL,
    allocations_started INTEGER NOT NULL DEFAULT 0,
    {},
    PRIMARY KEY (hour_start_ms, realm, account)) WITHOUT ROWID;
CREATE INDEX hourly_by_account ON hourly (realm, account, hour_start_ms);
)",
                       kRecordColumns, counter_columns("{} INTEGER NOT NULL DEFAULT 0"),
                       counter_columns("{} INTEGER NOT NULL DEFAULT 0"));
}

// Gateway calls (issue 4). IF NOT EXISTS: a database that somehow has the table already keeps it
// and its rows; the indexes serve the per-user, per-realm and time-window queries.
constexpr const char* kSchemaV2 = R"(
CREATE TABLE IF NOT EXISTS calls (
    id TEXT PRIMARY KEY NOT NULL,
    realm TEXT NOT NULL,
    account TEXT NOT NULL,
    direction TEXT NOT NULL,
    remote TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    answer_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    status INTEGER NOT NULL,
    codecs TEXT NOT NULL,
    end_reason TEXT NOT NULL,
    relayed INTEGER NOT NULL,
    browser_in_packets INTEGER NOT NULL,
    browser_in_bytes INTEGER NOT NULL,
    browser_out_packets INTEGER NOT NULL,
    browser_out_bytes INTEGER NOT NULL,
    trunk_in_packets INTEGER NOT NULL,
    trunk_in_bytes INTEGER NOT NULL,
    trunk_out_packets INTEGER NOT NULL,
    trunk_out_bytes INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS calls_by_start ON calls (start_ms);
CREATE INDEX IF NOT EXISTS calls_by_account ON calls (realm, account, start_ms);
)";

// Call quality (issue 14): per leg and direction, NULL when not measured (and in calls recorded
// before this version). ADD COLUMN keeps the rows; old readers are refused by user_version.
std::string schema_v3() {
    std::string sql;
    for (const char* p : kCallQualityPrefixes)
        sql += fmt::format("ALTER TABLE calls ADD COLUMN {0}_lost INTEGER;\nALTER TABLE calls ADD COLUMN {0}_loss_pct REAL;\n"
                           "ALTER TABLE calls ADD COLUMN {0}_jitter_ms REAL;\nALTER TABLE calls ADD COLUMN {0}_mos REAL;\n", p);
    return sql;
}

// Fleet mode (issue 15): the outbox of what each write added, shipped to PostgreSQL and deleted
// once it committed there. One row per allocation per write: its identity, whether this write
// created it (`started`), its end if it ended, and the counters' increase (deltas, not totals).
// AUTOINCREMENT: a sequence number is never reused, so (allocation, seq) keys a row forever.
std::string schema_v4() {
    return fmt::format(R"(
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    allocation TEXT NOT NULL,
{}    written_ms INTEGER NOT NULL,
    started INTEGER NOT NULL,
    {});
)",
                       kRecordColumns, counter_columns("{} INTEGER NOT NULL"));
}

// Fleet mode (issue 15): the calls not yet shipped to PostgreSQL, by id, in the order they
// were written; the shipper joins them with `calls` and deletes them once PostgreSQL committed.
constexpr const char* kSchemaV5 = R"(
CREATE TABLE IF NOT EXISTS call_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call TEXT NOT NULL);
)";

// The trunk of each gateway call (issue 14: a realm has several): its name, NULL for a call with
// no trunk leg and for the calls recorded before this version.
constexpr const char* kSchemaV6 = R"(
ALTER TABLE calls ADD COLUMN trunk TEXT;
)";

const std::vector<std::string>& migrations() {
    static const std::vector<std::string> all = {schema_v1(), kSchemaV2, schema_v3(), schema_v4(), kSchemaV5,
                                                 kSchemaV6};
    return all;
}

int schema_version() { return static_cast<int>(migrations().size()); }

// The schema version that added the calls table, and the oldest one a reader can read.
constexpr int kCallsVersion = 2;
constexpr int kQualityVersion = 3;
constexpr int kCallOutboxVersion = 5;
constexpr int kTrunkVersion = 6;
constexpr int kOldestReadable = 1;

const std::string& upsert_allocation_sql() {
    static const std::string s = fmt::format(
        "INSERT INTO allocations ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, {}, ?24) "
        "ON CONFLICT (id) DO UPDATE SET account = excluded.account, username = excluded.username, "
        "realm = excluded.realm, client = excluded.client, transport = excluded.transport, relay = excluded.relay, "
        "start_ms = excluded.start_ms, end_ms = excluded.end_ms, peers = excluded.peers, "
        "end_reason = excluded.end_reason, {}, last_checkpoint_ms = excluded.last_checkpoint_ms",
        allocation_columns(), counter_params(12), counter_columns("{0} = excluded.{0}"));
    return s;
}

// A checkpoint (`ending` false) or the end of an allocation already stored: only what changes is
// written. A checkpoint leaves end_ms alone, so SQLite keeps the open-allocations index as it is.
const std::string& update_allocation_sql(bool ending) {
    auto make = [](bool end) {
        std::string set;
        for (std::size_t i = 0; i < kCounters; ++i)
            set += fmt::format(", {} = ?{}", counter_name(i), 5 + static_cast<int>(i));
        return fmt::format("UPDATE allocations SET peers = ?3{}{}, last_checkpoint_ms = ?{} WHERE id = ?1",
                           end ? ", end_ms = ?2, end_reason = ?4" : "", set, 5 + static_cast<int>(kCounters));
    };
    static const std::string checkpoint = make(false), end = make(true);
    return ending ? end : checkpoint;
}

constexpr int kCallColumnCount = 20;  // in kCallColumns
constexpr int kQualityColumnCount = 16;  // call_quality_columns()

const std::string& upsert_hourly_sql() {
    static const std::string s = fmt::format(
        "INSERT INTO hourly (hour_start_ms, realm, account, allocations_started, {}) VALUES (?1, ?2, ?3, ?4, {}) "
        "ON CONFLICT (hour_start_ms, realm, account) DO UPDATE SET "
        "allocations_started = allocations_started + excluded.allocations_started, {}",
        counter_columns("{}"), counter_params(5), counter_columns("{0} = {0} + excluded.{0}"));
    return s;
}

}  // namespace

void SqliteStore::exec(const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) == SQLITE_OK) return;
    const std::string why = message ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    throw SqliteError(why);
}

Query SqliteStore::query(const std::string& sql) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                               nullptr) != SQLITE_OK)
            throw SqliteError(sqlite3_errmsg(db_));
        it = statements_.emplace(sql, stmt).first;
    }
    return Query(db_, it->second);
}

Query SqliteStore::hot_query(const std::string& sql) {
    auto it = hot_.find(&sql);
    if (it == hot_.end()) {
        (void)query(sql);  // prepares it
        it = hot_.emplace(&sql, statements_.at(sql)).first;
    }
    return Query(db_, it->second);
}

int SqliteStore::user_version() {
    auto q = query("PRAGMA user_version");
    return q.step() ? static_cast<int>(q.int64(0)) : 0;
}

// One writing server per database: a second one would close the first one's live
// allocations as crashed and double its writes. SQLite's own locks only serialise
// transactions, so the writer holds flock() on FILE.lock (with its pid, for the message)
// for as long as it runs; the kernel drops it when the process dies, even by kill -9.
void SqliteStore::lock_writer() {
    const std::string path = file_ + ".lock";
    lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) throw SqliteError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = {};
        const auto n = ::pread(lock_fd_, pid, sizeof pid - 1, 0);
        std::string holder = n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : std::string("?");
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
        throw SqliteError(fmt::format("in use by another turnbridge (pid {}, lock {}); one server writes a database",
                                      holder, path));
    }
    const std::string me = fmt::format("{}\n", ::getpid());
    if (::ftruncate(lock_fd_, 0) == 0) (void)!::pwrite(lock_fd_, me.data(), me.size(), 0);
}

void SqliteStore::open(const StoreOptions& options) {
    outbox_max_ = options.outbox_max_rows;
    const int flags = writer_ ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    const int rc = sqlite3_open_v2(file_.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) throw SqliteError(db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    if (writer_) lock_writer();  // before anything is read, migrated or closed as crashed
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, options.busy_timeout_ms);
    if (!writer_) {
        // A reader cannot migrate: the server does that when it starts.
        const int v = user_version();
        if (v == 0) throw SqliteError("not a turnbridge accounting database (no schema)");
        // Version 1 lacks only the calls table: readable (no calls) until the server, still the
        // previous release or not yet restarted, migrates it.
        if (v < kOldestReadable)
            throw SqliteError(fmt::format("schema version {} is older than this turnbridge's ({}); start the "
                                          "server once to migrate it", v, schema_version()));
        if (v > schema_version())
            throw SqliteError(fmt::format("schema version {} is newer than this turnbridge's ({})", v, schema_version()));
        has_calls_ = v >= kCallsVersion;
        has_quality_ = v >= kQualityVersion;
        has_trunk_ = v >= kTrunkVersion;
        return;
    }
    // WAL lets `turnbridge report` read while the server writes; NORMAL syncs at checkpoints,
    // so a power loss may cost the last transactions but never corrupts the file.
    {
        auto mode = query("PRAGMA journal_mode = WAL");
        const std::string now = mode.step() ? mode.text(0) : std::string();
        if (now != "wal") throw SqliteError(fmt::format("cannot switch to WAL (journal mode stays \"{}\")", now));
    }
    exec("PRAGMA synchronous = NORMAL");
    {
        Transaction tx(*this, "BEGIN IMMEDIATE");
        const int to = options.schema_version > 0 ? std::min(options.schema_version, schema_version()) : schema_version();
        migrate(to);
        has_calls_ = to >= kCallsVersion;
        has_quality_ = to >= kQualityVersion;
        has_call_outbox_ = to >= kCallOutboxVersion;
        has_trunk_ = to >= kTrunkVersion;
        close_crashed();
        tx.commit();
    }
    if (options.max_pages != 0) exec(fmt::format("PRAGMA max_page_count = {}", options.max_pages));
}

void SqliteStore::open_memory(const std::vector<detail::StoredAllocation>& allocations,
                              const std::vector<detail::HourlyRow>& hourly, const std::vector<CallRecord>& calls) {
    if (sqlite3_open_v2(":memory:", &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
        throw SqliteError(db_ ? sqlite3_errmsg(db_) : "cannot open an in-memory database");
    Transaction tx(*this, "BEGIN");
    migrate(schema_version());
    for (const auto& a : allocations) {
        const auto& r = a.record;
        auto q = hot_query(upsert_allocation_sql());
        q.bind(1, r.id).bind(2, r.account).bind(3, r.username).bind(4, r.realm).bind(5, r.client);
        q.bind(6, r.transport).bind(7, r.relay).bind(8, r.start_ms).bind(9, r.end_ms);
        q.bind(10, static_cast<std::int64_t>(r.peers)).bind(11, r.end_reason);
        for (std::size_t i = 0; i < kCounters; ++i) q.bind(12 + static_cast<int>(i), counter(r.traffic, i));
        q.bind(24, a.last_checkpoint_ms);
        q.step();
    }
    for (const auto& h : hourly)
        add_hourly(HourlyKey{h.hour_start_ms, h.realm, h.account},
                   HourlyDelta{static_cast<std::int64_t>(h.allocations_started), h.traffic});
    for (const auto& c : calls) write_call(c);
    tx.commit();
}

void SqliteStore::migrate(int to) {
    const int from = user_version();
    if (from > schema_version())
        throw SqliteError(fmt::format("schema version {} is newer than this turnbridge's ({})", from, schema_version()));
    for (int v = from; v < to; ++v) exec(migrations()[static_cast<std::size_t>(v)]);
    if (from < to) {
        exec(fmt::format("PRAGMA user_version = {}", to));
        if (from != 0) log::info("accounting: {} migrated from schema version {} to {}", file_, from, to);
    }
}

// An allocation still open in the store was cut off by a crash (or kill -9): it ended at its
// last checkpoint, the last moment its counters are known.
void SqliteStore::close_crashed() {
    if (outbox_max_ != 0)  // the fleet learns of the crash too, with no traffic added
        query(fmt::format("INSERT INTO outbox (allocation, account, username, realm, client, transport, relay, start_ms, "
                          "end_ms, peers, end_reason, written_ms, started, {}) "
                          "SELECT id, account, username, realm, client, transport, relay, start_ms, "
                          "MAX(last_checkpoint_ms, start_ms, 1), peers, 'crashed', last_checkpoint_ms, 0, {} "
                          "FROM allocations WHERE end_ms = 0",
                          counter_columns("{}"), counter_columns("0")))
            .step();
    query("UPDATE allocations SET end_ms = MAX(last_checkpoint_ms, start_ms, 1), end_reason = 'crashed' "
          "WHERE end_ms = 0")
        .step();
    if (const int n = sqlite3_changes(db_); n > 0)
        log::warn("accounting: {} allocation{} left open by the previous run closed as crashed", n, n == 1 ? "" : "s");
}

bool SqliteStore::write(const std::vector<AllocationRecord>& batch, const std::vector<CallRecord>& calls,
                        std::int64_t now_ms) {
    if (batch.empty() && calls.empty()) return true;
    try {
        Transaction tx(*this, "BEGIN IMMEDIATE");
        HourlyBatch hourly;
        StoredTotals pending;
        for (const auto& r : batch) write_one(r, now_ms, hourly, pending);
        for (const auto& [key, d] : hourly) add_hourly(key, d);
        for (const auto& c : calls) {
            write_call(c);
            if (outbox_max_ != 0) add_call_outbox(c);
        }
        tx.commit();
        for (auto& [id, t] : pending) stored_[id] = t;
        for (const auto& r : batch)
            if (r.end_ms != 0) stored_.erase(r.id);
    } catch (const std::exception& e) {
        if (!failing_)
            log::warn("accounting: cannot write to {}: {}; the records are kept and retried", file_, e.what());
        failing_ = true;
        return false;
    }
    if (failing_) log::info("accounting: writing to {} works again", file_);
    failing_ = false;
    return true;
}

void SqliteStore::write_one(const AllocationRecord& r, std::int64_t now_ms, HourlyBatch& hourly, StoredTotals& pending) {
    Traffic stored;
    bool known = false;
    if (auto p = pending.find(r.id); p != pending.end()) {
        known = true, stored = p->second;
    } else if (auto c = stored_.find(r.id); c != stored_.end()) {
        known = true, stored = c->second;
    } else {
        static const std::string sql = "SELECT " + counter_columns("{}") + " FROM allocations WHERE id = ?1";
        auto q = hot_query(sql);
        q.bind(1, r.id);
        if (q.step()) known = true, q.read_traffic(0, stored);
    }
    // Totals only grow; one that went down adds nothing, and the higher total stays stored.
    Traffic total, delta;
    bool went_down = false;
    for (std::size_t i = 0; i < kCounters; ++i) {
        const std::uint64_t now = counter(r.traffic, i), before = counter(stored, i);
        if (now < before && !went_down) {
            went_down = true;
            log::warn("accounting: allocation {}: {} went down from {} to {}; counted as no traffic", r.id,
                      counter_name(i), before, now);
        }
        counter(total, i) = std::max(now, before);
        counter(delta, i) = now > before ? now - before : 0;
    }
    if (known) {
        // The row exists (a record's identity never changes): update in place, which costs a
        // fraction of the upsert; this is the statement of every checkpoint.
        const bool ending = r.end_ms != 0;
        auto q = hot_query(update_allocation_sql(ending));
        q.bind(1, r.id).bind(3, static_cast<std::int64_t>(r.peers));
        if (ending) q.bind(2, r.end_ms).bind(4, r.end_reason);
        for (std::size_t i = 0; i < kCounters; ++i) q.bind(5 + static_cast<int>(i), counter(total, i));
        q.bind(5 + static_cast<int>(kCounters), now_ms);
        q.step();
    } else {
        auto q = hot_query(upsert_allocation_sql());
        q.bind(1, r.id).bind(2, r.account).bind(3, r.username).bind(4, r.realm).bind(5, r.client);
        q.bind(6, r.transport).bind(7, r.relay).bind(8, r.start_ms).bind(9, r.end_ms);
        q.bind(10, static_cast<std::int64_t>(r.peers)).bind(11, r.end_reason);
        for (std::size_t i = 0; i < kCounters; ++i) q.bind(12 + static_cast<int>(i), counter(total, i));
        q.bind(24, now_ms);
        q.step();
    }
    pending[r.id] = total;
    if (outbox_max_ != 0) add_outbox(r, now_ms, !known, delta);

    // A new allocation counts where it started; traffic counts where it was written.
    const std::int64_t start_hour = detail::floor_to(r.start_ms, kHourMs);
    const std::int64_t write_hour = detail::floor_to(now_ms, kHourMs);
    if (!known) ++hourly[HourlyKey{start_hour, r.realm, r.account}].started;
    bool any = false;
    for (std::size_t i = 0; i < kCounters; ++i) any = any || counter(delta, i) != 0;
    if (!any) return;
    auto& into = hourly[HourlyKey{write_hour, r.realm, r.account}].traffic;
    for (std::size_t i = 0; i < kCounters; ++i) counter(into, i) += counter(delta, i);
}

// Fleet mode: what this write added, for the shipper (issue 15). Nothing new, nothing queued.
// A full outbox (spool_max_rows, while PostgreSQL is away) drops the row and counts it: the
// local ledger stays exact, the fleet's misses what the counter says.
void SqliteStore::add_outbox(const AllocationRecord& r, std::int64_t now_ms, bool started, const Traffic& delta) {
    bool any = started || r.end_ms != 0;
    for (std::size_t i = 0; i < kCounters && !any; ++i) any = counter(delta, i) != 0;
    if (!any) return;
    if (outbox_rows() >= outbox_max_) {
        if (outbox_dropped_++ == 0)
            log::error("accounting: the outbox of {} holds {} rows (fleet.spool_max_rows); further intervals are kept "
                       "locally but not shipped to the fleet", file_, outbox_max_);
        return;
    }
    static const std::string sql = fmt::format(
        "INSERT INTO outbox (allocation, account, username, realm, client, transport, relay, start_ms, end_ms, peers, "
        "end_reason, written_ms, started, {}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, {})",
        counter_columns("{}"), counter_params(14));
    auto q = hot_query(sql);
    q.bind(1, r.id).bind(2, r.account).bind(3, r.username).bind(4, r.realm).bind(5, r.client);
    q.bind(6, r.transport).bind(7, r.relay).bind(8, r.start_ms).bind(9, r.end_ms);
    q.bind(10, static_cast<std::int64_t>(r.peers)).bind(11, r.end_reason).bind(12, now_ms);
    q.bind(13, std::int64_t{started ? 1 : 0});
    for (std::size_t i = 0; i < kCounters; ++i) q.bind(14 + static_cast<int>(i), counter(delta, i));
    q.step();
}

// Rows are deleted oldest first (the shipper erases a prefix), so the span of sequence numbers
// is the count, found in two index lookups rather than a scan.
std::uint64_t SqliteStore::outbox_rows() {
    static const std::string sql = "SELECT COALESCE(MAX(seq) - MIN(seq) + 1, 0) FROM outbox";
    auto q = hot_query(sql);
    return q.step() ? q.uint64(0) : 0;
}

// Fleet mode: the call, for the shipper (issue 15), under the same bound as the allocations'
// outbox. A retried batch may queue a call twice; PostgreSQL keeps the first (ON CONFLICT).
void SqliteStore::add_call_outbox(const CallRecord& c) {
    if (!has_call_outbox_) return;   // a store kept at an older schema (StoreOptions::schema_version)
    static const std::string count = "SELECT COALESCE(MAX(seq) - MIN(seq) + 1, 0) FROM call_outbox";
    std::uint64_t rows = 0;
    {
        auto q = hot_query(count);
        if (q.step()) rows = q.uint64(0);
    }
    if (rows >= outbox_max_) {
        if (outbox_dropped_++ == 0)
            log::error("accounting: the call outbox of {} holds {} rows (fleet.spool_max_rows); further calls are kept "
                       "locally but not shipped to the fleet", file_, outbox_max_);
        return;
    }
    static const std::string sql = "INSERT INTO call_outbox (call) VALUES (?1)";
    auto q = hot_query(sql);
    q.bind(1, c.id).step();
}

void SqliteStore::add_hourly(const HourlyKey& key, const HourlyDelta& d) {
    auto q = hot_query(upsert_hourly_sql());
    q.bind(1, key.hour).bind(2, key.realm).bind(3, key.account).bind(4, d.started);
    for (std::size_t i = 0; i < kCounters; ++i) q.bind(5 + static_cast<int>(i), counter(d.traffic, i));
    q.step();
}

// A call arrives once, when it ended; a retried batch may bring it again, and then replaces it.
void SqliteStore::write_call(const CallRecord& c) {
    // A store kept at schema 2 (StoreOptions::schema_version, tests) has no quality columns, one
    // kept at 3 to 5 no trunk column.
    const auto make = [](bool quality, bool trunk) {
        std::string params;
        const int n = kCallColumnCount + (quality ? kQualityColumnCount : 0) + (trunk ? 1 : 0);
        for (int i = 1; i <= n; ++i) params += fmt::format("{}?{}", i > 1 ? ", " : "", i);
        return fmt::format("INSERT OR REPLACE INTO calls ({}{}{}{}) VALUES ({})", kCallColumns, quality ? ", " : "",
                           quality ? call_quality_columns() : std::string(), trunk ? ", trunk" : "", params);
    };
    static const std::string with_trunk = make(true, true), with_quality = make(true, false), without = make(false, false);
    auto q = hot_query(has_trunk_ ? with_trunk : has_quality_ ? with_quality : without);
    q.bind(1, c.id).bind(2, c.realm).bind(3, c.account).bind(4, c.direction).bind(5, c.remote);
    q.bind(6, c.start_ms).bind(7, c.answer_ms).bind(8, c.end_ms).bind(9, std::int64_t{c.status});
    q.bind(10, c.codecs).bind(11, c.end_reason).bind(12, std::int64_t{c.relayed ? 1 : 0});
    q.bind(13, c.browser_in_packets).bind(14, c.browser_in_bytes).bind(15, c.browser_out_packets);
    q.bind(16, c.browser_out_bytes).bind(17, c.trunk_in_packets).bind(18, c.trunk_in_bytes);
    q.bind(19, c.trunk_out_packets).bind(20, c.trunk_out_bytes);
    int col = kCallColumnCount + 1;
    for (const CallQuality& k : c.quality) {
        if (!has_quality_) break;
        if (!k.measured) {
            for (int i = 0; i < 4; ++i) q.bind_null(col++);
            continue;
        }
        q.bind(col, k.lost).bind(col + 1, k.loss_pct).bind(col + 2, k.jitter_ms).bind(col + 3, k.mos);
        col += 4;
    }
    if (has_trunk_) {
        if (c.trunk.empty()) q.bind_null(col);   // no trunk leg
        else q.bind(col, c.trunk);
    }
    q.step();
}

}  // namespace turnbridge::accounting::sqlite

namespace turnbridge::accounting {

using sqlite::SqliteError;
using sqlite::SqliteStore;

std::unique_ptr<Store> detail::memory_store(const std::vector<StoredAllocation>& allocations,
                                           const std::vector<HourlyRow>& hourly, const std::vector<CallRecord>& calls) {
    auto store = std::make_unique<SqliteStore>(":memory:", false);
    try {
        store->open_memory(allocations, hourly, calls);
    } catch (const SqliteError& e) {
        throw std::runtime_error(fmt::format("in-memory copy of the fleet ledger: {}", e.what()));
    }
    return store;
}

std::unique_ptr<Store> Store::open(const std::filesystem::path& file, bool writer) {
    return open(file, writer, StoreOptions{});
}

std::unique_ptr<Store> Store::open(const std::filesystem::path& file, bool writer, const StoreOptions& options) {
    auto store = std::make_unique<SqliteStore>(file.string(), writer);
    try {
        store->open(options);
    } catch (const SqliteError& e) {
        throw std::runtime_error(fmt::format("{}: {}", file.string(), e.what()));
    }
    return store;
}

}  // namespace turnbridge::accounting
