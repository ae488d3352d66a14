// SPDX-License-Identifier: Apache-2.0
// The fleet ledger on PostgreSQL (pg_ledger.hpp): connection, schema migration under an advisory
// lock, idempotent shipping of outbox rows, and the node registry. Reads are in pg_store.cpp.
#include "pg_conn.hpp"

#include <fmt/format.h>

#include "counters.hpp"
#include "turnbridge/base/log.hpp"

namespace turnbridge::accounting {
namespace {

using detail::counter;
using detail::counter_name;
using detail::kCounters;

std::string counters(std::string_view pattern) {
    std::string out;
    for (std::size_t i = 0; i < kCounters; ++i)
        out += (i ? ", " : "") + fmt::format(fmt::runtime(pattern), counter_name(i));
    return out;
}

// The call columns, CallRecord order (the SQLite store's kCallColumns and quality columns).
constexpr const char* kCallColumns =
    "id, realm, account, direction, remote, start_ms, answer_ms, end_ms, status, codecs, end_reason, relayed, "
    "browser_in_packets, browser_in_bytes, browser_out_packets, browser_out_bytes, "
    "trunk_in_packets, trunk_in_bytes, trunk_out_packets, trunk_out_bytes";
constexpr int kCallColumnCount = 20;

std::string call_quality_pg_columns(std::string_view suffix_lost, std::string_view suffix_real) {
    std::string out;
    for (const char* p : kCallQualityPrefixes)
        out += fmt::format(", {0}_lost{1}, {0}_loss_pct{2}, {0}_jitter_ms{2}, {0}_mos{2}", p, suffix_lost, suffix_real);
    return out;
}

// Gateway calls of every node (issue 15), keyed (node, id): a call shipped twice is kept once.
std::string fleet_calls_sql() {
    return fmt::format(R"(
CREATE TABLE fleet_calls (
    node TEXT NOT NULL, id TEXT NOT NULL, realm TEXT NOT NULL, account TEXT NOT NULL, direction TEXT NOT NULL,
    remote TEXT NOT NULL, start_ms BIGINT NOT NULL, answer_ms BIGINT NOT NULL, end_ms BIGINT NOT NULL,
    status INTEGER NOT NULL, codecs TEXT NOT NULL, end_reason TEXT NOT NULL, relayed BOOLEAN NOT NULL,
    browser_in_packets BIGINT NOT NULL, browser_in_bytes BIGINT NOT NULL, browser_out_packets BIGINT NOT NULL,
    browser_out_bytes BIGINT NOT NULL, trunk_in_packets BIGINT NOT NULL, trunk_in_bytes BIGINT NOT NULL,
    trunk_out_packets BIGINT NOT NULL, trunk_out_bytes BIGINT NOT NULL{},
    shipped_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (node, id));
CREATE INDEX fleet_calls_by_start ON fleet_calls (start_ms);
)",
                       call_quality_pg_columns(" BIGINT", " DOUBLE PRECISION"));
}

// Migration i takes the schema from version i to i + 1. Append; never edit a released one.
std::vector<std::string> migrations() {
    return {fmt::format(R"(
CREATE TABLE fleet_intervals (
    node TEXT NOT NULL, boot BIGINT NOT NULL, allocation TEXT NOT NULL, seq BIGINT NOT NULL,
    realm TEXT NOT NULL, account TEXT NOT NULL, written_ms BIGINT NOT NULL, started BOOLEAN NOT NULL,
    end_ms BIGINT NOT NULL, {0},
    shipped_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (node, boot, allocation, seq));
CREATE TABLE fleet_allocations (
    id TEXT PRIMARY KEY, node TEXT NOT NULL, account TEXT NOT NULL, username TEXT NOT NULL,
    realm TEXT NOT NULL, client TEXT NOT NULL, transport TEXT NOT NULL, relay TEXT NOT NULL,
    start_ms BIGINT NOT NULL, end_ms BIGINT NOT NULL, peers BIGINT NOT NULL, end_reason TEXT NOT NULL,
    {0}, last_checkpoint_ms BIGINT NOT NULL);
CREATE INDEX fleet_allocations_by_start ON fleet_allocations (start_ms);
CREATE TABLE fleet_hourly (
    hour_start_ms BIGINT NOT NULL, realm TEXT NOT NULL, account TEXT NOT NULL, node TEXT NOT NULL,
    allocations_started BIGINT NOT NULL DEFAULT 0, {0},
    PRIMARY KEY (hour_start_ms, realm, account, node));
CREATE TABLE fleet_nodes (
    node TEXT PRIMARY KEY, region TEXT NOT NULL, boot BIGINT NOT NULL, listen TEXT NOT NULL,
    relay TEXT NOT NULL, state TEXT NOT NULL, allocations BIGINT NOT NULL, spool_rows BIGINT NOT NULL,
    heartbeat TIMESTAMPTZ NOT NULL);
)",
                        counters("{} BIGINT NOT NULL DEFAULT 0")),
            // 1 -> 2: fleet-wide byte quotas by leases (pg_leases.cpp). fleet_quota: per user and
            // quota period, the budget and the bytes known used; fleet_leases: what each node
            // (and boot) holds of the rest, until `expires` (lease_ttl after its last renewal).
            R"(
CREATE TABLE fleet_quota (
    realm TEXT NOT NULL, account TEXT NOT NULL, period_start_ms BIGINT NOT NULL,
    budget BIGINT NOT NULL, used BIGINT NOT NULL,
    PRIMARY KEY (realm, account, period_start_ms));
CREATE TABLE fleet_leases (
    realm TEXT NOT NULL, account TEXT NOT NULL, period_start_ms BIGINT NOT NULL,
    node TEXT NOT NULL, boot BIGINT NOT NULL, granted BIGINT NOT NULL, expires TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (realm, account, period_start_ms, node, boot));
CREATE INDEX fleet_leases_by_expiry ON fleet_leases (expires);
)",
            // 2 -> 3: call records and SIP location across nodes (issue 15).
            fleet_calls_sql() + location_schema_sql(),
            // 3 -> 4: the trunk of each call (issue 14); NULL for none and for calls shipped before.
            "ALTER TABLE fleet_calls ADD COLUMN trunk TEXT;"};
}

