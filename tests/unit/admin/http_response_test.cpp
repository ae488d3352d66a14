// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <string>

#include "turnbridge/admin/http_response.hpp"

using namespace turnbridge::admin;

namespace {
constexpr std::int64_t kNow = 784111777000;  // RFC 9110 §5.6.7's example date
}

TEST_CASE("a response carries status, Date, type, length, no-store, nosniff and the connection's fate") {
    Response r;
    r.content_type = "application/json";
    r.body = "[]";
    r.headers.push_back({"Allow", "GET, HEAD"});
    CHECK(serialize(r, true, false, kNow) ==
          "HTTP/1.1 200 OK\r\n"
          "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
          "Content-Type: application/json\r\n"
          "Content-Length: 2\r\n"
          "Cache-Control: no-store\r\n"
          "X-Content-Type-Options: nosniff\r\n"
          "Connection: keep-alive\r\n"
          "Allow: GET, HEAD\r\n"
          "\r\n[]");
    const auto closing = serialize(r, false, false, kNow);
    CHECK(closing.find("Connection: close\r\n") != std::string::npos);
    r.close = true;
    CHECK(serialize(r, true, false, kNow).find("Connection: close\r\n") != std::string::npos);
}

TEST_CASE("HEAD keeps Content-Length but sends no body (RFC 9110 §9.3.2)") {
    Response r;
    r.content_type = "text/plain";
    r.body = "hello";
    const auto wire = serialize(r, true, true, kNow);
    CHECK(wire.find("Content-Length: 5\r\n") != std::string::npos);
    CHECK(wire.substr(wire.size() - 4) == "\r\n\r\n");
}

TEST_CASE("204 has neither Content-Length nor body (RFC 9110 §8.6)") {
    Response r;
    r.status = 204;
    const auto wire = serialize(r, true, false, kNow);
    CHECK(wire.rfind("HTTP/1.1 204 No Content\r\n", 0) == 0);
    CHECK(wire.find("Content-Length") == std::string::npos);
    CHECK(wire.substr(wire.size() - 4) == "\r\n\r\n");
}

TEST_CASE("every response, errors and 204 included, says nosniff and no-store (a JSON body is never HTML)") {
    for (const int status : {200, 204, 400, 401, 404, 405, 500}) {
        CAPTURE(status);
        Response r = status == 200 || status == 204 ? Response{} : json_error(status, "<script>");
        r.status = status;
        const auto wire = serialize(r, true, false, kNow);
        CHECK(wire.find("\r\nX-Content-Type-Options: nosniff\r\n") != std::string::npos);
        CHECK(wire.find("\r\nCache-Control: no-store\r\n") != std::string::npos);
        CHECK(wire.find("<script") == std::string::npos);
    }
}

TEST_CASE("json_error names the parameter when there is one") {
    const auto e = json_error(400, "bad \"value\"", "since");
    CHECK(e.status == 400);
    CHECK(e.content_type == "application/json");
    CHECK(e.body == "{\"error\":\"bad \\\"value\\\"\",\"parameter\":\"since\"}\n");
    CHECK(json_error(404, "not found").body == "{\"error\":\"not found\"}\n");
    CHECK(reason_phrase(431) == "Request Header Fields Too Large");
}
