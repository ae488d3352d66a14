// SPDX-License-Identifier: Apache-2.0
// The fleet ledger read as a Store (pg_ledger.hpp): each read copies the rows it needs from
// PostgreSQL into an in-memory SQLite store and runs the SQLite store's own queries there, so a
// fleet report has exactly the columns, windows and rounding of a single node's.
#include <fmt/format.h>

#include <limits>

#include "counters.hpp"
#include "memory_store.hpp"
#include "pg_conn.hpp"

namespace turnbridge::accounting {
namespace {

using detail::counter;
using detail::kCounters;

std::string counters_list() {
    std::string out;
    for (std::size_t i = 0; i < kCounters; ++i) out += ", " + detail::counter_name(i);
    return out;
}

void read_traffic(const PgResult& r, int row, int first, Traffic& t) {
    for (std::size_t i = 0; i < kCounters; ++i) counter(t, i) = std::stoull(r.text(row, first + static_cast<int>(i)));
}

class PgStore final : public Store {
public:
    PgStore(std::string conninfo, int statement_timeout_ms)
        : conninfo_(std::move(conninfo)), statement_timeout_ms_(statement_timeout_ms) {
        reconnect();
    }

    bool write(const std::vector<AllocationRecord>&, const std::vector<CallRecord>&, std::int64_t) override {
        return false;  // nodes write through their outboxes
    }

    std::vector<UsageRow> usage(const UsageQuery& q, const std::map<std::string, Prices>& prices) override {
        if (q.by != GroupBy::Node) return copy("")->usage(q, prices);
        // One row per node: that node's rows by realm, summed.
        std::vector<UsageRow> out;
        auto nodes = exec("SELECT DISTINCT node FROM fleet_hourly UNION SELECT DISTINCT node FROM fleet_allocations "
                          "ORDER BY 1");
        for (int i = 0; i < nodes.rows(); ++i) {
            UsageQuery by_realm = q;
            by_realm.by = GroupBy::Realm;
            const auto rows = copy(nodes.text(i, 0))->usage(by_realm, prices);
            if (rows.empty()) continue;
            UsageRow sum;
            sum.key = nodes.text(i, 0);
            sum.realm = rows.front().realm;
            sum.currency = rows.front().currency;
            for (const auto& r : rows) {
                if (r.realm != sum.realm) sum.realm.clear();
                if (r.currency != sum.currency) sum.currency.clear();
                sum.allocations += r.allocations;
                sum.relayed_minutes += r.relayed_minutes;
                sum.cost += r.cost;
                for (std::size_t c = 0; c < kCounters; ++c) counter(sum.traffic, c) += counter(r.traffic, c);
            }
            out.push_back(std::move(sum));
        }
        return out;
    }

    std::optional<AllocationRecord> allocation(const std::string& id) override {
        auto res = exec(allocations_sql("WHERE id = $1"), {id});
        if (res.rows() == 0) return std::nullopt;
        return read_allocation(res, 0).record;
    }

    // The calls every node shipped, filtered and ordered as on SQLite (the in-memory copy's query).
    std::vector<CallRecord> calls(const CallQuery& q) override {
        std::vector<std::string> params{std::to_string(q.since_ms.value_or(std::numeric_limits<std::int64_t>::min())),
                                        std::to_string(q.until_ms.value_or(std::numeric_limits<std::int64_t>::max()))};
        std::string where = "WHERE start_ms >= $1 AND start_ms < $2";
        if (q.realm) params.push_back(*q.realm), where += fmt::format(" AND realm = ${}", params.size());
        if (q.user) params.push_back(*q.user), where += fmt::format(" AND account = ${}", params.size());
        return detail::memory_store({}, {}, read_calls(where, params))->calls(q);
    }

    std::map<std::string, std::uint64_t> relayed_bytes(const std::string& realm, std::int64_t since_ms) override {
        std::map<std::string, std::uint64_t> out;
        auto res = exec("SELECT account, SUM(relay_to_peer_payload_bytes + relay_to_client_payload_bytes) "
                        "FROM fleet_hourly WHERE realm = $1 AND hour_start_ms >= $2 GROUP BY account",
                        {realm, std::to_string(since_ms)});
        for (int i = 0; i < res.rows(); ++i) out[res.text(i, 0)] = std::stoull(res.text(i, 1));
        return out;
    }

private:
    PgResult exec(const std::string& sql, const std::vector<std::string>& params = {}) {
        if (!conn_->ok()) reconnect();
        try {
            return conn_->exec(sql, params);
        } catch (const PgError& e) {
            throw std::runtime_error(fmt::format("fleet database: {}", e.what()));
        }
    }

    void reconnect() {
        conn_ = std::make_unique<PgConn>();
        std::string error;
        if (!conn_->open(conninfo_, error, statement_timeout_ms_)) throw std::runtime_error(fmt::format("fleet database: {}", error));
    }

