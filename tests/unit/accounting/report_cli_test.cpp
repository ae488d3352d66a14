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
        {{"--db="}, "turnbridge report: --db: expected a file name or a postgresql:// URI, got \"\""},
        {{"-c", ""}, "turnbridge report: --config: expected a file name, got \"\""},
        {{"--db", f.db, "--since", "yesterday"},
         "turnbridge report: --since: expected a date (2026-11-01), a UTC time (2026-11-01T12:00:00Z), unix seconds "
         "or a time ago (7d, 12h, 30m, 90s), got \"yesterday\""},
        {{"--db", f.db, "--until=2026-02-30"}, "turnbridge report: --until: expected a date (2026-11-01)"},
        {{"--db", f.db, "--since", "2026-11-02", "--until", "2026-11-01"},
         "turnbridge report: --until: expected a time after --since (2026-11-02), got \"2026-11-01\""},
        {{"--db", f.db, "--since", "2026-11-01", "--until", "2026-11-01"}, "turnbridge report: --until: expected a time after"},
        {{"--db", f.db, "--by", "week"},
         "turnbridge report: --by: expected user, realm, day, hour, allocation, node or trunk, got \"week\""},
        {{"--db", f.db, "--format", "xml"}, "turnbridge report: --format: expected table, json or csv, got \"xml\""},
        {{"--db", f.db, "--calls", "--by", "user"}, "turnbridge report: --by: not with --calls"},
        {{"--db", f.db, "--calls=yes"}, "turnbridge report: --calls: takes no value"},
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
    const std::string header_end = "call_trunk_bytes,call_codecs\r\n";
    const Run plain = report({"--db", f.db, "--by", "allocation", "--format", "csv"});
    CHECK(plain.status == 0);
    CHECK(plain.err.empty());
    CHECK(plain.out.substr(plain.out.find(header_end) + header_end.size()) ==
          "i1-a,example.org,1,1.5,1,100,136,2,100,1000000000,3,200,200,4,200,1000000000,2000000336,2000000000,0,,0,0,0,0,0,\r\n");
    // Prices and the database from the config (its database path is relative to it).
    const Run priced = report({"-c", f.config, "--by=realm", "--format=csv", "--since", "2026-11-01"});
    CHECK(priced.status == 0);
    CHECK(priced.err.empty());
    CHECK(priced.out.substr(priced.out.find(header_end) + header_end.size()) ==
          "example.org,example.org,1,1.5,1,100,136,2,100,1000000000,3,200,200,4,200,1000000000,2000000336,2000000000,1,EUR,0,0,0,0,0,\r\n");
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

