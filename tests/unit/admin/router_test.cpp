// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <string>

#include "fake_backend.hpp"
#include "turnbridge/accounting/calls.hpp"
#include "turnbridge/accounting/usage.hpp"
#include "turnbridge/admin/router.hpp"

using namespace turnbridge;
using namespace turnbridge::admin;
using turnbridge::admin::testing::FakeBackend;
using turnbridge::admin::testing::sample_allocation;

namespace {

constexpr std::int64_t kNow = 1793535296000;  // 2026-11-01T12:14:56Z
constexpr std::string_view kToken = "t0ken";

Request request(std::string method, std::string target, std::string authorization = "Bearer t0ken",
                std::string host = "127.0.0.1:9641") {
    Request r;
    r.method = std::move(method);
    r.target = target;
    REQUIRE(parse_target(target, r.path, r.query));
    r.headers.push_back({"host", std::move(host)});
    if (!authorization.empty()) r.headers.push_back({"authorization", std::move(authorization)});
    return r;
}

const std::string* field(const Response& r, std::string_view name) {
    for (const auto& h : r.headers)
        if (h.name == name) return &h.value;
    return nullptr;
}

Response with_token(FakeBackend& b, const Request& r) { return handle(r, b, RouterConfig{kToken, kNow}); }
Response open(FakeBackend& b, const Request& r) { return handle(r, b, RouterConfig{"", kNow}); }

// 400 with a JSON body naming `parameter` and saying what is wrong.
void check_bad_parameter(const Response& r, const std::string& parameter) {
    CHECK(r.status == 400);
    CHECK(r.content_type == "application/json");
    CHECK(r.body.find("\"parameter\":\"" + parameter + "\"") != std::string::npos);
    CHECK(r.body.find("\"error\":\"") != std::string::npos);
}

}  // namespace

TEST_CASE("with a token, a request without the bearer header gets 401 and a Bearer challenge (RFC 6750 §3)") {
    FakeBackend b;
    for (const char* target : {"/", "/metrics", "/api/v1/usage", "/api/v1/calls", "/api/v1/allocations", "/nowhere"}) {
        CAPTURE(target);
        const auto r = with_token(b, request("GET", target, ""));
        CHECK(r.status == 401);
        REQUIRE(field(r, "WWW-Authenticate") != nullptr);
        CHECK(field(r, "WWW-Authenticate")->rfind("Bearer", 0) == 0);
        CHECK(r.content_type == "application/json");
        CHECK(r.body.find("\"error\"") != std::string::npos);
    }
    const auto del = with_token(b, request("DELETE", "/api/v1/allocations/x", ""));
    CHECK(del.status == 401);
    CHECK(b.kicked.empty());
}

TEST_CASE("a wrong token gets 401 with error=\"invalid_token\"") {
    FakeBackend b;
    for (const char* auth : {"Bearer t0ke", "Bearer t0ken2", "Bearer T0KEN", "Basic dDBrZW4=", "t0ken", "Bearer"}) {
        CAPTURE(auth);
        const auto r = with_token(b, request("GET", "/metrics", auth));
        CHECK(r.status == 401);
    }
    const auto r = with_token(b, request("GET", "/metrics", "Bearer wrong"));
    REQUIRE(field(r, "WWW-Authenticate") != nullptr);
    CHECK(field(r, "WWW-Authenticate")->find("error=\"invalid_token\"") != std::string::npos);
}

TEST_CASE("the right token opens every endpoint; the scheme name is case-insensitive") {
    FakeBackend b;
    CHECK(with_token(b, request("GET", "/metrics")).status == 200);
    CHECK(with_token(b, request("GET", "/metrics", "bearer t0ken")).status == 200);
    CHECK(with_token(b, request("GET", "/metrics", "BEARER   t0ken")).status == 200);
    CHECK(with_token(b, request("GET", "/api/v1/allocations")).status == 200);
    CHECK(with_token(b, request("GET", "/api/v1/usage")).status == 200);
    CHECK(with_token(b, request("GET", "/")).status == 200);
}

