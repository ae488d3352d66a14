// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <string>

#include "turnbridge/base/base64.hpp"

using namespace turnbridge;

namespace {
std::span<const std::uint8_t> bytes(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }
}  // namespace

TEST_CASE("base64 of the RFC 4648 §10 test vectors, both ways") {
    const std::pair<std::string, std::string> rows[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (const auto& row : rows) {  // not a structured binding: clang 14 cannot CAPTURE one
        const std::string& plain = row.first;
        const std::string& coded = row.second;
        CAPTURE(plain);
        CHECK(base64_encode(bytes(plain)) == coded);
        const auto back = base64_decode(coded);
        REQUIRE(back);
        CHECK(std::string(back->begin(), back->end()) == plain);
    }
}

TEST_CASE("base64_decode refuses what is not padded base64") {
    for (const char* bad : {"Zg=", "Zg", "Z===", "Zm 9v", "Zm9v\n", "Zm9*", "=Zm9"}) {
        CAPTURE(bad);
        CHECK_FALSE(base64_decode(bad));
    }
}
