// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fleet-wide byte quotas (issue 15): the leases in PostgreSQL. Blocking; used from the lease
// thread only (app/fleet_leases), never from a loop that relays.
//
// fleet_quota holds per (realm, account, quota period) the budget and the bytes known used: what
// nodes reported, plus every lease that expired (counted whole: its node may have relayed all of
// it before it stopped renewing). fleet_leases holds what each node (and boot) was granted and has
// not reported yet. A user's remaining budget is budget - used - every lease held; each grant
// comes out of it, so while PostgreSQL answers the fleet never relays more than the budget.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "turnbridge/accounting/pg_ledger.hpp"
#include "turnbridge/accounting/quota_lease.hpp"

namespace turnbridge::accounting {

struct LeaseAsk {
    std::string realm, account;
    std::int64_t period_start_ms = 0;
    std::uint64_t budget = 0;   // realm.quota_bytes
    QuotaLease::Report report;
};

struct LeaseAnswer {
    std::uint64_t lease = 0;       // what this node now holds
    std::uint64_t remaining = 0;   // what nobody holds after this grant
};

// A user with nothing left to lease in its period (new Allocates get 486).
struct SpentUser {
    std::string realm, account;
    std::int64_t period_start_ms = 0;
};

class PgLeases {
public:
    PgLeases(std::string conninfo, std::string node, std::int64_t boot);

    // One round: settles every expired lease, then in one transaction applies each ask (callers
    // sort them by realm and account: every node locks users in the same order) and renews this
    // node's leases until now + `ttl`; then lists the spent users of periods since `since_ms`.
    // False when PostgreSQL failed (error()); unreachable() tells an outage from a refused query.
    bool exchange(const std::vector<LeaseAsk>& asks, std::chrono::seconds ttl, std::int64_t since_ms,
                  std::vector<LeaseAnswer>& answers, std::vector<SpentUser>& spent);
    bool unreachable() const { return !ledger_.connected(); }
    const std::string& error() const { return ledger_.error(); }

private:
    PgLedger ledger_;
    std::string node_, boot_;
};

}  // namespace turnbridge::accounting