TEST_CASE("the page also takes ?token=, the API does not") {
    FakeBackend b;
    const auto page = with_token(b, request("GET", "/?token=t0ken", ""));
    CHECK(page.status == 200);
    CHECK(page.content_type == "text/html; charset=utf-8");
    REQUIRE(field(page, "Content-Security-Policy") != nullptr);
    CHECK(field(page, "Content-Security-Policy")->find("default-src 'none'") != std::string::npos);
    CHECK(*field(page, "Referrer-Policy") == "no-referrer");
    CHECK(with_token(b, request("GET", "/?token=wrong", "")).status == 401);
    CHECK(with_token(b, request("GET", "/metrics?token=t0ken", "")).status == 401);
    CHECK(with_token(b, request("GET", "/api/v1/allocations?token=t0ken", "")).status == 401);
}

TEST_CASE("without a token everything is open, but only under a loopback Host name") {
    FakeBackend b;
    CHECK(open(b, request("GET", "/metrics", "")).status == 200);
    CHECK(open(b, request("GET", "/", "", "localhost:9641")).status == 200);
    CHECK(open(b, request("GET", "/", "", "[::1]:9641")).status == 200);
    CHECK(open(b, request("GET", "/", "", "127.0.0.2")).status == 200);
    // A page elsewhere that rebinds its name to 127.0.0.1 still sends its own name.
    CHECK(open(b, request("GET", "/api/v1/allocations", "", "evil.example:9641")).status == 403);
    CHECK(open(b, request("DELETE", "/api/v1/allocations/x", "", "localhost.evil.example")).status == 403);
    CHECK(open(b, request("GET", "/", "", "10.0.0.1:9641")).status == 403);
}

