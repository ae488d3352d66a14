// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#include "store_helpers.hpp"
#include "turnbridge/accounting/store.hpp"

using namespace turnbridge::accounting;
using namespace turnbridge::accounting::test;

namespace {

const std::map<std::string, Prices> kNoPrices;

// This turnbridge's schema version: 1 allocations and hourly rollups, 2 calls.
constexpr std::uint32_t kSchemaVersion = 6;

std::vector<UsageRow> usage(Store& s, GroupBy by, std::optional<std::int64_t> since = std::nullopt,
                            std::optional<std::int64_t> until = std::nullopt) {
    UsageQuery q;
    q.by = by;
    q.since_ms = since;
    q.until_ms = until;
    return s.usage(q, kNoPrices);
}

void check_record(const AllocationRecord& got, const AllocationRecord& expected) {
    CHECK(got.id == expected.id);
    CHECK(got.account == expected.account);
    CHECK(got.username == expected.username);
    CHECK(got.realm == expected.realm);
    CHECK(got.client == expected.client);
    CHECK(got.transport == expected.transport);
    CHECK(got.relay == expected.relay);
    CHECK(got.start_ms == expected.start_ms);
    CHECK(got.end_ms == expected.end_ms);
    CHECK(got.peers == expected.peers);
    CHECK(got.end_reason == expected.end_reason);
    check_traffic(got.traffic, expected.traffic);
}

// The message of the std::runtime_error that `f` throws, or "" if it throws none.
template <class F>
std::string thrown(F&& f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

void set_header_user_version(const std::filesystem::path& file, std::uint32_t v) {
    std::fstream io(file, std::ios::binary | std::ios::in | std::ios::out);
    const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
    io.seekp(60);
    io.write(b, 4);
}

}  // namespace

TEST_SUITE_BEGIN("accounting");

TEST_CASE("store round trip: a new allocation is inserted, updated with new totals, then closed") {
    TempDir dir;
    auto store = Store::open(dir / "t.db", true);
    auto r = record("i1-a", "alice", "example.org", kDay + 10 * kHour, scaled(1));
    r.transport = "tls";
    r.client = "[2001:db8::7]:50000";
    r.relay = "198.51.100.1:61000,[2001:db8::1]:61002";
    REQUIRE(store->write({r}, kDay + 10 * kHour + 5000));
    auto got = store->allocation("i1-a");
    REQUIRE(got);
    check_record(*got, r);

    r.traffic = scaled(7);
    r.peers = 3;
    REQUIRE(store->write({r}, kDay + 10 * kHour + 10000));
    got = store->allocation("i1-a");
    REQUIRE(got);
    check_record(*got, r);

    r.traffic = scaled(9);
    r.end_ms = kDay + 10 * kHour + 12000;
    r.end_reason = "refreshed-to-0";
    REQUIRE(store->write({r}, kDay + 10 * kHour + 12000));
    got = store->allocation("i1-a");
    REQUIRE(got);
    check_record(*got, r);
    CHECK_FALSE(store->allocation("i1-b"));
    CHECK(store->write({}, kDay) == true);  // nothing to do is a success
}

TEST_CASE("hourly rows get the exact difference between writes, in the hour of each write") {
    TempDir dir;
    auto store = Store::open(dir / "t.db", true);
    const std::int64_t h = kDay + 10 * kHour;
    auto a = record("i1-a", "alice", "example.org", h + 59 * kMin, scaled(100));
    auto b = record("i1-b", "bob", "example.org", h + 59 * kMin, scaled(1));
    REQUIRE(store->write({a, b}, h + 59 * kMin + 30'000));          // 10:59:30
    a.traffic = scaled(250);
    REQUIRE(store->write({a}, h + kHour + 10'000));                  // 11:00:10, b idle
    a.traffic = scaled(400);
    b.traffic = scaled(4);
    REQUIRE(store->write({a, b}, h + kHour + 20 * kMin));            // 11:20
    a.traffic = scaled(1000);
    a.end_ms = h + 2 * kHour + 5000;
    a.end_reason = "expired";
    REQUIRE(store->write({a}, h + 2 * kHour + 5000));                // 12:00:05

    const auto hours = usage(*store, GroupBy::Hour);
    REQUIRE(hours.size() == 3);
    CHECK(hours[0].key == "2026-11-01T10:00Z");
    CHECK(hours[0].allocations == 2);
    check_traffic(hours[0].traffic, scaled(101));
    CHECK(hours[1].key == "2026-11-01T11:00Z");
    CHECK(hours[1].allocations == 0);
    check_traffic(hours[1].traffic, scaled(300 + 3));
    CHECK(hours[2].key == "2026-11-01T12:00Z");
    check_traffic(hours[2].traffic, scaled(600));

    // The hourly rows of one allocation add up to its stored totals.
    const auto users = usage(*store, GroupBy::User);
    REQUIRE(users.size() == 2);
    CHECK(users[0].key == "alice");
    check_traffic(users[0].traffic, scaled(1000));
    CHECK(users[1].key == "bob");
    check_traffic(users[1].traffic, scaled(4));

    // Quotas count relayed payload both ways (relay->peer + relay->client) = 16 per k.
    CHECK(store->relayed_bytes("example.org", kDay)["alice"] == 1000 * 16);
    CHECK(store->relayed_bytes("example.org", h + kHour)["alice"] == 900 * 16);
    CHECK(store->relayed_bytes("example.org", h + 2 * kHour)["alice"] == 600 * 16);
    CHECK(store->relayed_bytes("example.org", h + 3 * kHour)["alice"] == 0);
    CHECK(store->relayed_bytes("example.org", kDay)["bob"] == 4 * 16);
    CHECK(store->relayed_bytes("other.org", kDay)["alice"] == 0);
}

TEST_CASE("an allocation counts as started in the hour of its start, even when first written an hour later") {
    TempDir dir;
    auto store = Store::open(dir / "t.db", true);
    const std::int64_t h = kDay + 10 * kHour;
    REQUIRE(store->write({record("i1-a", "alice", "example.org", h + 59 * kMin, scaled(5))}, h + kHour + 2000));
    const auto hours = usage(*store, GroupBy::Hour);
    REQUIRE(hours.size() == 2);
    CHECK(hours[0].key == "2026-11-01T10:00Z");
    CHECK(hours[0].allocations == 1);
    check_traffic(hours[0].traffic, scaled(0));
    CHECK(hours[1].key == "2026-11-01T11:00Z");
    CHECK(hours[1].allocations == 0);
    check_traffic(hours[1].traffic, scaled(5));
}

TEST_CASE("a total that goes down adds nothing and the higher stored total is kept") {
    TempDir dir;
    auto store = Store::open(dir / "t.db", true);
    auto a = record("i1-a", "alice", "example.org", kDay, scaled(10));
    REQUIRE(store->write({a}, kDay + 1000));
    a.traffic = scaled(7);
    a.traffic.packets[0] = 1000;  // one counter goes up while the others go down
    REQUIRE(store->write({a}, kDay + 2000));
    Traffic expected = scaled(10);
    expected.packets[0] = 1000;
    check_traffic(store->allocation("i1-a")->traffic, expected);
    a.traffic = scaled(12);
    a.traffic.packets[0] = 1000;
    REQUIRE(store->write({a}, kDay + 3000));
    expected = scaled(12);
    expected.packets[0] = 1000;
    check_traffic(store->allocation("i1-a")->traffic, expected);
    const auto users = usage(*store, GroupBy::User);
    REQUIRE(users.size() == 1);
    check_traffic(users[0].traffic, expected);  // deltas 10, 0 (and +990 packets), then 2
}

TEST_CASE("a writer closes allocations left open by a crash as \"crashed\" at their last checkpoint") {
    TempDir dir;
    const auto file = dir / "t.db";
    auto open_one = record("i1-a", "alice", "example.org", kDay, scaled(1));
    auto closed = record("i1-b", "bob", "example.org", kDay, scaled(2), kDay + 3000, "client-gone");
    {
        auto store = Store::open(file, true);
        REQUIRE(store->write({open_one, closed}, kDay + 5000));
        open_one.traffic = scaled(3);
        REQUIRE(store->write({open_one}, kDay + 9000));  // the last checkpoint
    }  // the process "dies": the allocation is still open in the store
    {
        // A reader changes nothing.
        auto reader = Store::open(file, false);
        CHECK(reader->allocation("i1-a")->end_ms == 0);
        CHECK(reader->allocation("i1-a")->end_reason.empty());
    }
    auto store = Store::open(file, true);
    auto a = store->allocation("i1-a");
    REQUIRE(a);
    CHECK(a->end_ms == kDay + 9000);
    CHECK(a->end_reason == "crashed");
    check_traffic(a->traffic, scaled(3));
    auto b = store->allocation("i1-b");
    REQUIRE(b);
    check_record(*b, closed);
    // Its relayed time ends at the checkpoint.
    const auto rows = usage(*store, GroupBy::Allocation);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].key == "i1-a");
    CHECK(rows[0].relayed_minutes == doctest::Approx(9000.0 / kMin));
}

TEST_CASE("a reader beside the live writer sees each committed write (WAL), and cannot write itself") {
    TempDir dir;
    const auto file = dir / "t.db";
    auto writer = Store::open(file, true);
    auto a = record("i1-a", "alice", "example.org", kDay, scaled(1));
    REQUIRE(writer->write({a}, kDay + 1000));
    CHECK(std::filesystem::exists(dir / "t.db-wal"));  // write-ahead log, not a rollback journal
    auto reader = Store::open(file, false);
    auto rows = usage(*reader, GroupBy::Allocation);
    REQUIRE(rows.size() == 1);
    check_traffic(rows[0].traffic, scaled(1));

    a.traffic = scaled(5);
    REQUIRE(writer->write({a}, kDay + 2000));
    rows = usage(*reader, GroupBy::Allocation);
    REQUIRE(rows.size() == 1);
    check_traffic(rows[0].traffic, scaled(5));
    CHECK(reader->relayed_bytes("example.org", kDay)["alice"] == 5 * 16);

    // Read-only: the write fails as on a read-only disk, without throwing, and changes nothing.
    a.traffic = scaled(50);
    CHECK(reader->write({a, record("i1-z", "zed", "example.org", kDay, scaled(1))}, kDay + 3000) == false);
    check_traffic(writer->allocation("i1-a")->traffic, scaled(5));
    CHECK_FALSE(writer->allocation("i1-z"));
    // The writer goes on as before.
    a.traffic = scaled(6);
    REQUIRE(writer->write({a}, kDay + 4000));
    check_traffic(reader->allocation("i1-a")->traffic, scaled(6));
}

TEST_CASE("a second writer is refused while one runs, and leaves the live allocations alone") {
    TempDir dir;
    const auto file = dir / "t.db";
    auto first = Store::open(file, true);
    REQUIRE(first->write({record("i1-a", "alice", "example.org", kDay, scaled(1))}, kDay + 1000));
    std::string why;
    try {
        Store::open(file, true);
    } catch (const std::exception& e) {
        why = e.what();
    }
    CHECK(why.find("in use by another turnbridge") != std::string::npos);
    CHECK(why.find(fmt::format("pid {}", ::getpid())) != std::string::npos);
    CHECK(why.find("t.db") != std::string::npos);
    CHECK(first->allocation("i1-a")->end_reason.empty());  // not closed as crashed by the refused one
    CHECK(Store::open(file, false)->allocation("i1-a"));   // readers are welcome
    first.reset();
    CHECK_NOTHROW(Store::open(file, true));  // the lock went with the first writer
}

TEST_CASE("a reader opens a database whose writer has closed (no -wal or -shm left)") {
    TempDir dir;
    const auto file = dir / "t.db";
    Store::open(file, true)->write({record("i1-a", "alice", "example.org", kDay, scaled(2))}, kDay + 1000);
    CHECK_FALSE(std::filesystem::exists(dir / "t.db-wal"));
    auto reader = Store::open(file, false);
    const auto rows = usage(*reader, GroupBy::User);
    REQUIRE(rows.size() == 1);
    check_traffic(rows[0].traffic, scaled(2));
}

TEST_CASE("opening again migrates nothing twice: schema version 2, rows and rollups intact") {
    TempDir dir;
    const auto file = dir / "t.db";
    auto a = record("i1-a", "alice", "example.org", kDay, scaled(4), kDay + 1000, "expired");
    Store::open(file, true)->write({a}, kDay + 1000);
    CHECK(header_user_version(file) == kSchemaVersion);
    for (int i = 0; i < 2; ++i) {
        CAPTURE(i);
        auto store = Store::open(file, true);
        check_record(*store->allocation("i1-a"), a);
        const auto rows = usage(*store, GroupBy::User);
        REQUIRE(rows.size() == 1);
        CHECK(rows[0].allocations == 1);
        check_traffic(rows[0].traffic, scaled(4));
    }
    CHECK(header_user_version(file) == kSchemaVersion);
}

TEST_CASE("a database from a newer turnbridge is refused at open, naming the file and both versions") {
    TempDir dir;
    const auto file = dir / "t.db";
    Store::open(file, true);
    set_header_user_version(file, kSchemaVersion + 1);
    for (bool writer : {true, false}) {
        CAPTURE(writer);
        const std::string message = thrown([&] { Store::open(file, writer); });
        CHECK(message == file.string() + ": schema version 7 is newer than this turnbridge's (6)");
    }
}

TEST_CASE("open throws a std::runtime_error naming the file and SQLite's reason") {
    TempDir dir;
    std::ofstream(dir / "text.db") << "this is not a database, just some text that is long enough to have a header\n";
    CHECK(thrown([&] { Store::open(dir / "text.db", true); }) == (dir / "text.db").string() + ": file is not a database");
    CHECK(thrown([&] { Store::open(dir / "text.db", false); }) == (dir / "text.db").string() + ": file is not a database");
    CHECK(thrown([&] { Store::open(dir / "missing.db", false); }) ==
          (dir / "missing.db").string() + ": unable to open database file");
    CHECK(thrown([&] { Store::open(dir / "no/such/dir.db", true); }) ==
          (dir / "no/such/dir.db").string() + ": unable to open database file");
    // An empty file is a database without our schema: a reader cannot use it.
    std::ofstream(dir / "empty.db").close();
    CHECK(thrown([&] { Store::open(dir / "empty.db", false); }) ==
          (dir / "empty.db").string() + ": not a turnbridge accounting database (no schema)");
}

TEST_CASE("a full disk (SQLITE_FULL) makes write return false, not throw, and keeps the last committed state") {
    TempDir dir;
    const auto file = dir / "t.db";
    auto a = record("i1-a", "alice", "example.org", kDay, scaled(1));
    Store::open(file, true)->write({a}, kDay + 1000);
    // max_page_count 1 means "no more pages than now": any growth fails as on a full disk.
    auto store = Store::open(file, true, StoreOptions{5000, 1});
    std::vector<AllocationRecord> batch;
    a.traffic = scaled(2);
    batch.push_back(a);
    for (int i = 0; i < 300; ++i) {
        auto r = record("i1-n" + std::to_string(i), "user" + std::to_string(i), "example.org", kDay, scaled(1));
        r.relay = std::string(200, 'r');
        batch.push_back(r);
    }
    bool ok = true;
    CHECK_NOTHROW(ok = store->write(batch, kDay + 2 * kHour));
    CHECK(ok == false);
    // Nothing of the failed batch is in the store: the transaction was rolled back whole.
    check_traffic(store->allocation("i1-a")->traffic, scaled(1));
    CHECK_FALSE(store->allocation("i1-n0"));
    CHECK(usage(*store, GroupBy::User).size() == 1);
    // Retrying fails the same way, still without throwing; a fresh store takes the batch.
    CHECK(store->write(batch, kDay + 2 * kHour) == false);
    store.reset();
    auto roomy = Store::open(file, true);
    CHECK(roomy->write(batch, kDay + 2 * kHour) == true);
    CHECK(usage(*roomy, GroupBy::User).size() == 301);
    check_traffic(roomy->allocation("i1-a")->traffic, scaled(2));
}

TEST_SUITE_END();
