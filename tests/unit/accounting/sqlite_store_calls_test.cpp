// SPDX-License-Identifier: Apache-2.0
// The store's `calls` table (issue 4): round trip, the shared transaction, the migration of a
// schema-1 database, the call listing's filters and the call figures of usage rows.
#include <doctest/doctest.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "store_helpers.hpp"
#include "turnbridge/accounting/store.hpp"

using namespace turnbridge::accounting;
using namespace turnbridge::accounting::test;

namespace {

const std::map<std::string, Prices> kNoPrices;

std::vector<UsageRow> usage(Store& s, GroupBy by, std::optional<std::string> user = std::nullopt,
                            std::optional<std::int64_t> since = std::nullopt,
                            std::optional<std::int64_t> until = std::nullopt) {
    UsageQuery q;
    q.by = by;
    q.user = std::move(user);
    q.since_ms = since;
    q.until_ms = until;
    return s.usage(q, kNoPrices);
}

std::vector<std::string> ids(const std::vector<CallRecord>& calls) {
    std::vector<std::string> out;
    for (const auto& c : calls) out.push_back(c.id);
    return out;
}

const UsageRow* row_of(const std::vector<UsageRow>& rows, const std::string& key) {
    for (const auto& r : rows)
        if (r.key == key) return &r;
    return nullptr;
}

}  // namespace

TEST_SUITE_BEGIN("accounting");

