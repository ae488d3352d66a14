// SPDX-License-Identifier: Apache-2.0
// The store's reads: usage rows (per allocation, or summed from the hourly rollups and the
// calls), one allocation, the call listing and the quota's relayed bytes (store.hpp).
#include <algorithm>
#include <fmt/format.h>

#include "sqlite_store.hpp"
#include "turnbridge/base/log.hpp"

namespace turnbridge::accounting::sqlite {
namespace {

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

void add_traffic(Traffic& into, const Traffic& t) {
    for (std::size_t i = 0; i < kCounters; ++i) counter(into, i) += counter(t, i);
}

// The key of the usage row a bucket, allocation or call of (time, realm, account) belongs to.
RowKey row_key(GroupBy by, std::int64_t time, const std::string& realm, const std::string& account) {
    switch (by) {
        case GroupBy::User: return std::make_tuple(std::int64_t{0}, realm, account);
        case GroupBy::Realm: return std::make_tuple(std::int64_t{0}, realm, std::string());
        case GroupBy::Trunk: return std::make_tuple(std::int64_t{0}, realm, account);   // account: the trunk
        case GroupBy::Day: return std::make_tuple(detail::floor_to(time, kDayMs), std::string(), std::string());
        default: return std::make_tuple(detail::floor_to(time, kHourMs), std::string(), std::string());
    }
}

}  // namespace

std::vector<UsageRow> SqliteStore::usage(const UsageQuery& q, const std::map<std::string, Prices>& prices) {
    if (q.by == GroupBy::Node)
        throw std::runtime_error(fmt::format("{}: by node: only a fleet database (postgresql://...) has nodes", file_));
    try {
        // One read transaction: every table from the same snapshot.
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

std::vector<UsageRow> SqliteStore::usage_by_buckets(const UsageQuery& q, const std::map<std::string, Prices>& prices) {
    RowAccs acc;
    const auto key = [&](std::int64_t time, const std::string& realm, const std::string& account) {
        return row_key(q.by, time, realm, account);
    };
    const bool by_time = q.by == GroupBy::Day || q.by == GroupBy::Hour;
    // Issue 14: only calls have a trunk; the relayed traffic is in no trunk's row.
    const bool traffic = q.by != GroupBy::Trunk;

    auto s = query(fmt::format("SELECT hour_start_ms, realm, account, allocations_started, {} FROM hourly "
                               "WHERE hour_start_ms >= ?1 AND hour_start_ms < ?2 AND {}",
                               counter_columns("{}"), kFilters));
    s.bind(1, q.since_ms.value_or(kMinMs)).bind(2, q.until_ms.value_or(kMaxMs)).bind(3, q.realm).bind(4, q.user);
    while (traffic && s.step()) {
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
    while (traffic && m.step()) {
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
            case GroupBy::Trunk: row.key = account.empty() ? "(none)" : account; break;
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

// Calls that started in [from, to), summed per (realm, account, trunk, codecs) and the day or
// hour they started in, each sum into the row it belongs to.
void SqliteStore::add_calls(const UsageQuery& q, std::int64_t from, std::int64_t to, RowAccs& acc) {
    const std::int64_t step = q.by == GroupBy::Day ? kDayMs : q.by == GroupBy::Hour ? kHourMs : 0;
    auto c = query(fmt::format(
        "SELECT realm, account, {}, codecs, CASE ?5 WHEN 0 THEN 0 ELSE start_ms - ((start_ms % ?5) + ?5) % ?5 END AS bucket, "
        "COUNT(*), SUM(answer_ms != 0), SUM(CASE WHEN answer_ms != 0 AND end_ms > answer_ms THEN end_ms - answer_ms "
        "ELSE 0 END), SUM(browser_in_bytes + browser_out_bytes), SUM(trunk_in_bytes + trunk_out_bytes) FROM calls "
        "WHERE start_ms >= ?1 AND start_ms < ?2 AND {} GROUP BY realm, account, 3, codecs, bucket",
        has_trunk_ ? "COALESCE(trunk, '')" : "''", kFilters));
    c.bind(1, from).bind(2, to).bind(3, q.realm).bind(4, q.user).bind(5, step);
    while (c.step()) {
        const std::string realm = c.text(0);
        RowAcc& a = acc[row_key(q.by, c.int64(4), realm, c.text(q.by == GroupBy::Trunk ? 2 : 1))];
        a.realms.insert(realm);
        CallTotals& t = a.row.calls;
        t.calls += c.uint64(5);
        t.answered += c.uint64(6);
        t.answered_ms += c.int64(7);
        t.browser_bytes += c.uint64(8);
        t.trunk_bytes += c.uint64(9);
        if (const std::string codecs = c.text(3); !codecs.empty()) t.codecs[codecs] += c.uint64(5);
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

CallRecord read_call(const Query& s, int first, bool quality, bool trunk) {
    CallRecord c;
    c.id = s.text(first);
    c.realm = s.text(first + 1);
    c.account = s.text(first + 2);
    c.direction = s.text(first + 3);
    c.remote = s.text(first + 4);
    c.start_ms = s.int64(first + 5);
    c.answer_ms = s.int64(first + 6);
    c.end_ms = s.int64(first + 7);
    c.status = static_cast<int>(s.int64(first + 8));
    c.codecs = s.text(first + 9);
    c.end_reason = s.text(first + 10);
    c.relayed = s.int64(first + 11) != 0;
    std::uint64_t* counts[] = {&c.browser_in_packets, &c.browser_in_bytes, &c.browser_out_packets,
                               &c.browser_out_bytes,  &c.trunk_in_packets, &c.trunk_in_bytes,
                               &c.trunk_out_packets,  &c.trunk_out_bytes};
    for (int i = 0; i < 8; ++i) *counts[i] = s.uint64(first + 12 + i);
    for (std::size_t i = 0; quality && i < c.quality.size(); ++i) {
        const int col = first + 20 + 4 * static_cast<int>(i);
        CallQuality& k = c.quality[i];
        k.measured = !s.is_null(col);
        if (!k.measured) continue;
        k.lost = s.int64(col);
        k.loss_pct = s.real(col + 1);
        k.jitter_ms = s.real(col + 2);
        k.mos = s.real(col + 3);
    }
    if (trunk) c.trunk = s.text(first + 20 + (quality ? 16 : 0));   // NULL: ""
    return c;
}

std::vector<CallRecord> SqliteStore::calls(const CallQuery& q) {
    if (!has_calls_) return {};
    try {
        // Only the filters given, so that SQLite can use the (realm, account, start_ms) index.
        std::string sql = fmt::format("SELECT {}{}{}{} FROM calls WHERE start_ms >= ?1 AND start_ms < ?2", kCallColumns,
                                      has_quality_ ? ", " : "", has_quality_ ? call_quality_columns() : std::string(),
                                      has_trunk_ ? ", trunk" : "");
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
            CallRecord c = read_call(s, 0, has_quality_, has_trunk_);
            out.push_back(std::move(c));
        }
        return out;
    } catch (const SqliteError& e) {
        throw std::runtime_error(fmt::format("{}: {}", file_, e.what()));
    }
}

std::map<std::string, std::uint64_t> SqliteStore::relayed_bytes(const std::string& realm, std::int64_t since_ms) {
    std::map<std::string, std::uint64_t> out;
    try {
        auto q = query("SELECT account, SUM(relay_to_peer_payload_bytes + relay_to_client_payload_bytes) "
                       "FROM hourly WHERE realm = ?1 AND hour_start_ms >= ?2 GROUP BY account");
        q.bind(1, realm).bind(2, since_ms);
        while (q.step()) out[q.text(0)] = q.uint64(1);
    } catch (const SqliteError& e) {
        log::warn("accounting: cannot read relayed bytes from {}: {}", file_, e.what());
        out.clear();
    }
    return out;
}

}  // namespace turnbridge::accounting::sqlite