    std::vector<CallRecord> read_calls(const std::string& where, const std::vector<std::string>& params) {
        std::string quality;
        for (const char* p : kCallQualityPrefixes)
            quality += fmt::format(", {0}_lost, {0}_loss_pct, {0}_jitter_ms, {0}_mos", p);
        auto res = exec("SELECT id, realm, account, direction, remote, start_ms, answer_ms, end_ms, status, codecs, "
                        "end_reason, relayed, browser_in_packets, browser_in_bytes, browser_out_packets, "
                        "browser_out_bytes, trunk_in_packets, trunk_in_bytes, trunk_out_packets, trunk_out_bytes" +
                            quality + ", trunk FROM fleet_calls " + where,
                        params);
        std::vector<CallRecord> out;
        for (int i = 0; i < res.rows(); ++i) {
            CallRecord c;
            c.id = res.text(i, 0), c.realm = res.text(i, 1), c.account = res.text(i, 2), c.direction = res.text(i, 3);
            c.remote = res.text(i, 4), c.start_ms = std::stoll(res.text(i, 5)), c.answer_ms = std::stoll(res.text(i, 6));
            c.end_ms = std::stoll(res.text(i, 7)), c.status = std::stoi(res.text(i, 8)), c.codecs = res.text(i, 9);
            c.end_reason = res.text(i, 10), c.relayed = res.text(i, 11) == "t";
            std::uint64_t* counts[] = {&c.browser_in_packets, &c.browser_in_bytes, &c.browser_out_packets,
                                       &c.browser_out_bytes,  &c.trunk_in_packets, &c.trunk_in_bytes,
                                       &c.trunk_out_packets,  &c.trunk_out_bytes};
            for (int k = 0; k < 8; ++k) *counts[k] = std::stoull(res.text(i, 12 + k));
            for (std::size_t k = 0; k < c.quality.size(); ++k) {
                const int col = 20 + 4 * static_cast<int>(k);
                auto& m = c.quality[k];
                m.measured = !res.null(i, col);
                if (!m.measured) continue;
                m.lost = std::stoll(res.text(i, col));
                m.loss_pct = std::stod(res.text(i, col + 1));
                m.jitter_ms = std::stod(res.text(i, col + 2));
                m.mos = std::stod(res.text(i, col + 3));
            }
            c.trunk = res.text(i, 36);   // NULL (no trunk): ""
            out.push_back(std::move(c));
        }
        return out;
    }

    static std::string allocations_sql(const std::string& where) {
        return "SELECT id, account, username, realm, client, transport, relay, start_ms, end_ms, peers, end_reason, "
               "last_checkpoint_ms" + counters_list() + " FROM fleet_allocations " + where;
    }

    static detail::StoredAllocation read_allocation(const PgResult& res, int i) {
        detail::StoredAllocation a;
        auto& r = a.record;
        r.id = res.text(i, 0), r.account = res.text(i, 1), r.username = res.text(i, 2), r.realm = res.text(i, 3);
        r.client = res.text(i, 4), r.transport = res.text(i, 5), r.relay = res.text(i, 6);
        r.start_ms = std::stoll(res.text(i, 7)), r.end_ms = std::stoll(res.text(i, 8));
        r.peers = static_cast<std::uint32_t>(std::stoul(res.text(i, 9)));
        r.end_reason = res.text(i, 10);
        a.last_checkpoint_ms = std::stoll(res.text(i, 11));
        read_traffic(res, i, 12, r.traffic);
        return a;
    }

    // The ledger (or one node's part of it) in memory, hourly rows summed over nodes.
    std::unique_ptr<Store> copy(const std::string& node) {
        const bool one = !node.empty();
        std::vector<std::string> params;
        if (one) params.push_back(node);
        std::vector<detail::StoredAllocation> allocations;
        auto a = exec(allocations_sql(one ? "WHERE node = $1" : ""), params);
        for (int i = 0; i < a.rows(); ++i) allocations.push_back(read_allocation(a, i));
        std::string sums;
        for (std::size_t i = 0; i < kCounters; ++i) sums += fmt::format(", SUM({})", detail::counter_name(i));
        auto h = exec("SELECT hour_start_ms, realm, account, SUM(allocations_started)" + sums + " FROM fleet_hourly " +
                          (one ? "WHERE node = $1 " : "") + "GROUP BY hour_start_ms, realm, account",
                      params);
        std::vector<detail::HourlyRow> hourly;
        for (int i = 0; i < h.rows(); ++i) {
            detail::HourlyRow row;
            row.hour_start_ms = std::stoll(h.text(i, 0));
            row.realm = h.text(i, 1), row.account = h.text(i, 2);
            row.allocations_started = std::stoull(h.text(i, 3));
            read_traffic(h, i, 4, row.traffic);
            hourly.push_back(std::move(row));
        }
        return detail::memory_store(allocations, hourly, read_calls(one ? "WHERE node = $1" : "", params));
    }

    std::string conninfo_;
    int statement_timeout_ms_ = 0;
    std::unique_ptr<PgConn> conn_;
};

}  // namespace

std::unique_ptr<Store> PgLedger::open_store(const std::string& conninfo, int statement_timeout_ms) {
    PgLedger migrate(conninfo);  // a report on a fresh database finds empty tables, not an error
    if (!migrate.connect()) throw std::runtime_error(fmt::format("fleet database: {}", migrate.error()));
    return std::make_unique<PgStore>(conninfo, statement_timeout_ms);
}

}  // namespace turnbridge::accounting
