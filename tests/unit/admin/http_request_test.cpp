// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <string>

#include "turnbridge/admin/http_request.hpp"

using namespace turnbridge::admin;
using Status = RequestParser::Status;

namespace {

Status parse_all(std::string_view bytes, Request& out, RequestParser& p) {
    p.feed(bytes);
    return p.next(out);
}

template <std::size_t N>
std::string bytes_of(const char (&s)[N]) {
    return std::string(s, N - 1);  // keeps embedded NULs
}

std::string with_headers(std::size_t count) {
    std::string s = "GET / HTTP/1.1\r\nHost: localhost\r\n";
    for (std::size_t i = 1; i < count; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
    return s + "\r\n";
}

}  // namespace

TEST_CASE("a GET request: method, decoded path and query, lower-case field names") {
    RequestParser p;
    Request r;
    REQUIRE(parse_all("GET /api/v1/usage?user=al%20ice&realm=a+b&by=day&flag HTTP/1.1\r\n"
                      "Host: 127.0.0.1:9641\r\nAuthorization:  Bearer abc \r\n\r\n", r, p) == Status::Ready);
    CHECK(r.method == "GET");
    CHECK(r.target == "/api/v1/usage?user=al%20ice&realm=a+b&by=day&flag");
    CHECK(r.path == "/api/v1/usage");
    REQUIRE(r.query.size() == 4);
    CHECK(r.query[0] == std::pair<std::string, std::string>{"user", "al ice"});
    CHECK(r.query[1] == std::pair<std::string, std::string>{"realm", "a b"});
    CHECK(r.query[3] == std::pair<std::string, std::string>{"flag", ""});
    CHECK(r.headers[0].name == "host");
    REQUIRE(r.header("AUTHORIZATION") != nullptr);
    CHECK(*r.header("authorization") == "Bearer abc");  // OWS trimmed both sides (RFC 9112 §5)
    CHECK(r.keep_alive);
    CHECK(r.body.empty());
    CHECK(p.next(r) == Status::NeedMore);
}

TEST_CASE("a request split at every byte comes out once, whole") {
    const std::string req = "DELETE /api/v1/allocations/a%2Fb HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello";
    RequestParser p;
    Request r;
    for (std::size_t i = 0; i + 1 < req.size(); ++i) {
        CAPTURE(i);
        p.feed(req.substr(i, 1));
        REQUIRE(p.next(r) == Status::NeedMore);
    }
    p.feed(req.substr(req.size() - 1));
    REQUIRE(p.next(r) == Status::Ready);
    CHECK(r.method == "DELETE");
    CHECK(r.path == "/api/v1/allocations/a/b");
    CHECK(r.body == "hello");
    CHECK(p.buffered() == 0);
}

TEST_CASE("pipelined requests come out in order; the next one's bytes stay buffered") {
    RequestParser p;
    p.feed("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /c HT");
    Request r;
    REQUIRE(p.next(r) == Status::Ready);
    CHECK(r.path == "/a");
    CHECK(r.keep_alive);
    REQUIRE(p.next(r) == Status::Ready);
    CHECK(r.path == "/b");
    CHECK_FALSE(r.keep_alive);
    CHECK(p.next(r) == Status::NeedMore);
    p.feed("TP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(p.next(r) == Status::Ready);
    CHECK(r.path == "/c");
}

TEST_CASE("persistence follows the version and the Connection field (RFC 9112 §9.3)") {
    struct Row { const char* name; const char* head; bool keep_alive; };
    const Row rows[] = {
        {"1.1 default", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
        {"1.1 close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n", false},
        {"1.1 close in a list", "GET / HTTP/1.1\r\nHost: x\r\nConnection: te, close\r\n\r\n", false},
        {"1.0 default", "GET / HTTP/1.0\r\n\r\n", false},
        {"1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        RequestParser p;
        Request r;
        REQUIRE(parse_all(row.head, r, p) == Status::Ready);
        CHECK(r.keep_alive == row.keep_alive);
    }
}

TEST_CASE("empty lines before the request line are ignored (RFC 9112 §2.2)") {
    RequestParser p;
    Request r;
    REQUIRE(parse_all("\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n", r, p) == Status::Ready);
    CHECK(r.path == "/x");
}

TEST_CASE("header limits: 8 KiB of head and 100 fields, else 431") {
    {
        RequestParser p;
        Request r;
        CHECK(parse_all(with_headers(100), r, p) == Status::Ready);
    }
    {
        RequestParser p;
        Request r;
        CHECK(parse_all(with_headers(101), r, p) == Status::Error);
        CHECK(p.error_status() == 431);
    }
    {
        // No blank line yet, but already over the limit: refused without waiting for more.
        RequestParser p;
        Request r;
        CHECK(parse_all("GET / HTTP/1.1\r\nX: " + std::string(kMaxHeaderBytes, 'a'), r, p) == Status::Error);
        CHECK(p.error_status() == 431);
    }
    {
        RequestParser p;
        Request r;
        const std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX: ";
        const std::string fits = head + std::string(kMaxHeaderBytes - head.size() - 4, 'a') + "\r\n\r\n";
        REQUIRE(fits.size() == kMaxHeaderBytes);
        CHECK(parse_all(fits, r, p) == Status::Ready);
        RequestParser q;
        CHECK(parse_all(head + std::string(kMaxHeaderBytes - head.size() - 3, 'a') + "\r\n\r\n", r, q) == Status::Error);
        CHECK(q.error_status() == 431);
    }
}

TEST_CASE("body limit: 64 KiB, else 413 as soon as Content-Length says so") {
    RequestParser p;
    Request r;
    p.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(kMaxBodyBytes) + "\r\n\r\n");
    CHECK(p.next(r) == Status::NeedMore);
    p.feed(std::string(kMaxBodyBytes, 'b'));
    REQUIRE(p.next(r) == Status::Ready);
    CHECK(r.body.size() == kMaxBodyBytes);

    RequestParser q;
    CHECK(parse_all("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(kMaxBodyBytes + 1) + "\r\n\r\n", r, q) ==
          Status::Error);
    CHECK(q.error_status() == 413);
    RequestParser huge;
    CHECK(parse_all("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", r, huge) == Status::Error);
    CHECK(huge.error_status() == 413);
}

TEST_CASE("malformed requests are refused with the status that names the fault") {
    struct Row { const char* name; std::string bytes; int status; };
    const Row rows[] = {
        {"chunked body", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 411},
        {"chunked after gzip", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 411},
        {"other transfer coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"conflicting lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"negative length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
        {"length with junk", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400},
        {"empty length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400},
        {"1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400},
        {"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"double space", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"no version", "GET /\r\nHost: x\r\n\r\n", 400},
        {"lower-case version", "GET / http/1.1\r\nHost: x\r\n\r\n", 400},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"method with a bracket", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"absolute-form target", "GET http://example.com/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"bad escape", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"truncated escape", "GET /a% HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"escaped NUL", "GET /a?x=%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"control byte in target", std::string("GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n"), 400},
        {"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        {"no colon", "GET / HTTP/1.1\r\nHost x\r\n\r\n", 400},
        {"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400},
        {"NUL in a value", bytes_of("GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n"), 400},
        {"bare CR in a value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400},
        {"bare LF line ends", "GET / HTTP/1.1\nHost: x\n\n", 400},
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        RequestParser p;
        Request r;
        CHECK(parse_all(row.bytes, r, p) == Status::Error);
        CHECK(p.error_status() == row.status);
        CHECK_FALSE(p.error_text().empty());
        p.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(p.next(r) == Status::Error);  // no resynchronising after a framing error
    }
}

TEST_CASE("percent-decoding: '+' is a space only in the query") {
    CHECK(percent_decode("a%2Fb%2fc", false) == "a/b/c");
    CHECK(percent_decode("a+b", false) == "a+b");
    CHECK(percent_decode("a+b", true) == "a b");
    CHECK(percent_decode("%E2%82%AC", true) == "\xE2\x82\xAC");
    CHECK_FALSE(percent_decode("%4", true));
    CHECK_FALSE(percent_decode("%g0", true));
    CHECK_FALSE(percent_decode("%00", true));
    std::string path;
    QueryParams q;
    REQUIRE(parse_target("/p+q?a=1&&b=%3D&=v", path, q));
    CHECK(path == "/p+q");
    REQUIRE(q.size() == 3);
    CHECK(q[1] == std::pair<std::string, std::string>{"b", "="});
    CHECK(q[2] == std::pair<std::string, std::string>{"", "v"});
    CHECK_FALSE(parse_target("*", path, q));
    CHECK_FALSE(parse_target("/a#frag", path, q));
}
