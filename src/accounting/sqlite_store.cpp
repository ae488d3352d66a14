// SPDX-License-Identifier: Apache-2.0
// The accounting store on SQLite in WAL mode: a versioned schema migrated on open, batched
// writes that keep hourly rollups, and the usage queries. The only file that includes
// <sqlite3.h> (STYLE.md); the tables are described in store.hpp.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

#include "calendar.hpp"
#include "counters.hpp"
#include "turnbridge/accounting/store.hpp"
#include "turnbridge/base/log.hpp"

namespace turnbridge::accounting {
namespace {

using detail::counter;
using detail::counter_name;
using detail::kCounters;
using detail::kDayMs;
using detail::kHourMs;
using detail::kMinuteMs;

constexpr std::int64_t kMinMs = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMaxMs = std::numeric_limits<std::int64_t>::max();

// A failed SQLite call with SQLite's message; turned into the Store's own answer at its edges.
struct SqliteError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The 12 counter columns, each through `pattern` ("{}" is the name), joined with ", ".
std::string counter_columns(std::string_view pattern) {
    std::string out;
    for (std::size_t i = 0; i < kCounters; ++i)
        out += (i ? ", " : "") + fmt::format(fmt::runtime(pattern), counter_name(i));
    return out;
}

// ?first, ?first+1, ... for the 12 counters.
std::string counter_params(int first) {
    std::string out;
    for (std::size_t i = 0; i < kCounters; ++i) out += fmt::format("{}?{}", i ? ", " : "", first + static_cast<int>(i));
    return out;
}

// Migration i takes the schema from version i to i + 1 (PRAGMA user_version). Append new
// versions; never edit a released one.
std::string schema_v1() {
    return fmt::format(R"(
CREATE TABLE allocations (
    id TEXT PRIMARY KEY NOT NULL,
    account TEXT NOT NULL,
    username TEXT NOT NULL,
    realm TEXT NOT NULL,
    client TEXT NOT NULL,
    transport TEXT NOT NULL,
    relay TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    peers INTEGER NOT NULL,
    end_reason TEXT NOT NULL,
    {},
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
                       counter_columns("{} INTEGER NOT NULL DEFAULT 0"), counter_columns("{} INTEGER NOT NULL DEFAULT 0"));
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

const std::vector<std::string>& migrations() {
    static const std::vector<std::string> all = {schema_v1(), kSchemaV2};
    return all;
}

int schema_version() { return static_cast<int>(migrations().size()); }

// The schema version that added the calls table, and the oldest one a reader can read.
constexpr int kCallsVersion = 2;
constexpr int kOldestReadable = 1;

// The allocation columns in AllocationRecord order; reads and writes use this order.
const std::string& allocation_columns() {
    static const std::string s = "id, account, username, realm, client, transport, relay, start_ms, end_ms, peers, "
                                 "end_reason, " + counter_columns("{}") + ", last_checkpoint_ms";
    return s;
}

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

// The call columns in CallRecord order; reads and writes use this order.
constexpr const char* kCallColumns =
    "id, realm, account, direction, remote, start_ms, answer_ms, end_ms, status, codecs, end_reason, relayed, "
    "browser_in_packets, browser_in_bytes, browser_out_packets, browser_out_bytes, "
    "trunk_in_packets, trunk_in_bytes, trunk_out_packets, trunk_out_bytes";
constexpr int kCallColumnCount = 20;

const std::string& upsert_hourly_sql() {
    static const std::string s = fmt::format(
        "INSERT INTO hourly (hour_start_ms, realm, account, allocations_started, {}) VALUES (?1, ?2, ?3, ?4, {}) "
        "ON CONFLICT (hour_start_ms, realm, account) DO UPDATE SET "
        "allocations_started = allocations_started + excluded.allocations_started, {}",
        counter_columns("{}"), counter_params(5), counter_columns("{0} = {0} + excluded.{0}"));
    return s;
}

// Filters shared by the usage queries: ?1 <= time < ?2, ?3 realm or NULL, ?4 account or NULL.
constexpr const char* kFilters = "(?3 IS NULL OR realm = ?3) AND (?4 IS NULL OR account = ?4)";

// The moment an allocation stopped counting: its end, or its last checkpoint while open.
constexpr const char* kStop = "(CASE end_ms WHEN 0 THEN last_checkpoint_ms ELSE end_ms END)";

// The smallest hour boundary at or after `ms` (saturating).
std::int64_t ceil_to_hour(std::int64_t ms) {
    if (ms > kMaxMs - kHourMs) return kMaxMs;
    return detail::floor_to(ms + kHourMs - 1, kHourMs);
}

std::string price_currency(const std::map<std::string, Prices>& prices, const std::string& realm) {
    auto it = prices.find(realm);
    return it == prices.end() ? std::string() : it->second.currency;
}

double egress_cost(const std::map<std::string, Prices>& prices, const std::string& realm, const Traffic& t) {
    auto it = prices.find(realm);
    return it == prices.end() ? 0.0 : static_cast<double>(t.egress_bytes()) / 1e9 * it->second.per_gb;
}

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

    using Store::write;
    bool write(const std::vector<AllocationRecord>& batch, const std::vector<CallRecord>& calls,
               std::int64_t now_ms) override;
    std::vector<UsageRow> usage(const UsageQuery& q, const std::map<std::string, Prices>& prices) override;
    std::optional<AllocationRecord> allocation(const std::string& id) override;
    std::vector<CallRecord> calls(const CallQuery& q) override;
    std::uint64_t relayed_bytes(const std::string& realm, const std::string& account, std::int64_t since_ms) override;

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
    int lock_fd_ = -1;      // FILE.lock, flock()ed while this server writes FILE
};

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
        close_crashed();
        tx.commit();
    }
    if (options.max_pages != 0) exec(fmt::format("PRAGMA max_page_count = {}", options.max_pages));
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
        for (const auto& c : calls) write_call(c);
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

void SqliteStore::add_hourly(const HourlyKey& key, const HourlyDelta& d) {
    auto q = hot_query(upsert_hourly_sql());
    q.bind(1, key.hour).bind(2, key.realm).bind(3, key.account).bind(4, d.started);
    for (std::size_t i = 0; i < kCounters; ++i) q.bind(5 + static_cast<int>(i), counter(d.traffic, i));
    q.step();
}

// A call arrives once, when it ended; a retried batch may bring it again, and then replaces it.
void SqliteStore::write_call(const CallRecord& c) {
    static const std::string sql = [] {
        std::string params;
        for (int i = 1; i <= kCallColumnCount; ++i) params += fmt::format("{}?{}", i > 1 ? ", " : "", i);
        return fmt::format("INSERT OR REPLACE INTO calls ({}) VALUES ({})", kCallColumns, params);
    }();
    auto q = hot_query(sql);
    q.bind(1, c.id).bind(2, c.realm).bind(3, c.account).bind(4, c.direction).bind(5, c.remote);
    q.bind(6, c.start_ms).bind(7, c.answer_ms).bind(8, c.end_ms).bind(9, std::int64_t{c.status});
    q.bind(10, c.codecs).bind(11, c.end_reason).bind(12, std::int64_t{c.relayed ? 1 : 0});
    q.bind(13, c.browser_in_packets).bind(14, c.browser_in_bytes).bind(15, c.browser_out_packets);
    q.bind(16, c.browser_out_bytes).bind(17, c.trunk_in_packets).bind(18, c.trunk_in_bytes);
    q.bind(19, c.trunk_out_packets).bind(20, c.trunk_out_bytes);
    q.step();
}

std::vector<UsageRow> SqliteStore::usage(const UsageQuery& q, const std::map<std::string, Prices>& prices) {
    try {
        // One read transaction: both tables from the same snapshot.
        Transaction tx(*this, "BEGIN");
        auto rows = q.by == GroupBy::Allocation ? usage_by_allocation(q, prices) : usage_by_buckets(q, prices);
        tx.commit();
        return rows;
    } catch (const SqliteError& e) {
        throw std::runtime_error(fmt::format("{}: {}", file_, e.what()));
    }
}

std::vector<UsageRow> SqliteStore::usage_by_allocation(const UsageQuery& q, const std::map<std::string, Prices>& prices) {
    auto s = query(fmt::format("SELECT id, realm, start_ms, {}, {} FROM allocations "
                               "WHERE start_ms >= ?1 AND start_ms < ?2 AND {} ORDER BY start_ms, id",
                               kStop, counter_columns("{}"), kFilters));
    s.bind(1, q.since_ms.value_or(kMinMs)).bind(2, q.until_ms.value_or(kMaxMs)).bind(3, q.realm).bind(4, q.user);
    std::vector<UsageRow> rows;
    while (s.step()) {
        UsageRow row;
        row.key = s.text(0);
        row.realm = s.text(1);
        row.allocations = 1;
        row.relayed_minutes = static_cast<double>(std::max<std::int64_t>(0, s.int64(3) - s.int64(2))) / kMinuteMs;
        s.read_traffic(4, row.traffic);
        row.cost = egress_cost(prices, row.realm, row.traffic);
        row.currency = price_currency(prices, row.realm);
        rows.push_back(std::move(row));
    }
    return rows;
}

void add_traffic(Traffic& into, const Traffic& t) {
    for (std::size_t i = 0; i < kCounters; ++i) counter(into, i) += counter(t, i);
}

// The key of the usage row a bucket, allocation or call of (time, realm, account) belongs to.
RowKey row_key(GroupBy by, std::int64_t time, const std::string& realm, const std::string& account) {
    switch (by) {
        case GroupBy::User: return std::make_tuple(std::int64_t{0}, realm, account);
        case GroupBy::Realm: return std::make_tuple(std::int64_t{0}, realm, std::string());
        case GroupBy::Day: return std::make_tuple(detail::floor_to(time, kDayMs), std::string(), std::string());
        default: return std::make_tuple(detail::floor_to(time, kHourMs), std::string(), std::string());
    }
}

std::vector<UsageRow> SqliteStore::usage_by_buckets(const UsageQuery& q, const std::map<std::string, Prices>& prices) {
    RowAccs acc;
    const auto key = [&](std::int64_t time, const std::string& realm, const std::string& account) {
        return row_key(q.by, time, realm, account);
    };
    const bool by_time = q.by == GroupBy::Day || q.by == GroupBy::Hour;

    auto s = query(fmt::format("SELECT hour_start_ms, realm, account, allocations_started, {} FROM hourly "
                               "WHERE hour_start_ms >= ?1 AND hour_start_ms < ?2 AND {}",
                               counter_columns("{}"), kFilters));
    s.bind(1, q.since_ms.value_or(kMinMs)).bind(2, q.until_ms.value_or(kMaxMs)).bind(3, q.realm).bind(4, q.user);
    while (s.step()) {
        const std::string realm = s.text(1);
        Traffic t;
        s.read_traffic(4, t);
        RowAcc& a = acc[key(s.int64(0), realm, s.text(2))];
        a.realms.insert(realm);
        a.row.allocations += s.uint64(3);
        add_traffic(a.row.traffic, t);
        a.row.cost += egress_cost(prices, realm, t);
    }

    // Relayed time inside the window the buckets cover, split at day or hour boundaries.
    const std::int64_t from = q.since_ms ? ceil_to_hour(*q.since_ms) : kMinMs;
    const std::int64_t to = q.until_ms ? ceil_to_hour(*q.until_ms) : kMaxMs;
    auto m = query(fmt::format("SELECT realm, account, start_ms, {0} FROM allocations "
                               "WHERE start_ms < ?2 AND {0} > ?1 AND {1}", kStop, kFilters));
    m.bind(1, from).bind(2, to).bind(3, q.realm).bind(4, q.user);
    while (m.step()) {
        const std::string realm = m.text(0), account = m.text(1);
        const std::int64_t begin = std::max(m.int64(2), from), end = std::min(m.int64(3), to);
        const std::int64_t step = q.by == GroupBy::Day ? kDayMs : kHourMs;
        for (std::int64_t t = by_time ? detail::floor_to(begin, step) : begin; t < end; t += step) {
            const std::int64_t part = by_time ? std::min(end, t + step) - std::max(begin, t) : end - begin;
            RowAcc& a = acc[key(t, realm, account)];
            a.realms.insert(realm);
            a.relayed_ms += part;
            if (!by_time || t > kMaxMs - step) break;
        }
    }

    if (has_calls_) add_calls(q, from, to, acc);

    std::vector<UsageRow> rows;
    for (auto& [k, a] : acc) {
        const auto& [time, realm, account] = k;
        UsageRow row = std::move(a.row);
        switch (q.by) {
            case GroupBy::User: row.key = account.empty() ? "(realm)" : account; break;
            case GroupBy::Realm: row.key = realm; break;
            case GroupBy::Day: row.key = detail::day_key(time); break;
            default: row.key = detail::hour_key(time); break;
        }
        row.realm = a.realms.size() == 1 ? *a.realms.begin() : std::string();
        std::set<std::string> currencies;
        for (const auto& r : a.realms) currencies.insert(price_currency(prices, r));
        row.currency = currencies.size() == 1 ? *currencies.begin() : std::string();
        row.relayed_minutes = static_cast<double>(a.relayed_ms) / kMinuteMs;
        rows.push_back(std::move(row));
    }
    return rows;
}

// Calls that started in [from, to), summed per (realm, account, codecs) and the day or hour
// they started in, each sum into the row it belongs to.
void SqliteStore::add_calls(const UsageQuery& q, std::int64_t from, std::int64_t to, RowAccs& acc) {
    const std::int64_t step = q.by == GroupBy::Day ? kDayMs : q.by == GroupBy::Hour ? kHourMs : 0;
    auto c = query(fmt::format(
        "SELECT realm, account, codecs, CASE ?5 WHEN 0 THEN 0 ELSE start_ms - ((start_ms % ?5) + ?5) % ?5 END AS bucket, "
        "COUNT(*), SUM(answer_ms != 0), SUM(CASE WHEN answer_ms != 0 AND end_ms > answer_ms THEN end_ms - answer_ms "
        "ELSE 0 END), SUM(browser_in_bytes + browser_out_bytes), SUM(trunk_in_bytes + trunk_out_bytes) FROM calls "
        "WHERE start_ms >= ?1 AND start_ms < ?2 AND {} GROUP BY realm, account, codecs, bucket", kFilters));
    c.bind(1, from).bind(2, to).bind(3, q.realm).bind(4, q.user).bind(5, step);
    while (c.step()) {
        const std::string realm = c.text(0);
        RowAcc& a = acc[row_key(q.by, c.int64(3), realm, c.text(1))];
        a.realms.insert(realm);
        CallTotals& t = a.row.calls;
        t.calls += c.uint64(4);
        t.answered += c.uint64(5);
        t.answered_ms += c.int64(6);
        t.browser_bytes += c.uint64(7);
        t.trunk_bytes += c.uint64(8);
        if (const std::string codecs = c.text(2); !codecs.empty()) t.codecs[codecs] += c.uint64(4);
    }
}

std::optional<AllocationRecord> SqliteStore::allocation(const std::string& id) {
    try {
        auto q = query("SELECT " + allocation_columns() + " FROM allocations WHERE id = ?1");
        q.bind(1, id);
        if (!q.step()) return std::nullopt;
        AllocationRecord r;
        r.id = q.text(0);
        r.account = q.text(1);
        r.username = q.text(2);
        r.realm = q.text(3);
        r.client = q.text(4);
        r.transport = q.text(5);
        r.relay = q.text(6);
        r.start_ms = q.int64(7);
        r.end_ms = q.int64(8);
        r.peers = static_cast<std::uint32_t>(q.int64(9));
        r.end_reason = q.text(10);
        q.read_traffic(11, r.traffic);
        return r;
    } catch (const SqliteError& e) {
        throw std::runtime_error(fmt::format("{}: {}", file_, e.what()));
    }
}

std::vector<CallRecord> SqliteStore::calls(const CallQuery& q) {
    if (!has_calls_) return {};
    try {
        // Only the filters given, so that SQLite can use the (realm, account, start_ms) index.
        std::string sql = fmt::format("SELECT {} FROM calls WHERE start_ms >= ?1 AND start_ms < ?2", kCallColumns);
        if (q.realm) sql += " AND realm = ?3";
        if (q.user) sql += " AND account = ?4";
        sql += " ORDER BY start_ms, id LIMIT ?5";
        auto s = query(sql);
        s.bind(1, q.since_ms.value_or(kMinMs)).bind(2, q.until_ms.value_or(kMaxMs));
        if (q.realm) s.bind(3, *q.realm);
        if (q.user) s.bind(4, *q.user);
        // SQLite: a negative LIMIT means no limit.
        s.bind(5, q.limit ? static_cast<std::int64_t>(std::min<std::size_t>(*q.limit, kMaxMs)) : std::int64_t{-1});
        std::vector<CallRecord> out;
        while (s.step()) {
            CallRecord c;
            c.id = s.text(0);
            c.realm = s.text(1);
            c.account = s.text(2);
            c.direction = s.text(3);
            c.remote = s.text(4);
            c.start_ms = s.int64(5);
            c.answer_ms = s.int64(6);
            c.end_ms = s.int64(7);
            c.status = static_cast<int>(s.int64(8));
            c.codecs = s.text(9);
            c.end_reason = s.text(10);
            c.relayed = s.int64(11) != 0;
            std::uint64_t* counts[] = {&c.browser_in_packets, &c.browser_in_bytes, &c.browser_out_packets,
                                       &c.browser_out_bytes,  &c.trunk_in_packets, &c.trunk_in_bytes,
                                       &c.trunk_out_packets,  &c.trunk_out_bytes};
            for (int i = 0; i < 8; ++i) *counts[i] = s.uint64(12 + i);
            out.push_back(std::move(c));
        }
        return out;
    } catch (const SqliteError& e) {
        throw std::runtime_error(fmt::format("{}: {}", file_, e.what()));
    }
}

std::uint64_t SqliteStore::relayed_bytes(const std::string& realm, const std::string& account, std::int64_t since_ms) {
    try {
        auto q = query("SELECT COALESCE(SUM(relay_to_peer_payload_bytes + relay_to_client_payload_bytes), 0) "
                       "FROM hourly WHERE realm = ?1 AND account = ?2 AND hour_start_ms >= ?3");
        q.bind(1, realm).bind(2, account).bind(3, since_ms);
        return q.step() ? q.uint64(0) : 0;
    } catch (const SqliteError& e) {
        log::warn("accounting: cannot read relayed bytes from {}: {}", file_, e.what());
        return 0;
    }
}

}  // namespace

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
