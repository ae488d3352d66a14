// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <limits>
#include <string>
#include <vector>

#include "turnbridge/accounting/usage.hpp"

using namespace turnbridge::accounting;

namespace {

constexpr std::int64_t kNow = 1'793'534'400'000;  // 2026-11-01T12:00:00Z

// Two rows that exercise every column: human units, rounding, a name that needs quoting.
std::vector<UsageRow> sample_rows() {
    UsageRow a;
    a.key = "alice";
    a.realm = "example.org";
    a.allocations = 2;
    a.relayed_minutes = 3.5;
    a.traffic.packets = {10, 11, 12, 13};
    a.traffic.payload_bytes = {1'210'000, 1'200'000, 999, 500};
    a.traffic.wire_bytes = {1'210'400, 1'200'000, 999, 12'345'678};
    a.cost = 0.1234;
    a.currency = "USD";
    UsageRow b;
    b.key = "we,ird \"name\"";
    b.relayed_minutes = 1.0 / 60;  // one second
    b.cost = 0.004;
    return {a, b};
}

}  // namespace

TEST_SUITE_BEGIN("accounting");

TEST_CASE("parse_time reads UTC dates and times, unix seconds and times ago; anything else is nullopt") {
    struct Row {
        const char* text;
        std::optional<std::int64_t> ms;
    };
    const Row rows[] = {
        {"2026-11-01", 1'793'491'200'000},
        {"2026-11-01T12:34:56Z", 1'793'536'496'000},
        {"2024-02-29", 1'709'164'800'000},  // leap year
        {"2000-02-29", 951'782'400'000},    // divisible by 400: leap
        {"2000-03-01", 951'868'800'000},
        {"1970-01-01", 0},
        {"2100-12-31", 4'133'894'400'000},
        {"1793491200", 1'793'491'200'000},  // unix seconds
        {"0", 0},
        {"7d", kNow - 7 * 86'400'000LL},
        {"12h", kNow - 12 * 3'600'000LL},
        {"30m", kNow - 30 * 60'000LL},
        {"90s", kNow - 90'000},
        {"0s", kNow},
        {"", std::nullopt},
        {"2026-13-01", std::nullopt},
        {"2026-00-10", std::nullopt},
        {"2026-02-29", std::nullopt},  // not a leap year
        {"2100-02-29", std::nullopt},  // divisible by 100 but not 400
        {"2026-11-31", std::nullopt},
        {"2026-11-00", std::nullopt},
        {"2026-11-1", std::nullopt},
        {"2026/11/01", std::nullopt},
        {"2026-11-01T24:00:00Z", std::nullopt},
        {"2026-11-01T12:60:00Z", std::nullopt},
        {"2026-11-01T12:00:60Z", std::nullopt},
        {"2026-11-01T12:00:00", std::nullopt},   // no Z: not UTC
        {"2026-11-01 12:00:00Z", std::nullopt},
        {"2026-11-01T12:00Z", std::nullopt},
        {"7w", std::nullopt},
        {"7D", std::nullopt},
        {"d", std::nullopt},
        {"-7d", std::nullopt},
        {"+7d", std::nullopt},
        {"7 d", std::nullopt},
        {"1.5h", std::nullopt},
        {"-1", std::nullopt},
        {"now", std::nullopt},
        {"99999999999999999999", std::nullopt},  // beyond int64
        {"9223372036854775807", std::nullopt},   // seconds that overflow as ms
        {"106751991167301d", std::nullopt},      // more days than fit
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        CHECK(parse_time(row.text, kNow) == row.ms);
    }
}

TEST_CASE("parse_group_by and parse_format take the lower-case names only") {
    CHECK(parse_group_by("user") == GroupBy::User);
    CHECK(parse_group_by("realm") == GroupBy::Realm);
    CHECK(parse_group_by("day") == GroupBy::Day);
    CHECK(parse_group_by("hour") == GroupBy::Hour);
    CHECK(parse_group_by("allocation") == GroupBy::Allocation);
    for (const char* bad : {"", "User", "users", "month", "alloc"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_group_by(bad));
    }
    for (auto by : {GroupBy::User, GroupBy::Realm, GroupBy::Day, GroupBy::Hour, GroupBy::Allocation})
        CHECK(parse_group_by(to_string(by)) == by);
    CHECK(parse_format("table") == Format::Table);
    CHECK(parse_format("json") == Format::Json);
    CHECK(parse_format("csv") == Format::Csv);
    for (const char* bad : {"", "JSON", "text", "tsv"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_format(bad));
    }
}

TEST_CASE("format_bytes uses decimal units with three significant digits") {
    struct Row {
        std::uint64_t bytes;
        const char* text;
    };
    const Row rows[] = {
        {0, "0 B"},
        {999, "999 B"},
        {1000, "1.00 kB"},
        {1234, "1.23 kB"},
        {12'345, "12.3 kB"},
        {123'456, "123 kB"},
        {999'499, "999 kB"},
        {999'500, "1.00 MB"},  // rounds up into the next unit, not "1000 kB"
        {1'210'000, "1.21 MB"},
        {1'000'000'000, "1.00 GB"},
        {2'500'000'000'000, "2.50 TB"},
        {std::numeric_limits<std::uint64_t>::max(), "18.4 EB"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.bytes);
        CHECK(format_bytes(row.bytes) == row.text);
    }
}

TEST_CASE("format_usage table: aligned columns, human units, the first column named after --by") {
    const std::string expected =
        "USER           REALM        ALLOCATIONS  MINUTES  UP PAYLOAD  UP WIRE  DOWN PAYLOAD  DOWN WIRE    TOTAL      COST\n"
        "alice          example.org            2  3.5 min     1.21 MB  1.21 MB         500 B    12.3 MB  14.8 MB  0.12 USD\n"
        "we,ird \"name\"                         0  0.0 min         0 B      0 B           0 B        0 B      0 B     <0.01\n";
    CHECK(format_usage(sample_rows(), Format::Table, GroupBy::User) == expected);
    // Without a grouping the column is KEY; by realm the realm column is not repeated.
    const std::string generic = format_usage(sample_rows(), Format::Table);
    CHECK(generic.substr(0, generic.find('\n')) ==
          "KEY            REALM        ALLOCATIONS  MINUTES  UP PAYLOAD  UP WIRE  DOWN PAYLOAD  DOWN WIRE    TOTAL      COST");
    std::vector<UsageRow> realms(1);
    realms[0].key = "example.org";
    realms[0].realm = "example.org";
    realms[0].cost = 2.345;
    realms[0].currency = "EUR";
    CHECK(format_usage(realms, Format::Table, GroupBy::Realm) ==
          "REALM        ALLOCATIONS  MINUTES  UP PAYLOAD  UP WIRE  DOWN PAYLOAD  DOWN WIRE  TOTAL      COST\n"
          "example.org            0  0.0 min         0 B      0 B           0 B        0 B    0 B  2.35 EUR\n");
    // No rows: the header alone.
    CHECK(format_usage({}, Format::Table, GroupBy::Day) ==
          "DAY  REALM  ALLOCATIONS  MINUTES  UP PAYLOAD  UP WIRE  DOWN PAYLOAD  DOWN WIRE  TOTAL  COST\n");
}

TEST_CASE("format_usage table writes control characters from client-chosen names as \\xNN") {
    std::vector<UsageRow> rows(1);
    rows[0].key = "evil\x1b[2J\n";
    const std::string out = format_usage(rows, Format::Table, GroupBy::User);
    CHECK(out.find('\x1b') == std::string::npos);
    CHECK(out.find("evil\\x1b[2J\\x0a") != std::string::npos);
}

TEST_CASE("format_usage json: an array of objects with raw integers and named directions") {
    const std::string expected =
        "[\n"
        "  {\"key\": \"alice\", \"realm\": \"example.org\", \"allocations\": 2, \"relayed_minutes\": 3.5, "
        "\"client_to_relay_packets\": 10, \"client_to_relay_payload_bytes\": 1210000, \"client_to_relay_wire_bytes\": 1210400, "
        "\"relay_to_peer_packets\": 11, \"relay_to_peer_payload_bytes\": 1200000, \"relay_to_peer_wire_bytes\": 1200000, "
        "\"peer_to_relay_packets\": 12, \"peer_to_relay_payload_bytes\": 999, \"peer_to_relay_wire_bytes\": 999, "
        "\"relay_to_client_packets\": 13, \"relay_to_client_payload_bytes\": 500, \"relay_to_client_wire_bytes\": 12345678, "
        "\"total_bytes\": 14757077, \"egress_bytes\": 13545678, \"cost\": 0.1234, \"currency\": \"USD\", "
        "\"calls\": 0, \"answered_calls\": 0, \"call_minutes\": 0, \"call_browser_bytes\": 0, \"call_trunk_bytes\": 0, "
        "\"call_codecs\": {}},\n"
        "  {\"key\": \"we,ird \\\"name\\\"\", \"realm\": \"\", \"allocations\": 0, \"relayed_minutes\": 0.0167, "
        "\"client_to_relay_packets\": 0, \"client_to_relay_payload_bytes\": 0, \"client_to_relay_wire_bytes\": 0, "
        "\"relay_to_peer_packets\": 0, \"relay_to_peer_payload_bytes\": 0, \"relay_to_peer_wire_bytes\": 0, "
        "\"peer_to_relay_packets\": 0, \"peer_to_relay_payload_bytes\": 0, \"peer_to_relay_wire_bytes\": 0, "
        "\"relay_to_client_packets\": 0, \"relay_to_client_payload_bytes\": 0, \"relay_to_client_wire_bytes\": 0, "
        "\"total_bytes\": 0, \"egress_bytes\": 0, \"cost\": 0.004, \"currency\": \"\", "
        "\"calls\": 0, \"answered_calls\": 0, \"call_minutes\": 0, \"call_browser_bytes\": 0, \"call_trunk_bytes\": 0, "
        "\"call_codecs\": {}}\n"
        "]\n";
    CHECK(format_usage(sample_rows(), Format::Json) == expected);
    CHECK(format_usage(sample_rows(), Format::Json, GroupBy::Allocation) == expected);
    CHECK(format_usage({}, Format::Json) == "[]\n");
}

TEST_CASE("format_usage json escapes quotes, backslashes, control characters and markup (the one JSON writer)") {
    std::vector<UsageRow> rows(1);
    rows[0].key = "a\"b\\c\nd\x01" "\xc3\xa9<script>\x1b";
    rows[0].calls.codecs = {{"<b>", 1}};
    const std::string out = format_usage(rows, Format::Json);
    CHECK(out.find(R"("key": "a\"b\\c\nd\u0001)" "\xc3\xa9" R"(\u003cscript\u003e\u001b")") != std::string::npos);
    CHECK(out.find(R"("call_codecs": {"\u003cb\u003e": 1})") != std::string::npos);
    CHECK(out.find('<') == std::string::npos);
}

TEST_CASE("format_usage csv: a header row and RFC 4180 records (CRLF, quoted where needed)") {
    const std::string header =
        "key,realm,allocations,relayed_minutes,"
        "client_to_relay_packets,client_to_relay_payload_bytes,client_to_relay_wire_bytes,"
        "relay_to_peer_packets,relay_to_peer_payload_bytes,relay_to_peer_wire_bytes,"
        "peer_to_relay_packets,peer_to_relay_payload_bytes,peer_to_relay_wire_bytes,"
        "relay_to_client_packets,relay_to_client_payload_bytes,relay_to_client_wire_bytes,"
        "total_bytes,egress_bytes,cost,currency,"
        "calls,answered_calls,call_minutes,call_browser_bytes,call_trunk_bytes,call_codecs\r\n";
    const std::string expected =
        header +
        "alice,example.org,2,3.5,10,1210000,1210400,11,1200000,1200000,12,999,999,13,500,12345678,14757077,13545678,0.1234,USD,"
        "0,0,0,0,0,\r\n"
        "\"we,ird \"\"name\"\"\",,0,0.0167,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0.004,,0,0,0,0,0,\r\n";
    CHECK(format_usage(sample_rows(), Format::Csv) == expected);
    CHECK(format_usage({}, Format::Csv) == header);
    std::vector<UsageRow> rows(1);
    rows[0].key = "line\nbreak";
    rows[0].realm = "plain";
    CHECK(format_usage(rows, Format::Csv).substr(header.size(), 18) == "\"line\nbreak\",plain");
}

TEST_CASE("format_usage with calls: JSON codecs as an object, CSV and table as text; call columns in the table") {
    std::vector<UsageRow> rows(1);
    rows[0].key = "example.org";
    rows[0].realm = "example.org";
    rows[0].calls.calls = 12;
    rows[0].calls.answered = 9;
    rows[0].calls.answered_ms = 3 * 60'000 + 6'000;
    rows[0].calls.browser_bytes = 1'000'000;
    rows[0].calls.trunk_bytes = 500'000;
    rows[0].calls.codecs = {{"PCMU/PCMU", 2}, {"opus/PCMU", 7}, {"a\"b", 1}};
    const std::string json = format_usage(rows, Format::Json);
    CHECK(json.find("\"calls\": 12, \"answered_calls\": 9, \"call_minutes\": 3.1, \"call_browser_bytes\": 1000000, "
                    "\"call_trunk_bytes\": 500000, \"call_codecs\": {\"PCMU/PCMU\": 2, \"a\\\"b\": 1, "
                    "\"opus/PCMU\": 7}}\n") != std::string::npos);
    const std::string csv = format_usage(rows, Format::Csv);
    CHECK(csv.substr(csv.find("\r\n") + 2) ==
          "example.org,example.org,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,,12,9,3.1,1000000,500000,"
          "\"opus/PCMU=7 PCMU/PCMU=2 a\"\"b=1\"\r\n");
    CHECK(format_usage(rows, Format::Table, GroupBy::Realm) ==
          "REALM        ALLOCATIONS  MINUTES  UP PAYLOAD  UP WIRE  DOWN PAYLOAD  DOWN WIRE  TOTAL  COST  CALLS  ANSWERED  "
          "CALL MINUTES  CODECS\n"
          "example.org            0  0.0 min         0 B      0 B           0 B        0 B    0 B  0.00     12         9  "
          "     3.1 min  opus/PCMU=7 PCMU/PCMU=2 a\"b=1\n");
}

TEST_SUITE_END();
