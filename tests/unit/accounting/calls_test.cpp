// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>

#include "store_helpers.hpp"
#include "turnbridge/accounting/calls.hpp"

using namespace turnbridge::accounting;
using namespace turnbridge::accounting::test;

TEST_SUITE_BEGIN("accounting");

TEST_CASE("call_result: answered wins; otherwise the INVITE's final status (RFC 3261 §21) names the result") {
    struct Row {
        std::int64_t answer_ms;
        int status;
        const char* end_reason;
        const char* expected;
    };
    const Row rows[] = {
        {kDay, 200, "bye-trunk", "answered"},
        {kDay, 200, "shutdown", "answered"},
        {0, 487, "cancel", "cancelled"},
        {0, 0, "cancel", "cancelled"},  // cancelled before any final answer came
        {0, 486, "failed: busy", "busy"},
        {0, 600, "failed: busy everywhere", "busy"},
        {0, 603, "failed: decline", "declined"},
        {0, 404, "failed: not found", "failed"},
        {0, 503, "failed: trunk 503", "failed"},
        {0, 0, "shutdown", "failed"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.status);
        CAPTURE(row.end_reason);
        CallRecord c;
        c.answer_ms = row.answer_ms;
        c.status = row.status;
        c.end_reason = row.end_reason;
        CHECK(call_result(c) == row.expected);
    }
}

TEST_CASE("format_codecs: most calls first, ties by name; empty for no codecs") {
    CHECK(format_codecs({}) == "");
    CHECK(format_codecs({{"PCMU/PCMU", 1}}) == "PCMU/PCMU=1");
    CHECK(format_codecs({{"PCMA/PCMA", 2}, {"PCMU/PCMU", 1}, {"opus/PCMU", 7}, {"opus/PCMA", 2}}) ==
          "opus/PCMU=7 PCMA/PCMA=2 opus/PCMA=2 PCMU/PCMU=1");
}

TEST_CASE("format_calls: no calls is a header (table, CSV) or [] (JSON); duration runs from answer to end") {
    CHECK(format_calls({}, Format::Json) == "[]\n");
    CHECK(format_calls({}, Format::Csv).find("id,realm,user,direction,remote,start,") == 0);
    CHECK(format_calls({}, Format::Table).rfind("START  USER  REALM", 0) == 0);
    auto c = call("c1", "alice", "example.org", kDay, 3 * kHour + 61'500);
    const std::string table = format_calls({c}, Format::Table);
    CHECK(table.find(" 3:01:01 ") != std::string::npos);
    CHECK(format_calls({c}, Format::Json).find("\"duration_seconds\": 10861.5,") != std::string::npos);
}

TEST_CASE("format_calls: the trunk's name (issue 14) is the last field; null (JSON), empty (CSV), - (table) without one") {
    auto c = call("c1", "alice", "example.org", kDay, 1000);
    c.trunk = "uk";
    auto agent = call("c2", "alice", "example.org", kDay + 1000, 1000, "opus/agent");
    agent.trunk.clear();
    const std::string json = format_calls({c, agent}, Format::Json);
    CHECK(json.find("\"trunk_out_mos\": null, \"trunk\": \"uk\"}") != std::string::npos);
    CHECK(json.find("\"trunk_out_mos\": null, \"trunk\": null}") != std::string::npos);
    const std::string csv = format_calls({c, agent}, Format::Csv);
    CHECK(csv.find(",trunk_out_mos,trunk\r\n") != std::string::npos);
    CHECK(csv.find(",,uk\r\n") != std::string::npos);
    CHECK(csv.find(",,\r\n") != std::string::npos);
    const std::string table = format_calls({c, agent}, Format::Table);
    CHECK(table.find(" TRUNK ") != std::string::npos);
    CHECK(table.find(" uk ") != std::string::npos);
    CHECK(table.find(" - ") != std::string::npos);
}

TEST_CASE("format_calls table writes control characters from client-chosen names as \\xNN") {
    auto c = call("c1", "evil\x1b[2J", "example.org", kDay, 1000);
    c.remote = "+1\n555";
    const std::string out = format_calls({c}, Format::Table);
    CHECK(out.find('\x1b') == std::string::npos);
    CHECK(out.find("evil\\x1b[2J") != std::string::npos);
    CHECK(out.find("+1\\x0a555") != std::string::npos);
    CHECK(std::count(out.begin(), out.end(), '\n') == 2);
}

TEST_CASE("format_calls json escapes markup and control characters in names and numbers (GET /api/v1/calls)") {
    auto c = call("c1", "<script>alert(1)</script>\x1b[31m", "example.org", kDay, 1000);
    c.remote = "\"Mallory <script>\" <sip:+1\x1b@x>";
    const std::string out = format_calls({c}, Format::Json);
    CHECK(out.find('<') == std::string::npos);
    CHECK(out.find('\x1b') == std::string::npos);
    CHECK(out.find(R"("user": "\u003cscript\u003ealert(1)\u003c/script\u003e\u001b[31m")") != std::string::npos);
    CHECK(out.find(R"("remote": "\"Mallory \u003cscript\u003e\" \u003csip:+1\u001b@x\u003e")") != std::string::npos);
}

TEST_SUITE_END();