TEST_CASE("a call record round-trips through the store, every field and 64-bit counters intact") {
    TempDir dir;
    auto store = Store::open(dir / "t.db", true);
    auto c = call("c1-1", "alice", "example.org", kDay + 5 * kMin, 95'000, "opus/PCMA", 50'000'000);
    c.direction = "inbound";
    c.remote = "+15550100 \"quoted\", with a comma";
    c.relayed = false;
    c.status = 200;
    REQUIRE(store->write({}, {c}, kDay + kHour));
    const auto got = store->calls({});
    REQUIRE(got.size() == 1);
    check_call(got[0], c);
    CHECK(got[0].duration_ms() == 95'000);
    // A reader sees the same.
    const auto read = Store::open(dir / "t.db", false)->calls({});
    REQUIRE(read.size() == 1);
    check_call(read[0], c);
}

TEST_CASE("a call written again (a retried batch) replaces its row rather than adding one") {
    TempDir dir;
    auto store = Store::open(dir / "t.db", true);
    auto c = call("c1-1", "alice", "example.org", kDay, 60'000);
    REQUIRE(store->write({}, {c}, kDay + kHour));
    c.end_reason = "bye-trunk";
    REQUIRE(store->write({}, {c}, kDay + kHour));
    const auto got = store->calls({});
    REQUIRE(got.size() == 1);
    CHECK(got[0].end_reason == "bye-trunk");
    CHECK(usage(*store, GroupBy::User)[0].calls.calls == 1);
}

TEST_CASE("calls and allocations share one transaction: a write that fails keeps neither, a retry writes both") {
    TempDir dir;
    const auto file = dir / "t.db";
    Store::open(file, true)->write({record("i1-a", "alice", "example.org", kDay, scaled(1))}, kDay + 1000);
    // max_page_count 1: no page more than now, as on a full disk.
    auto full = Store::open(file, true, StoreOptions{5000, 1});
    std::vector<CallRecord> calls;
    for (int i = 0; i < 300; ++i) {
        auto c = call("c1-" + std::to_string(i), "alice", "example.org", kDay + i * 1000, 30'000);
        c.remote = std::string(200, '5');
        calls.push_back(c);
    }
    const std::vector<AllocationRecord> batch = {record("i1-a", "alice", "example.org", kDay, scaled(2)),
                                                 record("i1-b", "bob", "example.org", kDay, scaled(1))};
    bool ok = true;
    CHECK_NOTHROW(ok = full->write(batch, calls, kDay + kHour));
    CHECK_FALSE(ok);
    CHECK(full->calls({}).empty());
    CHECK_FALSE(full->allocation("i1-b"));
    check_traffic(full->allocation("i1-a")->traffic, scaled(1));
    full.reset();
    auto roomy = Store::open(file, true);
    REQUIRE(roomy->write(batch, calls, kDay + kHour));
    CHECK(roomy->calls({}).size() == 300);
    CHECK(roomy->allocation("i1-b"));
    check_traffic(roomy->allocation("i1-a")->traffic, scaled(2));
}

TEST_CASE("a schema-1 database (no calls table) is migrated on open: rows and rollups kept, calls then stored") {
    TempDir dir;
    const auto file = dir / "t.db";
    const auto a = record("i1-a", "alice", "example.org", kDay, scaled(3), kDay + 10 * kMin, "expired");
    {
        auto v1 = Store::open(file, true, StoreOptions{5000, 0, 1});
        REQUIRE(v1->write({a, record("i1-b", "bob", "example.org", kDay + kHour, scaled(1))}, kDay + 2 * kHour));
    }
    REQUIRE(header_user_version(file) == 1);
    {
        // A reader does not migrate, and reads a schema-1 file as one without calls: `turnbridge
        // report` works before the server (perhaps still the previous release) has migrated it.
        auto reader = Store::open(file, false);
        const auto rows = usage(*reader, GroupBy::User);
        REQUIRE(rows.size() == 2);
        check_traffic(row_of(rows, "alice")->traffic, scaled(3));
        CHECK(row_of(rows, "alice")->calls.calls == 0);
        CHECK(reader->calls({}).empty());
        CHECK(header_user_version(file) == 1);
    }

    auto store = Store::open(file, true);
    CHECK_NOTHROW(Store::open(file, false));  // a reader now finds the current schema
    const auto kept = store->allocation("i1-a");
    REQUIRE(kept);
    check_traffic(kept->traffic, scaled(3));
    CHECK(kept->end_reason == "expired");
    // bob's allocation was open in the old file: the writer closed it as crashed, as always.
    CHECK(store->allocation("i1-b")->end_reason == "crashed");
    auto rows = usage(*store, GroupBy::User);
    REQUIRE(rows.size() == 2);
    check_traffic(row_of(rows, "alice")->traffic, scaled(3));
    CHECK(row_of(rows, "alice")->calls.calls == 0);
    CHECK(store->calls({}).empty());

    const auto c = call("c1-1", "alice", "example.org", kDay + 3 * kHour, 120'000);
    REQUIRE(store->write({}, {c}, kDay + 4 * kHour));
    store.reset();  // the last connection checkpoints the WAL into the file
    CHECK(header_user_version(file) == 6);
    // Opening again migrates nothing twice.
    auto again = Store::open(file, true);
    const auto got = again->calls({});
    REQUIRE(got.size() == 1);
    check_call(got[0], c);
    rows = usage(*again, GroupBy::User);
    check_traffic(row_of(rows, "alice")->traffic, scaled(3));
    CHECK(row_of(rows, "alice")->calls.calls == 1);
}

TEST_CASE("call quality (issue 14) round-trips; a schema-2 database keeps its calls, unmeasured, when migrated") {
    TempDir dir;
    const auto file = dir / "t.db";
    const auto old = call("c1-old", "alice", "example.org", kDay, 60'000);
    {
        auto v2 = Store::open(file, true, StoreOptions{5000, 0, 2});
        REQUIRE(v2->write({}, {old}, kDay + kHour));
    }
    REQUIRE(header_user_version(file) == 2);
    {
        // A reader reads a schema-2 file's calls without the quality columns.
        const auto got = Store::open(file, false)->calls({});
        REQUIRE(got.size() == 1);
        CHECK_FALSE(got[0].quality[2].measured);
    }
    auto store = Store::open(file, true);
    auto c = call("c1-new", "alice", "example.org", kDay + kHour, 60'000);
    c.quality[2] = CallQuality{true, 25, 5.0, 3.25, 3.89};
    c.quality[1] = CallQuality{true, -2, 0.0, 12.5, 4.4};
    REQUIRE(store->write({}, {c}, kDay + 2 * kHour));
    const auto got = store->calls({});
    REQUIRE(got.size() == 2);
    CHECK(got[0].id == "c1-old");
    for (const auto& q : got[0].quality) CHECK_FALSE(q.measured);
    CHECK_FALSE(got[1].quality[0].measured);
    CHECK_FALSE(got[1].quality[3].measured);
    REQUIRE(got[1].quality[2].measured);
    CHECK(got[1].quality[2].lost == 25);
    CHECK(got[1].quality[2].loss_pct == doctest::Approx(5.0));
    CHECK(got[1].quality[2].jitter_ms == doctest::Approx(3.25));
    CHECK(got[1].quality[2].mos == doctest::Approx(3.89));
    CHECK(got[1].quality[1].lost == -2);
    CHECK(got[1].quality[1].jitter_ms == doctest::Approx(12.5));
    store.reset();
    CHECK(header_user_version(file) == 6);
}

TEST_CASE("the call's trunk (issue 14, schema 6) round-trips; no trunk is NULL; a schema-5 database's calls have none") {
    TempDir dir;
    const auto file = dir / "t.db";
    const auto old = call("c1-old", "alice", "example.org", kDay, 60'000);
    {
        auto v5 = Store::open(file, true, StoreOptions{5000, 0, 5});
        REQUIRE(v5->write({}, {old}, kDay + kHour));
    }
    REQUIRE(header_user_version(file) == 5);
    {
        // A reader of a schema-5 file reads its calls without the trunk column.
        const auto got = Store::open(file, false)->calls({});
        REQUIRE(got.size() == 1);
        CHECK(got[0].trunk.empty());
        CHECK(got[0].quality.size() == 4);
    }
    auto store = Store::open(file, true);
    auto c = call("c1-new", "alice", "example.org", kDay + kHour, 60'000);
    c.trunk = "backup.eu-2";
    auto agent = call("c1-agent", "alice", "example.org", kDay + 2 * kHour, 60'000, "opus/agent");
    agent.trunk.clear();   // a browser's call to an agent: no trunk leg
    REQUIRE(store->write({}, {c, agent}, kDay + 3 * kHour));
    const auto got = store->calls({});
    REQUIRE(got.size() == 3);
    CHECK(got[0].id == "c1-old");
    CHECK(got[0].trunk.empty());   // recorded before the column: NULL
    check_call(got[1], c);
    check_call(got[2], agent);
    store.reset();
    CHECK(header_user_version(file) == 6);
}

TEST_CASE("calls(): realm and user filters, an exact [since, until) window on start, limit, ordered by start then id") {
    TempDir dir;
    auto store = Store::open(dir / "t.db", true);
    REQUIRE(store->write({},
                         {call("c-b", "alice", "example.org", kDay + 10 * kMin, 1000),
                          call("c-a", "alice", "example.org", kDay + 10 * kMin, 0),
                          call("c-c", "bob", "example.org", kDay + 20 * kMin, 1000),
                          call("c-d", "alice", "other.org", kDay + 30 * kMin, 1000),
                          call("c-e", "alice", "example.org", kDay + 40 * kMin, 1000)},
                         kDay + kHour));
    struct Row {
        const char* name;
        CallQuery q;
        std::vector<std::string> expected;
    };
    const std::optional<std::string> any;
    const std::optional<std::int64_t> ever;
    const std::vector<Row> rows = {
        {"all", {any, any, ever, ever, std::nullopt}, {"c-a", "c-b", "c-c", "c-d", "c-e"}},
        {"realm", {any, "example.org", ever, ever, std::nullopt}, {"c-a", "c-b", "c-c", "c-e"}},
        {"user", {"alice", any, ever, ever, std::nullopt}, {"c-a", "c-b", "c-d", "c-e"}},
        {"user and realm", {"alice", "other.org", ever, ever, std::nullopt}, {"c-d"}},
        {"unknown user", {"carol", any, ever, ever, std::nullopt}, {}},
        {"since is inclusive", {any, any, kDay + 20 * kMin, ever, std::nullopt}, {"c-c", "c-d", "c-e"}},
        {"until is exclusive", {any, any, ever, kDay + 30 * kMin, std::nullopt}, {"c-a", "c-b", "c-c"}},
        {"window", {any, any, kDay + 10 * kMin + 1, kDay + 30 * kMin + 1, std::nullopt}, {"c-c", "c-d"}},
        {"limit", {any, any, ever, ever, 2}, {"c-a", "c-b"}},
        {"limit with filters", {"alice", "example.org", kDay + 10 * kMin, ever, 10}, {"c-a", "c-b", "c-e"}},
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        CHECK(ids(store->calls(row.q)) == row.expected);
    }
}

TEST_CASE("usage by user and realm carries call figures: calls, answered, minutes, media bytes, codecs") {
    TempDir dir;
    auto store = Store::open(dir / "t.db", true);
    REQUIRE(store->write({record("i1-a", "alice", "example.org", kDay, scaled(1), kDay + 5 * kMin, "expired")},
                         {call("c1", "alice", "example.org", kDay + kMin, 90'000, "opus/PCMU", 1),
                          call("c2", "alice", "example.org", kDay + 2 * kMin, 0, "", 2),
                          call("c3", "alice", "example.org", kDay + 3 * kMin, 30'000, "opus/PCMU", 3),
                          call("c4", "bob", "example.org", kDay + 4 * kMin, 60'000, "PCMU/PCMU", 4)},
                         kDay + kHour));
    const auto users = usage(*store, GroupBy::User);
    REQUIRE(users.size() == 2);
    const UsageRow* alice = row_of(users, "alice");
    REQUIRE(alice != nullptr);
    CHECK(alice->allocations == 1);
    CHECK(alice->calls.calls == 3);
    CHECK(alice->calls.answered == 2);
    CHECK(alice->calls.answered_ms == 120'000);
    CHECK(alice->calls.minutes() == doctest::Approx(2.0));
    // browser in + out = 200k + 3 per call; trunk = 200k + 7 (k = 1, 2, 3).
    CHECK(alice->calls.browser_bytes == 200 * 6 + 3 * 3);
    CHECK(alice->calls.trunk_bytes == 200 * 6 + 7 * 3);
    CHECK(alice->calls.codecs == std::map<std::string, std::uint64_t>{{"opus/PCMU", 2}});
    // bob made a call and relayed nothing: he still has a row.
    const UsageRow* bob = row_of(users, "bob");
    REQUIRE(bob != nullptr);
    CHECK(bob->allocations == 0);
    CHECK(bob->realm == "example.org");
    CHECK(bob->calls.calls == 1);
    CHECK(bob->calls.answered_ms == 60'000);
    CHECK(bob->calls.codecs == std::map<std::string, std::uint64_t>{{"PCMU/PCMU", 1}});

    const auto realms = usage(*store, GroupBy::Realm);
    REQUIRE(realms.size() == 1);
    CHECK(realms[0].calls.calls == 4);
    CHECK(realms[0].calls.answered == 3);
    CHECK(realms[0].calls.answered_ms == 180'000);
    CHECK(realms[0].calls.codecs == std::map<std::string, std::uint64_t>{{"PCMU/PCMU", 1}, {"opus/PCMU", 2}});

    const auto only_bob = usage(*store, GroupBy::User, "bob");
    REQUIRE(only_bob.size() == 1);
    CHECK(only_bob[0].key == "bob");
    // By allocation: traffic rows only.
    const auto allocations = usage(*store, GroupBy::Allocation);
    REQUIRE(allocations.size() == 1);
    CHECK(allocations[0].calls.calls == 0);
}

TEST_CASE("usage by hour and day: a call counts in the bucket it started, in the same whole-hour window as traffic") {
    TempDir dir;
    auto store = Store::open(dir / "t.db", true);
    REQUIRE(store->write({},
                         {call("c1", "alice", "example.org", kDay + 10 * kHour + 59 * kMin, 2 * kHour),
                          call("c2", "alice", "example.org", kDay + 11 * kHour + kMin, 60'000),
                          call("c3", "alice", "example.org", kDay + 24 * kHour + 5 * kMin, 0)},
                         kDay + 30 * kHour));
    auto hours = usage(*store, GroupBy::Hour);
    REQUIRE(hours.size() == 3);
    CHECK(hours[0].key == "2026-11-01T10:00Z");
    CHECK(hours[0].calls.calls == 1);
    CHECK(hours[0].calls.answered_ms == 2 * kHour);  // all of it in the hour it started
    CHECK(hours[1].key == "2026-11-01T11:00Z");
    CHECK(hours[1].calls.answered_ms == 60'000);
    CHECK(hours[2].key == "2026-11-02T00:00Z");
    CHECK(hours[2].calls.answered == 0);
    const auto days = usage(*store, GroupBy::Day);
    REQUIRE(days.size() == 2);
    CHECK(days[0].key == "2026-11-01");
    CHECK(days[0].calls.calls == 2);
    CHECK(days[1].calls.calls == 1);
    // since 10:30 is taken from 11:00, as for the hourly traffic buckets; until 11:00:01 up to 12:00.
    hours = usage(*store, GroupBy::Hour, std::nullopt, kDay + 10 * kHour + 30 * kMin, kDay + 11 * kHour + 1000);
    REQUIRE(hours.size() == 1);
    CHECK(hours[0].key == "2026-11-01T11:00Z");
    CHECK(hours[0].calls.calls == 1);
}

TEST_SUITE_END();
