// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fleet-wide byte quotas (issue 15): one user's leases on this node, as the lease thread keeps
// them. Sans-I/O: the slot's `used` counter and the time come in as values, and what to tell
// PostgreSQL and what limit the workers get go out as values.
//
// Every byte a node relays for a quota user is either within a lease (PostgreSQL granted it
// before it was relayed, and counts it as used when it is reported or, if the node stops
// renewing, when the lease expires) or excess (relayed while PostgreSQL was unreachable, under
// quota_outage = "grace:N" or "fail_open", reported when it is back). While PostgreSQL answers
// there is no excess: the limit is what the leases hold.
#include <chrono>
#include <cstdint>

#include "turnbridge/config/config.hpp"

namespace turnbridge::accounting {

constexpr std::uint64_t kLeaseMinSlice = 64 * 1024;      // smaller grants are not worth a round trip
constexpr std::uint64_t kLeaseFirstSlice = 1024 * 1024;  // before the user's rate is known
constexpr auto kLeaseSpan = std::chrono::seconds(10);    // a lease is sized to this much traffic
constexpr auto kLeaseIdle = std::chrono::seconds(10);    // no traffic this long: the lease goes back

// A grant of about `want` out of what nobody holds (`remaining`): never more than
// remaining / (2 x live nodes), so that the other nodes always find some left; only the last
// kLeaseMinSlice bytes go whole, to one node, rather than in ever smaller pieces.
std::uint64_t lease_grant(std::uint64_t want, std::uint64_t remaining, std::uint64_t live_nodes);

class QuotaLease {
public:
    using Time = std::chrono::steady_clock::time_point;

    // What the lease thread sends to PostgreSQL for this user.
    struct Report {
        std::uint64_t within = 0;  // bytes relayed within the lease since the last report
        std::uint64_t excess = 0;  // bytes relayed beyond it (outage policies)
        std::uint64_t hold = 0;    // of the lease, what this node keeps (0: returned)
        std::uint64_t want = 0;    // more bytes it asks for
    };

    explicit QuotaLease(std::uint64_t used = 0) : base_(used) {}

    // Reads the slot's counter: what was relayed since the last call is settled against the lease
    // (within) or counted as excess. A lease not renewed within lease_ttl is lost here.
    void observe(std::uint64_t used, Time now);
    // The lease runs low: under 5 s of this user's traffic here (or half a minimum slice).
    bool wants_more(Time now) const;
    // No traffic for kLeaseIdle with more than a minimum slice held: all but that slice goes back
    // (the slice lets traffic resume at once, before the next renewal).
    bool idle(Time now) const { return lease_ > kLeaseMinSlice && now - last_traffic_ >= kLeaseIdle; }
    // What to send; `give_back`: the user's allocations here ended, or the node stops: all of it.
    Report report(bool give_back, Time now) const;
    // PostgreSQL committed `sent`; this node's lease there is now `lease` bytes, valid until
    // `sent_at` (taken before the request went out) + `ttl`.
    void committed(const Report& sent, std::uint64_t lease, Time sent_at, std::chrono::seconds ttl);
    // PostgreSQL did not answer: the outage policy applies until the next commit.
    void unreachable() { down_ = true; }

    // The slot's limit (an absolute value of its `used` counter) under `fleet`'s quota_outage.
    std::uint64_t limit(const config::Fleet& fleet) const;

    std::uint64_t lease() const { return lease_; }
    std::uint64_t unreported() const { return within_ + excess_; }
    std::uint64_t excess_total() const { return excess_total_; }  // relayed beyond the leases, ever
    bool down() const { return down_; }
    double rate() const { return rate_; }

private:
    std::uint64_t base_ = 0;     // the slot's `used` at the last observe()
    std::uint64_t lease_ = 0;    // lease bytes not relayed yet (as of base_)
    std::uint64_t within_ = 0, excess_ = 0;  // relayed, not reported yet
    std::uint64_t outage_excess_ = 0;
    std::uint64_t excess_total_ = 0;        // excess relayed in the current outage (grace)
    Time deadline_{};            // the lease is lost then, unless renewed
    Time last_traffic_{};
    bool down_ = false;
    // This node's rate for the user, bytes per second, over windows of at least 0.5 s.
    double rate_ = 0;
    Time rate_since_{};
    std::uint64_t rate_used_ = 0;
    bool rate_known_ = false;
};

}  // namespace turnbridge::accounting
