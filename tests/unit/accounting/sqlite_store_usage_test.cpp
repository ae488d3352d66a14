// SPDX-License-Identifier: Apache-2.0
// Store::usage: grouping, filters, relayed minutes and cost over one small history whose every
// number is worked out by hand below.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "store_helpers.hpp"
#include "turnbridge/accounting/store.hpp"

using namespace turnbridge::accounting;
using namespace turnbridge::accounting::test;

namespace {

constexpr std::uint64_t kUnit = 1'000'000;  // scaled(k, kUnit): egress 18 MB per k
constexpr std::int64_t kNextDay = kDay + 24 * kHour;

const std::map<std::string, Prices> kPrices = {
    {"a.example", {0.05, "USD"}},
    {"b.example", {2.0, "EUR"}},
    // c.example has no price: it costs 0 in currency "".
};

// On 2026-11-01 (D) and 2026-11-02 (D+1), UTC:
//   A1 alice@a  10:00-11:15  k 10 written at 10:30, 30 at 11:15 (end)
//   A2 bob@a    10:20-open   k 5 at 10:30, 8 at 11:15 (last checkpoint)
//   A3 (realm alone)@a 10:40-10:50, k 2 at 10:50 (end)
//   B1 alice@b  D+1 00:10-00:40, k 100 at 00:40 (end)
//   C1 carol@c  D+1 00:20-00:30, k 1 at 00:40 (end)
// Hourly rows: D 10:00 alice 10, bob 5, "" 2 (3 started); D 11:00 alice 20, bob 3;
// D+1 00:00 alice@b 100, carol@c 1 (2 started).
struct History {
    TempDir dir;
    std::unique_ptr<Store> store;

    History() {
        store = Store::open(dir / "t.db", true);
        auto a1 = record("A1", "alice", "a.example", kDay + 10 * kHour, scaled(10, kUnit));
        auto a2 = record("A2", "bob", "a.example", kDay + 10 * kHour + 20 * kMin, scaled(5, kUnit));
        auto a3 = record("A3", "", "a.example", kDay + 10 * kHour + 40 * kMin, scaled(2, kUnit),
                         kDay + 10 * kHour + 50 * kMin, "client-gone");
        REQUIRE(store->write({a1, a2}, kDay + 10 * kHour + 30 * kMin));
        REQUIRE(store->write({a3}, kDay + 10 * kHour + 50 * kMin));
        a1.traffic = scaled(30, kUnit);
        a1.end_ms = kDay + 11 * kHour + 15 * kMin;
        a1.end_reason = "refreshed-to-0";
        a2.traffic = scaled(8, kUnit);
        REQUIRE(store->write({a1, a2}, kDay + 11 * kHour + 15 * kMin));
        auto b1 = record("B1", "alice", "b.example", kNextDay + 10 * kMin, scaled(100, kUnit), kNextDay + 40 * kMin,
                         "expired");
        auto c1 = record("C1", "carol", "c.example", kNextDay + 20 * kMin, scaled(1, kUnit), kNextDay + 30 * kMin,
                         "kicked");
        REQUIRE(store->write({b1, c1}, kNextDay + 40 * kMin));
    }

    std::vector<UsageRow> usage(GroupBy by, std::optional<std::int64_t> since = {}, std::optional<std::int64_t> until = {},
                                std::optional<std::string> user = {}, std::optional<std::string> realm = {}) {
        UsageQuery q;
        q.by = by;
        q.since_ms = since;
        q.until_ms = until;
        q.user = std::move(user);
        q.realm = std::move(realm);
        return store->usage(q, kPrices);
    }
};

struct Expected {
    const char* key;
    const char* realm;
    std::uint64_t allocations;
    double minutes;
    std::uint64_t k;
    double cost;
    const char* currency;
};

void check_rows(const std::vector<UsageRow>& rows, const std::vector<Expected>& expected) {
    CHECK(rows.size() == expected.size());
    for (std::size_t i = 0; i < std::min(rows.size(), expected.size()); ++i) {
        const auto& r = rows[i];
        const auto& e = expected[i];
        CAPTURE(i);
        CAPTURE(r.key);
        CHECK(r.key == e.key);
        CHECK(r.realm == e.realm);
        CHECK(r.allocations == e.allocations);
        CHECK(r.relayed_minutes == doctest::Approx(e.minutes));
        check_traffic(r.traffic, scaled(e.k, kUnit));
        CHECK(r.cost == doctest::Approx(e.cost));
        CHECK(r.currency == e.currency);
    }
}

// Egress is 18 MB per k, so a k costs 0.018 GB x price.
double cost(std::uint64_t k, double price) { return static_cast<double>(k) * 0.018 * price; }

}  // namespace