// Two calls of alice on top of the fixture's allocation: one answered for 2.5 minutes through
// the relay, one that failed; and one of bob in another realm, who relayed nothing.
struct CallFixture : Fixture {
    CallFixture() {
        auto answered = call("c1-1", "alice", "example.org", kDay + 10 * kHour + 5 * kMin, 150'000, "opus/PCMU", 10);
        auto failed = call("c1-2", "alice", "example.org", kDay + 10 * kHour + 20 * kMin, 0, "", 2);
        auto other = call("c1-3", "bob", "other.org", kDay + 12 * kHour, 61'000, "PCMA/PCMA", 3);
        other.direction = "inbound";
        other.remote = "+1 555, \"front desk\"";
        other.relayed = false;
        failed.trunk = "uk";     // issue 14: a second trunk of example.org
        other.trunk.clear();     // a call with no trunk leg (a browser's call to an agent)
        REQUIRE(Store::open(db, true)->write({}, {answered, failed, other}, kDay + 13 * kHour));
    }
};

TEST_CASE("report: usage rows gain call figures; the table shows the call columns once there are calls") {
    CallFixture f;
    const Run table = report({"--db", f.db});
    CHECK(table.status == 0);
    CHECK(table.out ==
          "USER   REALM        ALLOCATIONS  MINUTES  UP PAYLOAD  UP WIRE  DOWN PAYLOAD  DOWN WIRE    TOTAL  COST  CALLS  "
          "ANSWERED  CALL MINUTES  CODECS\n"
          "alice  example.org            1  1.5 min       100 B    136 B         200 B    1.00 GB  2.00 GB  0.00      2  "
          "       1       2.5 min  opus/PCMU=1\n"
          "bob    other.org              0  0.0 min         0 B      0 B           0 B        0 B      0 B  0.00      1  "
          "       1       1.0 min  PCMA/PCMA=1\n");
    const Run json = report({"--db", f.db, "--format", "json", "--by", "realm", "--realm", "example.org"});
    CHECK(json.status == 0);
    CHECK(json.out.find("\"calls\": 2, \"answered_calls\": 1, \"call_minutes\": 2.5, \"call_browser_bytes\": 2406, "
                        "\"call_trunk_bytes\": 2414, \"call_codecs\": {\"opus/PCMU\": 1}}") != std::string::npos);
    // Not by allocation: those are relay rows.
    const Run allocations = report({"--db", f.db, "--by", "allocation"});
    CHECK(allocations.out.find("CALLS") == std::string::npos);
}

TEST_CASE("report --calls lists calls one by one as a table, JSON or CSV, with the same filters") {
    CallFixture f;
    const Run table = report({"--db", f.db, "--calls"});
    CHECK(table.status == 0);
    CHECK(table.err.empty());
    CHECK(table.out ==
          "START                 USER   REALM        DIRECTION  REMOTE                TRUNK      STATUS  RESULT    "
          "DURATION  CODECS     BROWSER IN  BROWSER OUT  TRUNK IN  TRUNK OUT  RELAYED  LOSS IN B/T  MOS IN B/T  END\n"
          "2026-11-01T10:05:00Z  alice  example.org  outbound   +15550123             carrier-a     200  answered  "
          "    2:30  opus/PCMU     1.00 kB      1.00 kB   1.00 kB    1.00 kB  yes              - -         - -  bye-browser\n"
          "2026-11-01T10:20:00Z  alice  example.org  outbound   +15550123             uk            503  failed    "
          "       -                  201 B        202 B     203 B      204 B  yes              - -         - -  failed: trunk 503\n"
          "2026-11-01T12:00:00Z  bob    other.org    inbound    +1 555, \"front desk\"  -             200  answered  "
          "    1:01  PCMA/PCMA       301 B        302 B     303 B      304 B  no               - -         - -  bye-browser\n");
    const Run csv = report({"--db", f.db, "--calls", "--format", "csv", "--user", "bob"});
    CHECK(csv.status == 0);
    CHECK(csv.out ==
          "id,realm,user,direction,remote,start,start_ms,answer_ms,end_ms,duration_seconds,status,result,codecs,"
          "end_reason,relayed,browser_in_packets,browser_in_bytes,browser_out_packets,browser_out_bytes,"
          "trunk_in_packets,trunk_in_bytes,trunk_out_packets,trunk_out_bytes"
          ",browser_in_lost,browser_in_loss_pct,browser_in_jitter_ms,browser_in_mos,browser_out_lost,browser_out_loss_pct,browser_out_jitter_ms,browser_out_mos,trunk_in_lost,trunk_in_loss_pct,trunk_in_jitter_ms,trunk_in_mos,trunk_out_lost,trunk_out_loss_pct,trunk_out_jitter_ms,trunk_out_mos,trunk\r\n"
          "c1-3,other.org,bob,inbound,\"+1 555, \"\"front desk\"\"\",2026-11-01T12:00:00Z,1793534400000,1793534402000,"
          "1793534463000,61,200,answered,PCMA/PCMA,bye-browser,0,4,301,5,302,6,303,7,304,,,,,,,,,,,,,,,,,\r\n");
    const Run json = report({"--db", f.db, "--calls", "--format=json", "--since", "2026-11-01T10:10:00Z", "--until",
                             "2026-11-01T12:00:00Z"});
    CHECK(json.status == 0);
    CHECK(json.out ==
          "[\n"
          "  {\"id\": \"c1-2\", \"realm\": \"example.org\", \"user\": \"alice\", \"direction\": \"outbound\", "
          "\"remote\": \"+15550123\", \"start\": \"2026-11-01T10:20:00Z\", \"start_ms\": 1793528400000, \"answer_ms\": 0, "
          "\"end_ms\": 1793528401500, \"duration_seconds\": 0, \"status\": 503, \"result\": \"failed\", \"codecs\": \"\", "
          "\"end_reason\": \"failed: trunk 503\", \"relayed\": true, \"browser_in_packets\": 3, \"browser_in_bytes\": 201, "
          "\"browser_out_packets\": 4, \"browser_out_bytes\": 202, \"trunk_in_packets\": 5, \"trunk_in_bytes\": 203, "
          "\"trunk_out_packets\": 6, \"trunk_out_bytes\": 204, "
          "\"browser_in_lost\": null, \"browser_in_loss_pct\": null, \"browser_in_jitter_ms\": null, \"browser_in_mos\": null, \"browser_out_lost\": null, \"browser_out_loss_pct\": null, \"browser_out_jitter_ms\": null, \"browser_out_mos\": null, \"trunk_in_lost\": null, \"trunk_in_loss_pct\": null, \"trunk_in_jitter_ms\": null, \"trunk_in_mos\": null, \"trunk_out_lost\": null, \"trunk_out_loss_pct\": null, \"trunk_out_jitter_ms\": null, \"trunk_out_mos\": null, \"trunk\": \"uk\"}\n"
          "]\n");
    const Run none = report({"--db", f.db, "--calls", "--format", "json", "--realm", "nowhere.org"});
    CHECK(none.status == 0);
    CHECK(none.out == "[]\n");
}

TEST_CASE("report --by trunk (issue 14): the calls per realm and trunk, no relay rows; (none) for calls without one") {
    CallFixture f;
    const Run table = report({"--db", f.db, "--by", "trunk"});
    CHECK(table.status == 0);
    CHECK(table.err.empty());
    CHECK(table.out ==
          "TRUNK      REALM        ALLOCATIONS  MINUTES  UP PAYLOAD  UP WIRE  DOWN PAYLOAD  DOWN WIRE  TOTAL  COST  "
          "CALLS  ANSWERED  CALL MINUTES  CODECS\n"
          "carrier-a  example.org            0  0.0 min         0 B      0 B           0 B        0 B    0 B  0.00  "
          "    1         1       2.5 min  opus/PCMU=1\n"
          "uk         example.org            0  0.0 min         0 B      0 B           0 B        0 B    0 B  0.00  "
          "    1         0       0.0 min\n"
          "(none)     other.org              0  0.0 min         0 B      0 B           0 B        0 B    0 B  0.00  "
          "    1         1       1.0 min  PCMA/PCMA=1\n");
    const Run json = report({"--db", f.db, "--by", "trunk", "--format", "json", "--realm", "example.org"});
    CHECK(json.status == 0);
    CHECK(json.out.find("{\"key\": \"carrier-a\", \"realm\": \"example.org\", \"allocations\": 0,") != std::string::npos);
    CHECK(json.out.find("{\"key\": \"uk\", \"realm\": \"example.org\",") != std::string::npos);
    CHECK(json.out.find("other.org") == std::string::npos);
    const Run bad = report({"--db", f.db, "--by", "trunks"});
    CHECK(bad.status == 2);
    CHECK(bad.err.find("--by: expected user, realm, day, hour, allocation, node or trunk, got \"trunks\"") != std::string::npos);
}

TEST_SUITE_END();