TEST_CASE("GET /metrics is Prometheus text 0.0.4 from the backend's figures") {
    FakeBackend b;
    b.metrics_value.realms["example.org"].active_allocations = 2;
    b.metrics_value.realms["example.org"].traffic.wire_bytes[3] = 4242;
    b.metrics_value.auth_failures = 9;
    const auto r = with_token(b, request("GET", "/metrics"));
    CHECK(r.status == 200);
    CHECK(r.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(r.body.find("# TYPE turnbridge_active_allocations gauge\n") != std::string::npos);
    CHECK(r.body.find("turnbridge_active_allocations{realm=\"example.org\"} 2\n") != std::string::npos);
    CHECK(r.body.find("turnbridge_relayed_bytes_total{realm=\"example.org\",direction=\"relay_to_client\",kind=\"wire\"} 4242\n") !=
          std::string::npos);
    CHECK(r.body.find("turnbridge_auth_failures_total 9\n") != std::string::npos);
}

TEST_CASE("GET /api/v1/usage passes the parsed query and returns format_usage's JSON unchanged") {
    FakeBackend b;
    accounting::UsageRow row;
    row.key = "alice";
    row.realm = "example.org";
    row.allocations = 3;
    row.traffic.wire_bytes[1] = 123;
    b.rows = {row};
    const auto r = with_token(b, request("GET", "/api/v1/usage?user=alice&realm=example.org&since=7d&until=1793535000&by=hour"));
    CHECK(r.status == 200);
    CHECK(r.content_type == "application/json");
    CHECK(r.body == accounting::format_usage(b.rows, accounting::Format::Json));
    REQUIRE(b.queries.size() == 1);
    const auto& q = b.queries[0];
    CHECK(q.user == std::optional<std::string>("alice"));
    CHECK(q.realm == std::optional<std::string>("example.org"));
    CHECK(q.since_ms == accounting::parse_time("7d", kNow));
    CHECK(q.since_ms == std::optional<std::int64_t>(kNow - 7 * 86400000LL));
    CHECK(q.until_ms == accounting::parse_time("1793535000", kNow));
    CHECK(q.by == accounting::GroupBy::Hour);
}

TEST_CASE("usage parameters left empty mean 'not given'; by defaults to user") {
    FakeBackend b;
    CHECK(with_token(b, request("GET", "/api/v1/usage?user=&realm=&since=&until=&by=")).status == 200);
    REQUIRE(b.queries.size() == 1);
    CHECK_FALSE(b.queries[0].user);
    CHECK_FALSE(b.queries[0].realm);
    CHECK_FALSE(b.queries[0].since_ms);
    CHECK_FALSE(b.queries[0].until_ms);
    CHECK(b.queries[0].by == accounting::GroupBy::User);
}

TEST_CASE("a bad usage query gets 400 naming the parameter") {
    struct Row { const char* target; const char* parameter; };
    const Row rows[] = {
        {"/api/v1/usage?since=garbage", "since"},
        {"/api/v1/usage?until=yesterday-ish", "until"},
        {"/api/v1/usage?by=week", "by"},
        {"/api/v1/usage?usr=alice", "usr"},
        {"/api/v1/usage?token=t0ken", "token"},
        {"/api/v1/usage?user=a&user=b", "user"},
        {"/api/v1/usage?since=1793535000&until=1793534000", "until"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.target);
        FakeBackend b;
        check_bad_parameter(with_token(b, request("GET", row.target)), row.parameter);
        CHECK(b.queries.empty());
    }
}

TEST_CASE("GET /api/v1/calls passes the filters and limit, and returns format_calls' JSON unchanged") {
    FakeBackend b;
    accounting::CallRecord c;
    c.id = "18f2-1";
    c.realm = "example.org";
    c.account = "alice";
    c.direction = "outbound";
    c.remote = "+15550123";
    c.start_ms = kNow - 60'000;
    c.answer_ms = kNow - 55'000;
    c.end_ms = kNow;
    c.status = 200;
    c.codecs = "opus/PCMU";
    c.browser_out_bytes = 4242;
    b.call_records = {c};
    const auto r = with_token(b, request("GET", "/api/v1/calls?user=alice&realm=example.org&since=7d&until=1793535000&limit=50"));
    CHECK(r.status == 200);
    CHECK(r.content_type == "application/json");
    CHECK(r.body == accounting::format_calls(b.call_records, accounting::Format::Json));
    CHECK(r.body.find("\"id\": \"18f2-1\"") != std::string::npos);
    CHECK(r.body.find("\"duration_seconds\": 55,") != std::string::npos);
    REQUIRE(b.call_queries.size() == 1);
    const auto& q = b.call_queries[0];
    CHECK(q.user == std::optional<std::string>("alice"));
    CHECK(q.realm == std::optional<std::string>("example.org"));
    CHECK(q.since_ms == std::optional<std::int64_t>(kNow - 7 * 86400000LL));
    CHECK(q.until_ms == std::optional<std::int64_t>(1793535000000LL));
    CHECK(q.limit == std::optional<std::size_t>(50));
    CHECK(b.queries.empty());  // not a usage query

    FakeBackend none;
    const auto empty = with_token(none, request("GET", "/api/v1/calls?user=&realm=&since=&until=&limit="));
    CHECK(empty.status == 200);
    CHECK(empty.body == "[]\n");
    REQUIRE(none.call_queries.size() == 1);
    CHECK_FALSE(none.call_queries[0].user);
    CHECK_FALSE(none.call_queries[0].realm);
    CHECK_FALSE(none.call_queries[0].since_ms);
    CHECK_FALSE(none.call_queries[0].until_ms);
    CHECK_FALSE(none.call_queries[0].limit);
}

TEST_CASE("a bad calls query gets 400 naming the parameter") {
    struct Row { const char* target; const char* parameter; };
    const Row rows[] = {
        {"/api/v1/calls?since=garbage", "since"},
        {"/api/v1/calls?until=yesterday-ish", "until"},
        {"/api/v1/calls?since=1793535000&until=1793534000", "until"},
        {"/api/v1/calls?by=user", "by"},  // a listing has no grouping
        {"/api/v1/calls?account=alice", "account"},
        {"/api/v1/calls?limit=0", "limit"},
        {"/api/v1/calls?limit=-1", "limit"},
        {"/api/v1/calls?limit=12x", "limit"},
        {"/api/v1/calls?limit=1000001", "limit"},
        {"/api/v1/calls?limit=99999999999999999999999", "limit"},
        {"/api/v1/calls?realm=a&realm=b", "realm"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.target);
        FakeBackend b;
        check_bad_parameter(with_token(b, request("GET", row.target)), row.parameter);
        CHECK(b.call_queries.empty());
    }
    FakeBackend b;
    CHECK(with_token(b, request("GET", "/api/v1/calls?limit=1000000")).status == 200);
}

TEST_CASE("GET /api/v1/allocations lists live allocations with counters and bit rates") {
    FakeBackend b;
    b.live_allocations = {sample_allocation("1a2b-0001", "alice"), sample_allocation("1a2b-0002", "b\"o<b>")};
    const auto r = with_token(b, request("GET", "/api/v1/allocations"));
    CHECK(r.status == 200);
    CHECK(r.content_type == "application/json");
    const auto& j = r.body;
    CHECK(j.front() == '[');
    for (const char* part : {
             R"({"id":"1a2b-0001","user":"alice","username":"1793535296:alice","realm":"example.org",)",
             R"("client":"127.0.0.1:50000","transport":"udp","relay":"127.0.0.1:61000",)",
             R"("start":"2026-11-01T12:14:56Z","start_ms":1793535296000,"peers":2,)",
             R"("client_to_relay_packets":10,"client_to_relay_payload_bytes":1000,"client_to_relay_wire_bytes":1040,)",
             R"("relay_to_client_packets":13,"relay_to_client_payload_bytes":1003,"relay_to_client_wire_bytes":1043,)",
             R"("bitrate_in_bps":64000,"bitrate_out_bps":128000.5})",
             R"("user":"b\"o\u003cb\u003e")",
         }) {
        CAPTURE(part);
        CHECK(j.find(part) != std::string::npos);
    }
    CHECK(with_token(b, request("GET", "/api/v1/allocations")).body.find("1a2b-0002") != std::string::npos);
    FakeBackend none;
    CHECK(with_token(none, request("GET", "/api/v1/allocations")).body == "[]\n");
}

