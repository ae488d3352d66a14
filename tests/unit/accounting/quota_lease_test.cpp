// SPDX-License-Identifier: Apache-2.0
// accounting::QuotaLease and lease_grant (issue 15: fleet-wide byte quotas by leases), and the
// packet path's turn::LeaseSlot. Time is stepped by hand.
#include <doctest/doctest.h>

#include <limits>

#include "turnbridge/accounting/quota_lease.hpp"
#include "turnbridge/turn/lease_slot.hpp"

using namespace turnbridge;
using namespace turnbridge::accounting;
using std::chrono::seconds;

namespace {

const QuotaLease::Time kT0 = QuotaLease::Time{} + std::chrono::hours(1);
constexpr auto kMs = std::chrono::milliseconds(1);

config::Fleet fleet(config::Fleet::QuotaOutage policy, std::uint64_t grace = 1000) {
    config::Fleet f;
    f.quota_outage = policy;
    f.quota_grace_bytes = grace;
    return f;
}

}  // namespace

TEST_SUITE_BEGIN("accounting");

TEST_CASE("lease grant: about the wanted bytes, never more than remaining / (2 x live nodes)") {
    CHECK(lease_grant(1'000'000, 60'000'000, 3) == 1'000'000);
    CHECK(lease_grant(50'000'000, 60'000'000, 3) == 10'000'000);
    CHECK(lease_grant(50'000'000, 60'000'000, 0) == 30'000'000);  // the asking node is alive
    // The last minimum slice goes whole to one node, never in ever smaller pieces.
    CHECK(lease_grant(1'000'000, 200'000, 3) == kLeaseMinSlice);
    CHECK(lease_grant(1'000'000, 1000, 3) == 1000);
    CHECK(lease_grant(10, 1000, 3) == 10);
    CHECK(lease_grant(1'000'000, 0, 3) == 0);
}

TEST_CASE("lease slot: take() never lets used pass the limit; refused bytes are counted, not used") {
    turn::LeaseSlot slot;
    slot.limit = 1000;
    CHECK(slot.take(600));
    CHECK_FALSE(slot.take(600));
    CHECK(slot.take(400));
    CHECK_FALSE(slot.take(1));
    CHECK(slot.used == 1000);
    CHECK(slot.refused == 601);
}

TEST_CASE("quota lease: the first ask is a first slice; traffic settles within the lease; renewed when low") {
    QuotaLease l;
    l.observe(0, kT0);
    CHECK(l.wants_more(kT0));
    auto r = l.report(false, kT0);
    CHECK(r.want == kLeaseFirstSlice);
    CHECK(r.hold == 0);
    l.committed(r, 300'000, kT0, seconds(5));
    CHECK(l.limit(fleet(config::Fleet::QuotaOutage::FailClosed)) == 300'000);
    // 100 kB/s for 2 s: settled within the lease; 5 s of traffic (500 kB) is more than what is left.
    l.observe(100'000, kT0 + seconds(1));
    l.observe(200'000, kT0 + seconds(2));
    CHECK(l.lease() == 100'000);
    CHECK(l.rate() == doctest::Approx(100'000));
    CHECK(l.wants_more(kT0 + seconds(2)));
    r = l.report(false, kT0 + seconds(2));
    CHECK(r.within == 200'000);
    CHECK(r.excess == 0);
    CHECK(r.hold == 100'000);
    CHECK(r.want == 900'000);  // 10 s of traffic in all
    l.committed(r, 1'000'000, kT0 + seconds(2), seconds(5));
    CHECK(l.unreported() == 0);
    CHECK(l.limit(fleet(config::Fleet::QuotaOutage::FailClosed)) == 1'200'000);
    // Giving back: hold 0, nothing more wanted.
    r = l.report(true, kT0 + seconds(2));
    CHECK(r.hold == 0);
    CHECK(r.want == 0);
}

TEST_CASE("quota lease: idle for 10 s: all but a minimum slice goes back, and it stays idle") {
    QuotaLease l;
    l.observe(0, kT0);
    l.committed(l.report(false, kT0), 100'000, kT0, seconds(30));
    l.observe(10, kT0 + seconds(1));
    CHECK_FALSE(l.idle(kT0 + seconds(10)));
    l.observe(10, kT0 + seconds(11));
    CHECK(l.idle(kT0 + seconds(11)));
    const auto r = l.report(false, kT0 + seconds(11));
    CHECK(r.hold == kLeaseMinSlice);
    CHECK(r.want == 0);
    l.committed(r, r.hold, kT0 + seconds(11), seconds(30));
    CHECK_FALSE(l.idle(kT0 + seconds(30)));
    CHECK_FALSE(l.wants_more(kT0 + seconds(30)));
    CHECK(l.limit(fleet(config::Fleet::QuotaOutage::FailClosed)) == 10 + kLeaseMinSlice);
}

TEST_CASE("quota lease while PostgreSQL is unreachable: fail_closed relays only the lease, until lease_ttl") {
    const auto f = fleet(config::Fleet::QuotaOutage::FailClosed);
    QuotaLease l;
    l.observe(0, kT0);
    l.committed(l.report(false, kT0), 5000, kT0, seconds(3));
    l.unreachable();
    CHECK(l.limit(f) == 5000);
    l.observe(2000, kT0 + seconds(1));
    CHECK(l.limit(f) == 5000);
    // lease_ttl since the last renewal: PostgreSQL counts the lease as used; not one byte more here.
    l.observe(2500, kT0 + seconds(3));
    CHECK(l.lease() == 0);
    CHECK(l.limit(f) == 2500);
    CHECK(l.report(false, kT0 + seconds(3)).within == 2500);
}

TEST_CASE("quota lease while PostgreSQL is unreachable: grace:N allows N bytes beyond the leases per outage") {
    const auto f = fleet(config::Fleet::QuotaOutage::Grace, 1000);
    QuotaLease l;
    l.observe(0, kT0);
    l.committed(l.report(false, kT0), 5000, kT0, seconds(3));
    l.unreachable();
    CHECK(l.limit(f) == 6000);
    l.observe(5600, kT0 + seconds(1));  // 600 beyond the lease
    CHECK(l.limit(f) == 6000);
    l.observe(5600, kT0 + seconds(4));  // the lease expired: what is left of the grace stays
    CHECK(l.limit(f) == 6000);
    const auto r = l.report(false, kT0 + seconds(4));
    CHECK(r.within == 5000);
    CHECK(r.excess == 600);
    // Back: the excess is reported; a later outage has its own grace.
    l.committed(r, 0, kT0 + seconds(4), seconds(3));
    CHECK(l.limit(f) == 5600);
    l.unreachable();
    CHECK(l.limit(f) == 6600);
}

TEST_CASE("quota lease while PostgreSQL is unreachable: fail_open relays on, and counts it as excess") {
    const auto f = fleet(config::Fleet::QuotaOutage::FailOpen);
    QuotaLease l;
    l.observe(0, kT0);
    l.committed(l.report(false, kT0), 5000, kT0, seconds(3));
    CHECK(l.limit(f) == 5000);
    l.unreachable();
    CHECK(l.limit(f) == std::numeric_limits<std::uint64_t>::max());
    l.observe(1'000'000, kT0 + 500 * kMs);
    CHECK(l.report(false, kT0 + 500 * kMs).excess == 995'000);
    CHECK(l.excess_total() == 995'000);
}

TEST_SUITE_END();