constexpr std::int64_t kSchemaLock = 0x7475726e15;  // "turn" + issue 15: pg_advisory_xact_lock key
constexpr int kColumns = 16 + static_cast<int>(kCounters);  // per batch row, in ship()

// "NODE:BOOT-COUNTER": the boot (hex); 0 when the id has another shape.
std::int64_t boot_of(const std::string& id) {
    const auto slash = id.rfind(':'), dash = id.rfind('-');
    if (slash == std::string::npos || dash == std::string::npos || dash < slash) return 0;
    try {
        return static_cast<std::int64_t>(std::stoull(id.substr(slash + 1, dash - slash - 1), nullptr, 16));
    } catch (const std::exception&) {
        return 0;
    }
}

// "c1 <> 0 OR c2 <> 0 ...": the row moved some traffic.
std::string any_counter() {
    std::string out;
    for (std::size_t i = 0; i < kCounters; ++i) out += fmt::format("{}{} <> 0", i ? " OR " : "", counter_name(i));
    return out;
}

// The batch statement for `n` rows: insert what is new into the ledger; from exactly those rows
// (RETURNING), add to the allocations' sums and the hourly rollups. A replayed row conflicts,
// is not returned and adds nothing.
std::string ship_sql(std::size_t n) {
    std::string values;
    for (std::size_t r = 0; r < n; ++r) {
        values += r ? ",(" : "(";
        for (int c = 0; c < kColumns; ++c) {
            const int p = static_cast<int>(r) * kColumns + c + 1;
            // Types on the first row fix the VALUES list's column types.
            static const char* types[] = {"::text", "::bigint", "::text", "::bigint", "::text", "::text", "::text",
                                          "::text", "::text", "::text", "::bigint", "::bigint", "::bigint", "::text",
                                          "::bigint", "::boolean"};
            values += fmt::format("{}${}{}", c ? "," : "", p, r == 0 ? (c < 16 ? types[c] : "::bigint") : "");
        }
        values += ")";
    }
    const std::string cols = counters("{}");
    return fmt::format(R"(
WITH batch (node, boot, allocation, seq, account, username, realm, client, transport, relay, start_ms, end_ms,
            peers, end_reason, written_ms, started, {0}) AS (VALUES {1}),
ins AS (
    INSERT INTO fleet_intervals (node, boot, allocation, seq, realm, account, written_ms, started, end_ms, {0})
    SELECT node, boot, allocation, seq, realm, account, written_ms, started, end_ms, {0} FROM batch
    ON CONFLICT DO NOTHING RETURNING node, boot, allocation, seq),
fresh AS (SELECT b.* FROM batch b JOIN ins USING (node, boot, allocation, seq)),
alloc AS (
    INSERT INTO fleet_allocations (id, node, account, username, realm, client, transport, relay, start_ms, end_ms,
                                   peers, end_reason, {0}, last_checkpoint_ms)
    SELECT allocation, max(node), max(account), max(username), max(realm), max(client), max(transport), max(relay),
           min(start_ms), max(end_ms), max(peers), max(end_reason), {2}, max(written_ms)
    FROM fresh GROUP BY allocation
    ON CONFLICT (id) DO UPDATE SET
        end_ms = GREATEST(fleet_allocations.end_ms, excluded.end_ms),
        end_reason = CASE WHEN excluded.end_ms <> 0 THEN excluded.end_reason ELSE fleet_allocations.end_reason END,
        peers = GREATEST(fleet_allocations.peers, excluded.peers), {3},
        last_checkpoint_ms = GREATEST(fleet_allocations.last_checkpoint_ms, excluded.last_checkpoint_ms)),
moves AS (
    SELECT start_ms - start_ms % 3600000 AS hour, realm, account, node, 1 AS started, {4} FROM fresh WHERE started
    UNION ALL
    SELECT written_ms - written_ms % 3600000, realm, account, node, 0, {0} FROM fresh WHERE {5}),
roll AS (
    INSERT INTO fleet_hourly (hour_start_ms, realm, account, node, allocations_started, {0})
    SELECT hour, realm, account, node, sum(started), {2} FROM moves GROUP BY hour, realm, account, node
    ON CONFLICT (hour_start_ms, realm, account, node) DO UPDATE SET
        allocations_started = fleet_hourly.allocations_started + excluded.allocations_started, {6})
SELECT count(*) FROM ins)",
                       cols, values, counters("sum({0})"), counters("{0} = fleet_allocations.{0} + excluded.{0}"),
                       counters("0 AS {0}"), any_counter(),
                       counters("{0} = fleet_hourly.{0} + excluded.{0}"));
}

}  // namespace

