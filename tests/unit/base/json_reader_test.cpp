// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include "turnbridge/base/json_reader.hpp"

using namespace turnbridge;

TEST_CASE("parse_json reads a Media Streams message: nested objects, strings and numbers (RFC 8259)") {
    const auto v = parse_json(R"({"event":"media","streamSid":"MZ1","media":{"payload":"/w==","n":-1.5e2,"ok":true,"x":null},"a":[1,"b"]})");
    REQUIRE(v);
    CHECK(v->text("event") == "media");
    REQUIRE(v->find("media"));
    CHECK(v->find("media")->text("payload") == "/w==");
    CHECK(v->find("media")->find("n")->number == -150);
    CHECK(v->find("media")->find("ok")->boolean);
    CHECK(v->find("a")->items.size() == 2);
    CHECK(!v->text("missing"));
    CHECK(!v->text("media"));   // an object, not a string
}

TEST_CASE("parse_json unescapes \\uXXXX, surrogate pairs and the short escapes (RFC 8259 §7)") {
    const auto v = parse_json(R"({"s":"a\"b\\c\/\n\u00e9\ud83d\ude00\ud800"})");
    REQUIRE(v);
    CHECK(*v->text("s") == "a\"b\\c/\n\xC3\xA9\xF0\x9F\x98\x80\xEF\xBF\xBD");
}

TEST_CASE("parse_json refuses malformed input, deep nesting and oversize text") {
    for (const char* bad : {"", "{", "{\"a\":}", "{\"a\" 1}", "[1,]", "{\"a\":1,}", "01", "1.", "-", "tru", "\"a\nb\"",
                            "{} x", "\"\\x\"", "{\"a\":\"\\u12\"}"}) {
        CAPTURE(bad);
        CHECK(!parse_json(bad));
    }
    CHECK(parse_json(std::string(16, '[') + std::string(16, ']')));
    CHECK(!parse_json(std::string(17, '[') + std::string(17, ']')));
    CHECK(!parse_json(std::string(100000, '['), {16, 1 << 20}));   // refused at depth 17, no deep recursion
    CHECK(!parse_json("[1, 2]", {16, 4}));
}
