// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "turnbridge/admin/json.hpp"

using namespace turnbridge::admin;

namespace {
std::string quoted(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}
}  // namespace

TEST_CASE("JSON strings: escapes, control bytes, and UTF-8 that stays valid") {
    struct Row { const char* name; std::string in; std::string out; };
    const Row rows[] = {
        {"plain", "alice", "\"alice\""},
        {"quote and backslash", "a\"b\\c", "\"a\\\"b\\\\c\""},
        {"newline and tab", "a\nb\tc", "\"a\\nb\\tc\""},
        {"control byte", std::string("a\x01", 2), "\"a\\u0001\""},
        {"DEL", "\x7f", "\"\\u007f\""},
        {"markup", "<b>&", "\"\\u003cb\\u003e\\u0026\""},
        {"two-byte UTF-8", "J\xC3\xBCrgen", "\"J\xC3\xBCrgen\""},
        {"four-byte UTF-8", "\xF0\x9F\x93\x9E", "\"\xF0\x9F\x93\x9E\""},
        {"lone continuation byte", "a\x80z", "\"a\\ufffdz\""},
        {"truncated sequence", "a\xE2\x82", "\"a\\ufffd\\ufffd\""},
        {"overlong slash", "\xC0\xAF", "\"\\ufffd\\ufffd\""},
        {"surrogate", "\xED\xA0\x80", "\"\\ufffd\\ufffd\\ufffd\""},
        {"above U+10FFFF", "\xF4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
    };
    for (const auto& r : rows) {
        CAPTURE(r.name);
        CHECK(quoted(r.in) == r.out);
    }
}

TEST_CASE("JsonWriter puts commas between members and elements, none elsewhere") {
    JsonWriter j;
    j.begin_object().key("a").value(std::uint64_t{1}).key("b").begin_array();
    j.value("x").value(std::int64_t{-2}).begin_object().end_object().null();
    j.end_array().key("c").value(true).key("d").value(0.25).end_object();
    CHECK(j.take() == R"({"a":1,"b":["x",-2,{},null],"c":true,"d":0.25})");
}

TEST_CASE("JSON has no NaN or infinity: they are written as null") {
    JsonWriter j;
    j.begin_array().value(std::nan("")).value(std::numeric_limits<double>::infinity()).value(1e21).end_array();
    CHECK(j.take() == "[null,null,1e+21]");
}

TEST_CASE("UTC time texts: ISO 8601 and IMF-fixdate, leap days and before 1970") {
    CHECK(iso8601_utc(0) == "1970-01-01T00:00:00Z");
    CHECK(iso8601_utc(1793535296000) == "2026-11-01T12:14:56Z");
    CHECK(iso8601_utc(1793535296999) == "2026-11-01T12:14:56Z");
    CHECK(iso8601_utc(951782400000) == "2000-02-29T00:00:00Z");
    CHECK(iso8601_utc(-1000) == "1969-12-31T23:59:59Z");
    CHECK(iso8601_utc(4102444799000) == "2099-12-31T23:59:59Z");
    CHECK(http_date(784111777000) == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(http_date(951782400000) == "Tue, 29 Feb 2000 00:00:00 GMT");
    CHECK(http_date(-1000) == "Wed, 31 Dec 1969 23:59:59 GMT");
}