TEST_CASE("DELETE /api/v1/allocations/ID kicks: 204, then 404 for an unknown ID") {
    FakeBackend b;
    b.live_allocations = {sample_allocation("1a2b-0001", "alice"), sample_allocation("id/with space", "bob")};
    const auto r = with_token(b, request("DELETE", "/api/v1/allocations/1a2b-0001"));
    CHECK(r.status == 204);
    CHECK(r.body.empty());
    REQUIRE(b.kicked.size() == 1);
    CHECK(b.kicked[0] == "1a2b-0001");
    const auto again = with_token(b, request("DELETE", "/api/v1/allocations/1a2b-0001"));
    CHECK(again.status == 404);
    CHECK(again.content_type == "application/json");
    CHECK(again.body.find("\"error\"") != std::string::npos);
    // IDs are percent-decoded, but a slash inside one must be escaped to reach it.
    CHECK(with_token(b, request("DELETE", "/api/v1/allocations/id%2Fwith%20space")).status == 404);
    CHECK(b.kicked.size() == 1);
}

TEST_CASE("unknown paths get 404; known paths with the wrong method get 405 and Allow") {
    FakeBackend b;
    for (const char* target : {"/nope", "/api/v1", "/api/v1/allocations/a/b", "/api/v1/allocations/", "/metrics/"}) {
        CAPTURE(target);
        CHECK(with_token(b, request("GET", target)).status == 404);
    }
    struct Row { const char* method; const char* target; const char* allow; };
    const Row rows[] = {
        {"POST", "/metrics", "GET, HEAD"},
        {"DELETE", "/api/v1/allocations", "GET, HEAD"},
        {"PUT", "/api/v1/usage", "GET, HEAD"},
        {"PUT", "/api/v1/calls", "GET, HEAD, POST"},   // POST places an outbound agent call (issue 17)
        {"POST", "/api/v1/calls/dial-1", "GET, HEAD"},
        {"POST", "/", "GET, HEAD"},
        {"GET", "/api/v1/allocations/abc", "DELETE"},
        {"get", "/metrics", "GET, HEAD"},  // methods are case-sensitive (RFC 9110 §9.1)
    };
    for (const auto& row : rows) {
        CAPTURE(row.method);
        CAPTURE(row.target);
        const auto r = with_token(b, request(row.method, row.target));
        CHECK(r.status == 405);
        REQUIRE(field(r, "Allow") != nullptr);
        CHECK(*field(r, "Allow") == row.allow);
    }
    CHECK(b.kicked.empty());
}

