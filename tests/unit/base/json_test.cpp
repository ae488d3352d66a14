// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "turnbridge/base/json.hpp"

using namespace turnbridge;

namespace {
std::string quoted(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}
}  // namespace

TEST_CASE("JSON strings: escapes, control bytes, markup, U+2028/2029, and UTF-8 that stays valid") {
    struct Row { const char* name; std::string in; std::string out; };
    const Row rows[] = {
        {"plain", "alice", "\"alice\""},
        {"quote and backslash", "a\"b\\c", "\"a\\\"b\\\\c\""},
        {"newline and tab", "a\nb\tc", "\"a\\nb\\tc\""},
        {"control byte", std::string("a\x01", 2), "\"a\\u0001\""},
        {"DEL", "\x7f", "\"\\u007f\""},
        {"less-than", "<", "\"\\u003c\""},
        {"greater-than", ">", "\"\\u003e\""},
        {"ampersand", "&", "\"\\u0026\""},
        {"closing script tag", "</script>", "\"\\u003c/script\\u003e\""},
        {"ESC", "\x1b[31m", "\"\\u001b[31m\""},
        {"NUL", std::string("\0", 1), "\"\\u0000\""},
        {"carriage return", "\r", "\"\\r\""},
        {"unit separator", "\x1f", "\"\\u001f\""},
        {"U+2028 line separator", "a\xE2\x80\xA8" "b", "\"a\\u2028b\""},
        {"U+2029 paragraph separator", "\xE2\x80\xA9", "\"\\u2029\""},
        {"U+2027 stays", "\xE2\x80\xA7", "\"\xE2\x80\xA7\""},
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

TEST_CASE("JsonWriter in the spaced style writes \"a\": 1, \"b\": 2 (the report's rows)") {
    JsonWriter j(JsonStyle::Spaced);
    j.begin_object().key("a").value(std::uint64_t{1}).key("b").begin_object().key("<").value("&").end_object();
    j.end_object();
    CHECK(j.take() == R"({"a": 1, "b": {"\u003c": "\u0026"}})");
}
