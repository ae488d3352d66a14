// SPDX-License-Identifier: Apache-2.0
// Fleet-wide byte quota leases in PostgreSQL (pg_leases.hpp). Each user's fleet_quota row is
// locked (the upsert) before its leases are read and changed, so two nodes asking for the same
// user take turns and never grant the same bytes twice.
#include "turnbridge/accounting/pg_leases.hpp"

#include <fmt/format.h>

#include "pg_conn.hpp"

namespace turnbridge::accounting {
namespace {

constexpr int kMaxSpentRows = 100'000;  // the 486 list one node keeps

// A lease not renewed in time is gone; it counts as used, whole (pg_leases.hpp).
constexpr const char* kSettleExpired = R"(
WITH gone AS (DELETE FROM fleet_leases WHERE expires < now() RETURNING realm, account, period_start_ms, granted),
sums AS (SELECT realm, account, period_start_ms, sum(granted) AS g FROM gone GROUP BY 1, 2, 3)
UPDATE fleet_quota q SET used = q.used + sums.g FROM sums
WHERE q.realm = sums.realm AND q.account = sums.account AND q.period_start_ms = sums.period_start_ms)";

// A user's first lease of a period: what the ledger already holds for the period counts as used.
constexpr const char* kLockUser = R"(
INSERT INTO fleet_quota (realm, account, period_start_ms, budget, used)
SELECT $1::text, $2::text, $3::bigint, $4::bigint,
       coalesce(sum(relay_to_peer_payload_bytes + relay_to_client_payload_bytes), 0)
FROM fleet_hourly WHERE realm = $1 AND account = $2 AND hour_start_ms >= $3::bigint
ON CONFLICT (realm, account, period_start_ms) DO UPDATE SET budget = excluded.budget
RETURNING used, budget)";

constexpr const char* kLeases = R"(
SELECT coalesce(sum(granted) FILTER (WHERE node = $4 AND boot = $5::bigint), -1),
       coalesce(sum(granted) FILTER (WHERE NOT (node = $4 AND boot = $5::bigint)), 0)
FROM fleet_leases WHERE realm = $1 AND account = $2 AND period_start_ms = $3::bigint)";

constexpr const char* kSpent = R"(
SELECT q.realm, q.account, q.period_start_ms FROM fleet_quota q
WHERE q.period_start_ms >= $1::bigint AND q.used + coalesce((SELECT sum(granted) FROM fleet_leases l
      WHERE l.realm = q.realm AND l.account = q.account AND l.period_start_ms = q.period_start_ms), 0) >= q.budget
LIMIT {})";

std::uint64_t u64(const std::string& s) { return static_cast<std::uint64_t>(std::max<long long>(0, std::stoll(s))); }

}  // namespace

PgLeases::PgLeases(std::string conninfo, std::string node, std::int64_t boot)
    : ledger_(std::move(conninfo)), node_(std::move(node)), boot_(std::to_string(boot)) {}

bool PgLeases::exchange(const std::vector<LeaseAsk>& asks, std::chrono::seconds ttl, std::int64_t since_ms,
                        std::vector<LeaseAnswer>& answers, std::vector<SpentUser>& spent) {
    answers.clear();
    if (!ledger_.connect()) return false;
    PgConn& c = *ledger_.session();
    const std::string ttl_text = fmt::format("{} seconds", ttl.count());
    try {
        c.exec("SELECT 1");  // a connection the database dropped fails here, not mid-transaction
        c.exec(kSettleExpired);
        c.exec("BEGIN");
        const std::string nodes_sql = "SELECT count(*) FROM fleet_nodes WHERE heartbeat > now() - interval '3 seconds'";
        const std::uint64_t live = std::max<std::uint64_t>(1, u64(c.exec(nodes_sql).text(0, 0)));
        for (const auto& a : asks) {
            const std::string period = std::to_string(a.period_start_ms);
            auto q = c.exec(kLockUser, {a.realm, a.account, period, std::to_string(a.budget)});
            std::uint64_t used = u64(q.text(0, 0));
            auto l = c.exec(kLeases, {a.realm, a.account, period, node_, boot_});
            const long long mine = std::stoll(l.text(0, 0));
            const std::uint64_t others = u64(l.text(0, 1));
            // Our lease still there: what we relayed within it moves from it to used, and we keep
            // at most what is left of it. Gone (expired): it was counted whole, so only the excess adds.
            std::uint64_t hold = 0;
            if (mine >= 0) {
                const std::uint64_t row = static_cast<std::uint64_t>(mine);
                used += a.report.within + a.report.excess;
                hold = std::min(a.report.hold, row - std::min(row, a.report.within));
            } else {
                used += a.report.excess;
            }
            const std::uint64_t held = others + hold;
            std::uint64_t remaining = a.budget > used + held ? a.budget - used - held : 0;
            const std::uint64_t grant = lease_grant(a.report.want, remaining, live);
            remaining -= grant;
            c.exec("UPDATE fleet_quota SET used = $4::bigint WHERE realm = $1 AND account = $2 AND period_start_ms = $3::bigint",
                   {a.realm, a.account, period, std::to_string(used)});
            if (hold + grant == 0) {
                if (mine >= 0)
                    c.exec("DELETE FROM fleet_leases WHERE realm = $1 AND account = $2 AND period_start_ms = $3::bigint "
                           "AND node = $4 AND boot = $5::bigint",
                           {a.realm, a.account, period, node_, boot_});
            } else {
                c.exec("INSERT INTO fleet_leases (realm, account, period_start_ms, node, boot, granted, expires) "
                       "VALUES ($1, $2, $3::bigint, $4, $5::bigint, $6::bigint, now() + $7::interval) "
                       "ON CONFLICT (realm, account, period_start_ms, node, boot) DO UPDATE SET "
                       "granted = excluded.granted, expires = excluded.expires",
                       {a.realm, a.account, period, node_, boot_, std::to_string(hold + grant), ttl_text});
            }
            answers.push_back(LeaseAnswer{hold + grant, remaining});
        }
        c.exec("COMMIT");
        spent.clear();
        auto s = c.exec(fmt::format(kSpent, kMaxSpentRows), {std::to_string(since_ms)});
        for (int i = 0; i < s.rows(); ++i)
            spent.push_back(SpentUser{s.text(i, 0), s.text(i, 1), std::stoll(s.text(i, 2))});
        return true;
    } catch (const std::exception& e) {
        // A refused statement (a deadlock, a constraint) leaves the connection up: roll back and
        // retry at the next round. A dropped connection is an outage (quota_outage decides).
        answers.clear();
        if (c.ok()) {
            try {
                c.exec("ROLLBACK");
            } catch (const std::exception&) {
            }
        }
        if (!c.ok()) ledger_.drop(e.what());
        return false;
    }
}

}  // namespace turnbridge::accounting