TEST_CASE("HEAD is answered like GET") {
    FakeBackend b;
    const auto r = with_token(b, request("HEAD", "/metrics"));
    CHECK(r.status == 200);
    CHECK_FALSE(r.body.empty());  // the writer leaves it out; its length still goes out
}

TEST_CASE("a backend failure is a 500 with no detail") {
    FakeBackend b;
    b.throw_on_usage = true;
    const auto r = with_token(b, request("GET", "/api/v1/usage"));
    CHECK(r.status == 500);
    CHECK(r.body.find("locked") == std::string::npos);
}

TEST_CASE("token_matches compares whole tokens") {
    CHECK(token_matches("t0ken", "t0ken"));
    CHECK_FALSE(token_matches("t0ke", "t0ken"));
    CHECK_FALSE(token_matches("t0ken ", "t0ken"));
    CHECK_FALSE(token_matches("", "t0ken"));
    CHECK(token_matches(std::string(1000, 'x'), std::string(1000, 'x')));
}

TEST_CASE("is_loopback_host knows localhost, 127/8 and [::1], with or without a port") {
    for (const char* h : {"localhost", "LOCALHOST:80", "127.0.0.1", "127.1.2.3:9641", "[::1]", "[::1]:9641"}) {
        CAPTURE(h);
        CHECK(is_loopback_host(h));
    }
    for (const char* h : {"", "example.org", "localhost.example", "10.0.0.1", "[::2]:1", "[::1", "::1", "127.0.0.1.nip.io"}) {
        CAPTURE(h);
        CHECK_FALSE(is_loopback_host(h));
    }
}

TEST_CASE("wrong tokens past auth_failures_per_minute get 429 with Retry-After (RFC 6585 §4), other sources unaffected") {
    FakeBackend b;
    AuthThrottle throttle(4, 1);
    const auto t0 = AuthThrottle::Time{} + std::chrono::hours(1);
    auto from = [&](const char* ip, const Request& req) {
        RouterConfig rc{kToken, kNow};
        rc.auth = {&throttle, *IpAddress::parse(ip), t0};
        return handle(req, b, rc);
    };
    std::vector<int> statuses;
    for (int i = 0; i < 7; ++i) statuses.push_back(from("192.0.2.9", request("GET", "/metrics", "Bearer nope")).status);
    CHECK(statuses == std::vector<int>{401, 401, 401, 401, 429, 429, 429});
    const auto held = from("192.0.2.9", request("GET", "/metrics"));   // the right token is not checked either
    CHECK(held.status == 429);
    REQUIRE(field(held, "Retry-After") != nullptr);
    CHECK(*field(held, "Retry-After") == "15");   // 4 a minute: a token every 15 s
    CHECK(from("127.0.0.1", request("GET", "/metrics")).status == 200);
    // A request without a token is not a guess.
    CHECK(from("198.51.100.1", request("GET", "/metrics", "")).status == 401);
    CHECK(throttle.counters().failures[2] == 4);
    CHECK(throttle.counters().throttled[2] == 4);
}