PgLedger::PgLedger(std::string conninfo) : conninfo_(std::move(conninfo)) {}
PgLedger::~PgLedger() = default;

bool PgLedger::is_conninfo(const std::string& text) {
    if (text.rfind("postgresql://", 0) == 0 || text.rfind("postgres://", 0) == 0) return true;
    // "host=... dbname=...": a conninfo starts with a keyword and '='.
    const auto eq = text.find('=');
    return eq != std::string::npos && eq > 0 &&
           text.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == eq;
}

bool PgLedger::connected() const { return conn_ && conn_->ok(); }

void PgLedger::drop(std::string why) {
    error_ = std::move(why);
    conn_.reset();
}

bool PgLedger::connect() {
    if (connected()) return true;
    conn_ = std::make_unique<PgConn>();
    if (!conn_->open(conninfo_, error_)) return false;
    if (migrated_) return true;
    // The first node to start migrates; the others wait on the lock and find nothing to do.
    try {
        conn_->exec("BEGIN");
        conn_->exec(fmt::format("SELECT pg_advisory_xact_lock({})", kSchemaLock));
        conn_->exec("CREATE TABLE IF NOT EXISTS turnbridge_schema (version INTEGER NOT NULL)");
        auto v = conn_->exec("SELECT version FROM turnbridge_schema");
        int from = v.rows() ? std::stoi(v.text(0, 0)) : 0;
        const auto all = migrations();
        if (from > static_cast<int>(all.size()))
            throw PgError(fmt::format("schema version {} is newer than this turnbridge's ({})", from, all.size()));
        for (int i = from; i < static_cast<int>(all.size()); ++i) conn_->exec(all[static_cast<std::size_t>(i)]);
        if (from == 0) conn_->exec("INSERT INTO turnbridge_schema VALUES (0)");
        conn_->exec(fmt::format("UPDATE turnbridge_schema SET version = {}", all.size()));
        conn_->exec("COMMIT");
        if (from < static_cast<int>(all.size())) log::info("fleet: schema migrated from version {} to {}", from, all.size());
        migrated_ = true;
        return true;
    } catch (const PgError& e) {
        error_ = e.what();
        conn_.reset();
        return false;
    }
}

long PgLedger::ship(const std::string& node, const std::vector<OutboxRow>& rows) {
    if (rows.empty()) return 0;
    if (!connect()) return -1;
    std::vector<std::string> params;
    params.reserve(rows.size() * kColumns);
    for (const auto& row : rows) {
        const auto& r = row.record;
        for (auto s : {node, std::to_string(boot_of(r.id)), r.id, std::to_string(row.seq), r.account, r.username,
                       r.realm, r.client, r.transport, r.relay, std::to_string(r.start_ms), std::to_string(r.end_ms),
                       std::to_string(r.peers), r.end_reason, std::to_string(row.written_ms),
                       std::string(row.started ? "t" : "f")})
            params.push_back(std::move(s));
        for (std::size_t i = 0; i < kCounters; ++i) params.push_back(std::to_string(counter(r.traffic, i)));
    }
    try {
        auto res = conn_->exec(ship_sql(rows.size()), params);
        return std::stol(res.text(0, 0));
    } catch (const PgError& e) {
        error_ = e.what();
        conn_.reset();  // the next call reconnects
        return -1;
    }
}

