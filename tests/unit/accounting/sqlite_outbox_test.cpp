// SPDX-License-Identifier: Apache-2.0
// Fleet mode (issue 15): the outbox each store write fills in the same transaction, and the
// shipper's view of it (outbox.hpp).
#include <doctest/doctest.h>

#include "store_helpers.hpp"
#include "turnbridge/accounting/outbox.hpp"
#include "turnbridge/accounting/store.hpp"

using namespace turnbridge::accounting;
using namespace turnbridge::accounting::test;

namespace {

StoreOptions with_outbox(std::uint64_t max_rows) {
    StoreOptions o;
    o.outbox_max_rows = max_rows;
    return o;
}

}  // namespace

TEST_SUITE_BEGIN("accounting");

TEST_CASE("each write queues its deltas in the outbox: created once, checkpoints as increases, the end") {
    TempDir dir;
    const auto file = dir / "t.db";
    auto store = Store::open(file, true, with_outbox(1000));
    REQUIRE(store->write({record("n:1-a", "alice", "example.org", kDay, scaled(1))}, kDay + kMin));
    REQUIRE(store->write({record("n:1-a", "alice", "example.org", kDay, scaled(1))}, kDay + 2 * kMin));  // no change
    REQUIRE(store->write({record("n:1-a", "alice", "example.org", kDay, scaled(3))}, kDay + 3 * kMin));
    REQUIRE(store->write({record("n:1-a", "alice", "example.org", kDay, scaled(4), kDay + 4 * kMin, "expired")},
                         kDay + 4 * kMin));
    auto outbox = Outbox::open(file);
    const auto rows = outbox->read(100);
    REQUIRE(rows.size() == 3);  // the unchanged checkpoint queued nothing
    CHECK(rows[0].started);
    check_traffic(rows[0].record.traffic, scaled(1));
    CHECK(rows[0].written_ms == kDay + kMin);
    CHECK_FALSE(rows[1].started);
    check_traffic(rows[1].record.traffic, scaled(2));
    check_traffic(rows[2].record.traffic, scaled(1));
    CHECK(rows[2].record.end_ms == kDay + 4 * kMin);
    CHECK(rows[2].record.end_reason == "expired");
    CHECK(rows[0].seq < rows[1].seq);
    CHECK(rows[1].seq < rows[2].seq);
    CHECK(outbox->rows() == 3);
    outbox->erase_through(rows[1].seq);
    CHECK(outbox->rows() == 1);
    CHECK(outbox->read(100).front().seq == rows[2].seq);
}

TEST_CASE("no outbox without fleet mode; a full outbox drops rows, counts them, and the store stays exact") {
    TempDir dir;
    {
        auto plain = Store::open(dir / "plain.db", true);
        REQUIRE(plain->write({record("1-a", "alice", "example.org", kDay, scaled(1))}, kDay + kMin));
        CHECK(Outbox::open(dir / "plain.db")->rows() == 0);
    }
    const auto file = dir / "t.db";
    auto store = Store::open(file, true, with_outbox(2));
    REQUIRE(store->write({record("n:1-a", "alice", "example.org", kDay, scaled(1)),
                          record("n:1-b", "bob", "example.org", kDay, scaled(1))},
                         kDay + kMin));
    REQUIRE(store->write({record("n:1-a", "alice", "example.org", kDay, scaled(2))}, kDay + 2 * kMin));
    CHECK(Outbox::open(file)->rows() == 2);
    CHECK(store->outbox_dropped() == 1);
    check_traffic(store->allocation("n:1-a")->traffic, scaled(2));
}

TEST_CASE("a crash's open allocations reach the outbox as ended 'crashed', with no traffic added") {
    TempDir dir;
    const auto file = dir / "t.db";
    {
        auto store = Store::open(file, true, with_outbox(1000));
        REQUIRE(store->write({record("n:1-a", "alice", "example.org", kDay, scaled(2))}, kDay + kMin));
    }
    Outbox::open(file)->erase_through(1'000'000);  // shipped
    auto again = Store::open(file, true, with_outbox(1000));
    const auto rows = Outbox::open(file)->read(100);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].record.id == "n:1-a");
    CHECK(rows[0].record.end_reason == "crashed");
    CHECK(rows[0].record.end_ms == kDay + kMin);
    CHECK_FALSE(rows[0].started);
    check_traffic(rows[0].record.traffic, Traffic{});
}

TEST_CASE("--by node is for the fleet ledger only: a SQLite store says so") {
    TempDir dir;
    auto store = Store::open(dir / "t.db", true);
    UsageQuery q;
    q.by = GroupBy::Node;
    CHECK_THROWS_WITH_AS(store->usage(q, {}), doctest::Contains("only a fleet database"), std::runtime_error);
}

TEST_SUITE_END();
