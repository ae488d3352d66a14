// SPDX-License-Identifier: Apache-2.0
// POST /api/v1/calls and GET /api/v1/calls/ID (issue 17): the admin API's outbound agent calls.
#include <doctest/doctest.h>

#include <string>

#include "fake_backend.hpp"
#include "turnbridge/admin/calls_api.hpp"
#include "turnbridge/admin/router.hpp"
#include "turnbridge/base/json_reader.hpp"

using namespace turnbridge;
using namespace turnbridge::admin;
using turnbridge::admin::testing::FakeBackend;

namespace {

constexpr std::int64_t kNow = 1793535296000;

Request post(std::string body, std::string target = "/api/v1/calls") {
    Request r;
    r.method = "POST";
    r.target = target;
    REQUIRE(parse_target(target, r.path, r.query));
    r.headers.push_back({"host", "127.0.0.1:9641"});
    r.headers.push_back({"authorization", "Bearer t0ken"});
    r.body = std::move(body);
    return r;
}

Request get(std::string target) {
    Request r = post("", std::move(target));
    r.method = "GET";
    return r;
}

Response run(FakeBackend& b, const Request& r) { return handle(r, b, RouterConfig{"t0ken", kNow}); }

std::string parameter_of(const Response& r) {
    const auto j = parse_json(r.body);
    if (!j) return "?";
    return std::string(j->text("parameter").value_or(""));
}

const std::string kGood = R"({"realm": "example.org", "to": "+15550123", "from": "+15550100", "agent": "ws://127.0.0.1:8765/a"})";

}  // namespace

TEST_CASE("POST /api/v1/calls hands the four fields to the backend and answers 202 with the call and its Location") {
    FakeBackend b;
    const auto r = run(b, post(kGood));
    CHECK(r.status == 202);
    REQUIRE(b.placed.size() == 1);
    CHECK(b.placed[0].realm == "example.org");
    CHECK(b.placed[0].to == "+15550123");
    CHECK(b.placed[0].from == "+15550100");
    CHECK(b.placed[0].agent == "ws://127.0.0.1:8765/a");
    const auto j = parse_json(r.body);
    REQUIRE(j);
    CHECK(j->text("id") == "dial-1");
    CHECK(j->text("status") == "dialing");
    bool location = false;
    for (const auto& h : r.headers) location |= h.name == "Location" && h.value == "/api/v1/calls/dial-1";
    CHECK(location);
}

TEST_CASE("POST /api/v1/calls: an optional media_format (issue 17, L16) reaches the backend; absent it is empty") {
    FakeBackend b;
    CHECK(run(b, post(R"({"realm": "example.org", "to": "+1", "from": "+1", "agent": "ai", "media_format": "l16"})")).status == 202);
    CHECK(run(b, post(kGood)).status == 202);
    REQUIRE(b.placed.size() == 2);
    CHECK(b.placed[0].media_format == "l16");
    CHECK(b.placed[1].media_format.empty());
}

TEST_CASE("POST /api/v1/calls: a bad body is 400 naming the field, and never reaches the backend") {
    struct Row { const char* name; std::string body; const char* parameter; };
    const Row rows[] = {
        {"not JSON", "{realm", ""},
        {"an array", "[1]", ""},
        {"to missing", R"({"realm": "r", "from": "+1", "agent": "ws://h/a"})", "to"},
        {"realm empty", R"({"realm": "", "to": "+1", "from": "+1", "agent": "ws://h/a"})", "realm"},
        {"agent a number", R"({"realm": "r", "to": "+1", "from": "+1", "agent": 5})", "agent"},
        {"an unknown field", R"({"realm": "r", "to": "+1", "from": "+1", "agent": "ws://h/a", "tp": "x"})", "tp"},
        {"to with letters", R"({"realm": "r", "to": "+1555abc", "from": "+1", "agent": "ws://h/a"})", "to"},
        {"from with a space", R"({"realm": "r", "to": "+1", "from": "+1 555", "agent": "ws://h/a"})", "from"},
        {"to too long", R"({"realm": "r", "to": "+123456789012345678901234567890123", "from": "+1", "agent": "ws://h/a"})", "to"},
        {"media_format unknown", R"({"realm": "r", "to": "+1", "from": "+1", "agent": "ws://h/a", "media_format": "pcm"})", "media_format"},
        {"media_format a number", R"({"realm": "r", "to": "+1", "from": "+1", "agent": "ws://h/a", "media_format": 16})", "media_format"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        FakeBackend b;
        const auto r = run(b, post(row.body));
        CHECK(r.status == 400);
        CHECK(parameter_of(r) == row.parameter);
        CHECK(b.placed.empty());
    }
}

TEST_CASE("POST /api/v1/calls: the backend's refusal (unknown realm, no gateway, over the bound) comes back as is") {
    // Not a structured binding: CAPTURE's lambda cannot capture one before C++20's P1091 (clang 14).
    for (const auto& row : {std::pair{404, "realm"}, {409, "realm"}, {429, "realm"}, {400, "agent"}}) {
        const int status = row.first;
        const char* const field = row.second;
        CAPTURE(status);
        FakeBackend b;
        b.place_answer.status = status;
        b.place_answer.error = "no";
        b.place_answer.field = field;
        const auto r = run(b, post(kGood));
        CHECK(r.status == status);
        CHECK(parameter_of(r) == field);
    }
}

TEST_CASE("GET /api/v1/calls/ID shows the call's progress; an unknown id is 404; other methods 405") {
    FakeBackend b;
    auto r = run(b, get("/api/v1/calls/dial-7"));
    CHECK(r.status == 404);
    REQUIRE(b.outbound_asked.size() == 1);
    CHECK(b.outbound_asked[0] == "dial-7");
    OutboundCall c;
    c.id = "dial-7";
    c.status = "busy";
    c.sip_code = 486;
    c.end_reason = "busy";
    c.created_ms = kNow;
    b.outbound = c;
    r = run(b, get("/api/v1/calls/dial-7"));
    CHECK(r.status == 200);
    const auto j = parse_json(r.body);
    REQUIRE(j);
    CHECK(j->text("status") == "busy");
    REQUIRE(j->find("sip_code"));
    CHECK(j->find("sip_code")->number == 486);
    CHECK(j->text("end_reason") == "busy");
    CHECK(j->text("created") == "2026-11-01T12:14:56Z");
    Request del = get("/api/v1/calls/dial-7");
    del.method = "DELETE";
    CHECK(run(b, del).status == 405);
    Request put = post(kGood);
    put.method = "PUT";
    const auto p = run(b, put);
    CHECK(p.status == 405);
    bool allow = false;
    for (const auto& h : p.headers) allow |= h.name == "Allow" && h.value == "GET, HEAD, POST";
    CHECK(allow);
}

TEST_CASE("the API's numbers: an optional +, then 1-32 digits, * or #") {
    CHECK(valid_api_number("+15550123"));
    CHECK(valid_api_number("911"));
    CHECK(valid_api_number("*67#"));
    CHECK_FALSE(valid_api_number("+"));
    CHECK_FALSE(valid_api_number(""));
    CHECK_FALSE(valid_api_number("++1"));
    CHECK_FALSE(valid_api_number("sip:1@x"));
}