long PgLedger::ship_calls(const std::string& node, const std::vector<OutboxCall>& calls) {
    if (calls.empty()) return 0;
    if (!connect()) return -1;
    constexpr int per_row = 1 + kCallColumnCount + 16 + 1;   // node, calls, quality, trunk
    std::vector<std::string> params;
    std::vector<std::optional<std::string>> values;
    std::string rows;
    for (std::size_t r = 0; r < calls.size(); ++r) {
        const auto& c = calls[r].record;
        for (auto v : {node, c.id, c.realm, c.account, c.direction, c.remote, std::to_string(c.start_ms),
                       std::to_string(c.answer_ms), std::to_string(c.end_ms), std::to_string(c.status), c.codecs,
                       c.end_reason, std::string(c.relayed ? "t" : "f"), std::to_string(c.browser_in_packets),
                       std::to_string(c.browser_in_bytes), std::to_string(c.browser_out_packets),
                       std::to_string(c.browser_out_bytes), std::to_string(c.trunk_in_packets),
                       std::to_string(c.trunk_in_bytes), std::to_string(c.trunk_out_packets),
                       std::to_string(c.trunk_out_bytes)})
            values.emplace_back(std::move(v));
        for (const auto& k : c.quality) {
            if (!k.measured) {
                for (int i = 0; i < 4; ++i) values.emplace_back(std::nullopt);
                continue;
            }
            values.emplace_back(std::to_string(k.lost));
            for (double d : {k.loss_pct, k.jitter_ms, k.mos}) values.emplace_back(fmt::format("{}", d));
        }
        if (c.trunk.empty()) values.emplace_back(std::nullopt);   // no trunk leg
        else values.emplace_back(c.trunk);
        rows += r ? ",(" : "(";
        for (int i = 0; i < per_row; ++i)
            rows += fmt::format("{}${}", i ? "," : "", static_cast<int>(r) * per_row + i + 1);
        rows += ")";
    }
    // Types come from the table: INSERT ... VALUES infers each parameter's from its column.
    const auto sql = fmt::format("INSERT INTO fleet_calls (node, {}{}, trunk) VALUES {} ON CONFLICT DO NOTHING", kCallColumns,
                                 call_quality_pg_columns("", ""), rows);
    try {
        auto res = conn_->exec_nullable(sql, values);
        return std::stol(PQcmdTuples(res.get()));
    } catch (const PgError& e) {
        error_ = e.what();
        conn_.reset();
        return -1;
    }
}

bool PgLedger::heartbeat(const NodeHeartbeat& b) {
    if (!connect()) return false;
    try {
        conn_->exec("INSERT INTO fleet_nodes (node, region, boot, listen, relay, state, allocations, spool_rows, sip, "
                    "heartbeat) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now()) ON CONFLICT (node) DO UPDATE SET "
                    "region = $2, boot = $3, listen = $4, relay = $5, state = $6, allocations = $7, spool_rows = $8, "
                    "sip = $9, heartbeat = now()",
                    {b.node, b.region, std::to_string(b.boot), b.listen, b.relay, b.state,
                     std::to_string(b.allocations), std::to_string(b.spool_rows), b.sip});
        return true;
    } catch (const PgError& e) {
        error_ = e.what();
        conn_.reset();
        return false;
    }
}

std::vector<FleetNode> PgLedger::nodes() {
    std::vector<FleetNode> out;
    if (!connect()) return out;
    try {
        auto res = conn_->exec("SELECT node, region, boot, listen, relay, state, allocations, spool_rows, "
                               "EXTRACT(EPOCH FROM now() - heartbeat), sip FROM fleet_nodes ORDER BY node");
        for (int i = 0; i < res.rows(); ++i) {
            FleetNode n;
            n.beat.node = res.text(i, 0), n.beat.region = res.text(i, 1), n.beat.boot = std::stoll(res.text(i, 2));
            n.beat.listen = res.text(i, 3), n.beat.relay = res.text(i, 4), n.beat.state = res.text(i, 5);
            n.beat.allocations = std::stoull(res.text(i, 6)), n.beat.spool_rows = std::stoull(res.text(i, 7));
            n.age_seconds = std::stod(res.text(i, 8));
            n.beat.sip = res.text(i, 9);
            out.push_back(std::move(n));
        }
    } catch (const PgError& e) {
        error_ = e.what();
        conn_.reset();
    }
    return out;
}

}  // namespace turnbridge::accounting
