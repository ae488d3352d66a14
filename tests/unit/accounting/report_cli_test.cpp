// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "store_helpers.hpp"
#include "turnbridge/accounting/report_cli.hpp"
#include "turnbridge/accounting/store.hpp"

using namespace turnbridge::accounting;
using namespace turnbridge::accounting::test;

namespace {

struct Run {
    int status;
    std::string out;
    std::string err;
};

Run report(std::vector<std::string> args) {
    args.insert(args.begin(), "report");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::ostringstream out, err;
    const int status = run_report(static_cast<int>(args.size()), argv.data(), out, err);
    return Run{status, out.str(), err.str()};
}

// A database with one closed allocation (alice, 2 GB egress) and a config that prices it.
struct Fixture {
    TempDir dir;
    std::string db = (dir / "usage.db").string();
    std::string config = (dir / "tb.toml").string();

    Fixture() {
        Traffic t;
        t.packets = {1, 2, 3, 4};
        t.payload_bytes = {100, 100, 200, 200};
        t.wire_bytes = {136, 1'000'000'000, 200, 1'000'000'000};
        auto r = record("i1-a", "alice", "example.org", kDay + 10 * kHour, t, kDay + 10 * kHour + 90'000, "expired");
        REQUIRE(Store::open(db, true)->write({r}, kDay + 10 * kHour + 90'000));
        std::ofstream(config) << "[server]\nlisten = [\"127.0.0.1:3478\"]\n[accounting]\ndatabase = \"usage.db\"\n"
                                 "[realm.\"example.org\"]\nusers = { alice = \"pw\" }\nprice_per_gb = 0.5\n"
                                 "currency = \"EUR\"\n";
    }
};

}  // namespace

TEST_SUITE_BEGIN("accounting");

TEST_CASE("report: a bad option or value is one message naming it, and exit status 2") {
    Fixture f;
    struct Row {
        std::vector<std::string> args;
        const char* message;
    };
    const Row rows[] = {
        {{"--db", f.db, "--frobnicate"}, "turnbridge report: unknown option --frobnicate"},
        {{"--db", f.db, "-x"}, "turnbridge report: unknown option -x"},
        {{"--db", f.db, "--colour=red"}, "turnbridge report: unknown option --colour"},
        {{"--db", f.db, "alice"}, "turnbridge report: unexpected argument \"alice\""},
        {{"--db", f.db, "--since"}, "turnbridge report: --since needs a value"},
        {{"--db"}, "turnbridge report: --db needs a value"},
        {{"--db="}, "turnbridge report: --db: expected a file name, got \"\""},
        {{"-c", ""}, "turnbridge report: --config: expected a file name, got \"\""},
        {{"--db", f.db, "--since", "yesterday"},
         "turnbridge report: --since: expected a date (2026-11-01), a UTC time (2026-11-01T12:00:00Z), unix seconds "
         "or a time ago (7d, 12h, 30m, 90s), got \"yesterday\""},
        {{"--db", f.db, "--until=2026-02-30"}, "turnbridge report: --until: expected a date (2026-11-01)"},
        {{"--db", f.db, "--since", "2026-11-02", "--until", "2026-11-01"},
         "turnbridge report: --until: expected a time after --since (2026-11-02), got \"2026-11-01\""},
        {{"--db", f.db, "--since", "2026-11-01", "--until", "2026-11-01"}, "turnbridge report: --until: expected a time after"},
        {{"--db", f.db, "--by", "week"},
         "turnbridge report: --by: expected user, realm, day, hour or allocation, got \"week\""},
        {{"--db", f.db, "--format", "xml"}, "turnbridge report: --format: expected table, json or csv, got \"xml\""},
    };
    for (const auto& row : rows) {
        std::string joined;
        for (const auto& a : row.args) joined += a + " ";
        CAPTURE(joined);
        const Run r = report(row.args);
        CHECK(r.status == 2);
        CHECK(r.out.empty());
        CHECK(r.err.rfind(row.message, 0) == 0);
        CHECK(r.err.find("(see turnbridge report --help)\n") != std::string::npos);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 2);  // the message and the hint
    }
}

TEST_CASE("report: an invalid configuration is reported as FILE:LINE: KEY: MESSAGE with status 2") {
    TempDir dir;
    const std::string config = (dir / "bad.toml").string();
    std::ofstream(config) << "[server]\nlisten = [\"127.0.0.1:3478\"]\n[accounting]\nflush_interval = 0\n"
                             "[realm.\"example.org\"]\nrest_secret = \"s\"\n";
    const Run r = report({"--config", config});
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(r.err == config + ":4: accounting.flush_interval: expected an integer from 1 to 3600, got 0\n");
    const Run missing = report({"-c", (dir / "none.toml").string()});
    CHECK(missing.status == 2);
    CHECK(missing.err.rfind((dir / "none.toml").string() + ": cannot open", 0) == 0);
}

TEST_CASE("report: a missing database is a clear message and status 1") {
    TempDir dir;
    const std::string db = (dir / "none.db").string();
    const Run r = report({"--db", db});
    CHECK(r.status == 1);
    CHECK(r.out.empty());
    CHECK(r.err == "turnbridge report: no accounting database at " + db + " (turnbridge creates it when it starts)\n");
    // A file that is not a database: SQLite's reason, naming the file.
    std::ofstream(dir / "junk.db") << "not a database, not even close; long enough to be read as a header\n";
    const Run junk = report({"--db", (dir / "junk.db").string()});
    CHECK(junk.status == 1);
    CHECK(junk.err == "turnbridge report: " + (dir / "junk.db").string() + ": file is not a database\n");
}

TEST_CASE("report --db prints rows without prices; --config adds the realm's price and currency") {
    Fixture f;
    const std::string header_end = "total_bytes,egress_bytes,cost,currency\r\n";
    const Run plain = report({"--db", f.db, "--by", "allocation", "--format", "csv"});
    CHECK(plain.status == 0);
    CHECK(plain.err.empty());
    CHECK(plain.out.substr(plain.out.find(header_end) + header_end.size()) ==
          "i1-a,example.org,1,1.5,1,100,136,2,100,1000000000,3,200,200,4,200,1000000000,2000000336,2000000000,0,\r\n");
    // Prices and the database from the config (its database path is relative to it).
    const Run priced = report({"-c", f.config, "--by=realm", "--format=csv", "--since", "2026-11-01"});
    CHECK(priced.status == 0);
    CHECK(priced.err.empty());
    CHECK(priced.out.substr(priced.out.find(header_end) + header_end.size()) ==
          "example.org,example.org,1,1.5,1,100,136,2,100,1000000000,3,200,200,4,200,1000000000,2000000336,2000000000,1,EUR\r\n");
    // --db beside --config reads that database with the config's prices.
    const Run both = report({"-c", f.config, "--db", f.db, "--format", "json", "--user", "alice"});
    CHECK(both.status == 0);
    CHECK(both.out.find("\"key\": \"alice\", \"realm\": \"example.org\"") != std::string::npos);
    CHECK(both.out.find("\"cost\": 1, \"currency\": \"EUR\"") != std::string::npos);
}

TEST_CASE("report: filters that match nothing print the table header only; --help prints usage") {
    Fixture f;
    const Run none = report({"--db", f.db, "--user", "bob"});
    CHECK(none.status == 0);
    CHECK(none.out ==
          "USER  REALM  ALLOCATIONS  MINUTES  UP PAYLOAD  UP WIRE  DOWN PAYLOAD  DOWN WIRE  TOTAL  COST\n");
    const Run later = report({"--db", f.db, "--since", "2026-11-01T11:00:00Z", "--format", "json"});
    CHECK(later.status == 0);
    CHECK(later.out == "[]\n");
    const Run help = report({"--help"});
    CHECK(help.status == 0);
    CHECK(help.out.rfind("usage: turnbridge report [-c FILE | --db FILE]", 0) == 0);
    CHECK(help.err.empty());
}

TEST_SUITE_END();