TEST_SUITE_BEGIN("accounting");

TEST_CASE("usage by user: one row per (realm, account), the realm alone as \"(realm)\"") {
    History h;
    check_rows(h.usage(GroupBy::User), {
                   {"(realm)", "a.example", 1, 10, 2, cost(2, 0.05), "USD"},
                   {"alice", "a.example", 1, 75, 30, cost(30, 0.05), "USD"},
                   {"bob", "a.example", 1, 55, 8, cost(8, 0.05), "USD"},  // open: up to its checkpoint
                   {"alice", "b.example", 1, 30, 100, cost(100, 2.0), "EUR"},
                   {"carol", "c.example", 1, 10, 1, 0, ""},
               });
}

TEST_CASE("usage by realm sums its users; minutes are the allocations' durations") {
    History h;
    check_rows(h.usage(GroupBy::Realm), {
                   {"a.example", "a.example", 3, 10 + 75 + 55, 40, cost(40, 0.05), "USD"},
                   {"b.example", "b.example", 1, 30, 100, cost(100, 2.0), "EUR"},
                   {"c.example", "c.example", 1, 10, 1, 0, ""},
               });
}

TEST_CASE("usage by day and by hour (UTC): a row mixing realms has realm \"\" and, with different currencies, currency \"\"") {
    History h;
    check_rows(h.usage(GroupBy::Day), {
                   {"2026-11-01", "a.example", 3, 140, 40, cost(40, 0.05), "USD"},
                   {"2026-11-02", "", 2, 40, 101, cost(100, 2.0), ""},
               });
    // Minutes split at the hour: 10:00 has alice 60 + bob 40 + A3 10; 11:00 alice 15 + bob 15.
    check_rows(h.usage(GroupBy::Hour), {
                   {"2026-11-01T10:00Z", "a.example", 3, 110, 17, cost(17, 0.05), "USD"},
                   {"2026-11-01T11:00Z", "a.example", 0, 30, 23, cost(23, 0.05), "USD"},
                   {"2026-11-02T00:00Z", "", 2, 40, 101, cost(100, 2.0), ""},
               });
}

TEST_CASE("usage by allocation: whole allocations started in [since, until), oldest first") {
    History h;
    check_rows(h.usage(GroupBy::Allocation), {
                   {"A1", "a.example", 1, 75, 30, cost(30, 0.05), "USD"},
                   {"A2", "a.example", 1, 55, 8, cost(8, 0.05), "USD"},
                   {"A3", "a.example", 1, 10, 2, cost(2, 0.05), "USD"},
                   {"B1", "b.example", 1, 30, 100, cost(100, 2.0), "EUR"},
                   {"C1", "c.example", 1, 10, 1, 0, ""},
               });
    // 10:40 is exclusive; A1 started before 10:10.
    check_rows(h.usage(GroupBy::Allocation, kDay + 10 * kHour + 10 * kMin, kDay + 10 * kHour + 40 * kMin),
               {{"A2", "a.example", 1, 55, 8, cost(8, 0.05), "USD"}});
    check_rows(h.usage(GroupBy::Allocation, {}, {}, {}, "b.example"), {{"B1", "b.example", 1, 30, 100, cost(100, 2.0), "EUR"}});
    check_rows(h.usage(GroupBy::Allocation, {}, {}, "alice"), {
                   {"A1", "a.example", 1, 75, 30, cost(30, 0.05), "USD"},
                   {"B1", "b.example", 1, 30, 100, cost(100, 2.0), "EUR"},
               });
}

TEST_CASE("usage filters: user, realm, and since/until taken in whole hours") {
    History h;
    check_rows(h.usage(GroupBy::User, {}, {}, "alice"), {
                   {"alice", "a.example", 1, 75, 30, cost(30, 0.05), "USD"},
                   {"alice", "b.example", 1, 30, 100, cost(100, 2.0), "EUR"},
               });
    check_rows(h.usage(GroupBy::User, {}, {}, "alice", "b.example"), {{"alice", "b.example", 1, 30, 100, cost(100, 2.0), "EUR"}});
    check_rows(h.usage(GroupBy::User, {}, {}, ""), {{"(realm)", "a.example", 1, 10, 2, cost(2, 0.05), "USD"}});
    check_rows(h.usage(GroupBy::User, {}, {}, "nobody"), {});
    check_rows(h.usage(GroupBy::Realm, {}, {}, {}, "z.example"), {});

    // From 11:00: the 11:00 bucket on; minutes from 11:00 on.
    const std::vector<Expected> from_11 = {
        {"a.example", "a.example", 0, 15 + 15, 23, cost(23, 0.05), "USD"},
        {"b.example", "b.example", 1, 30, 100, cost(100, 2.0), "EUR"},
        {"c.example", "c.example", 1, 10, 1, 0, ""},
    };
    check_rows(h.usage(GroupBy::Realm, kDay + 11 * kHour), from_11);
    // 10:30 is rounded up to 11:00: a bucket is in when its start is.
    check_rows(h.usage(GroupBy::Realm, kDay + 10 * kHour + 30 * kMin), from_11);
    // Until 11:00 (exclusive): the 10:00 bucket only.
    check_rows(h.usage(GroupBy::User, {}, kDay + 11 * kHour), {
                   {"(realm)", "a.example", 1, 10, 2, cost(2, 0.05), "USD"},
                   {"alice", "a.example", 1, 60, 10, cost(10, 0.05), "USD"},
                   {"bob", "a.example", 1, 40, 5, cost(5, 0.05), "USD"},
               });
    check_rows(h.usage(GroupBy::Day, kNextDay), {{"2026-11-02", "", 2, 40, 101, cost(100, 2.0), ""}});
}

TEST_CASE("relayed minutes fill the hours an allocation ran without writing traffic") {
    TempDir dir;
    auto store = Store::open(dir / "t.db", true);
    auto a = record("L", "lee", "a.example", kDay + 9 * kHour + 30 * kMin, scaled(1));
    REQUIRE(store->write({a}, kDay + 9 * kHour + 31 * kMin));
    a.traffic = scaled(3);
    a.end_ms = kDay + 12 * kHour + 6 * kMin;
    a.end_reason = "expired";
    REQUIRE(store->write({a}, kDay + 12 * kHour + 6 * kMin));
    UsageQuery q;
    q.by = GroupBy::Hour;
    const auto rows = store->usage(q, {});
    REQUIRE(rows.size() == 4);
    const char* keys[] = {"2026-11-01T09:00Z", "2026-11-01T10:00Z", "2026-11-01T11:00Z", "2026-11-01T12:00Z"};
    const double minutes[] = {30, 60, 60, 6};
    const std::uint64_t k[] = {1, 0, 0, 2};
    for (std::size_t i = 0; i < 4; ++i) {
        CAPTURE(i);
        CHECK(rows[i].key == keys[i]);
        CHECK(rows[i].realm == "a.example");
        CHECK(rows[i].allocations == (i == 0 ? 1u : 0u));
        CHECK(rows[i].relayed_minutes == doctest::Approx(minutes[i]));
        check_traffic(rows[i].traffic, scaled(k[i]));
        CHECK(rows[i].cost == 0);
        CHECK(rows[i].currency.empty());  // no prices given
    }
}

TEST_SUITE_END();
