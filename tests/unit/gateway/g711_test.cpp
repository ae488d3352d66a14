// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "turnbridge/gateway/g711.hpp"

using namespace turnbridge::gateway;

namespace {
// Rows "a b" from a vector file written by tests/fixtures/g711/make_vectors.py (CPython audioop).
std::vector<std::pair<int, int>> load(const std::string& name) {
    std::ifstream f(std::string(TURNBRIDGE_FIXTURES_DIR) + "/g711/" + name);
    REQUIRE(f.good());
    std::vector<std::pair<int, int>> rows;
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream in(line);
        int a = 0, b = 0;
        in >> a >> b;
        rows.emplace_back(a, b);
    }
    return rows;
}
}  // namespace

TEST_CASE("G.711 decoding of all 256 codes matches audioop") {
    const auto ulaw = load("ulaw_decode.txt");
    const auto alaw = load("alaw_decode.txt");
    REQUIRE(ulaw.size() == 256);
    REQUIRE(alaw.size() == 256);
    // Not structured bindings: clang 14 cannot capture them in doctest's CAPTURE.
    for (const auto& row : ulaw) {
        const auto code = row.first;
        CAPTURE(code);
        CHECK(ulaw_to_linear(static_cast<std::uint8_t>(code)) == row.second);
    }
    for (const auto& row : alaw) {
        const auto code = row.first;
        CAPTURE(code);
        CHECK(alaw_to_linear(static_cast<std::uint8_t>(code)) == row.second);
    }
}

TEST_CASE("G.711 encoding of a 16-bit sweep matches audioop") {
    const auto ulaw = load("ulaw_encode.txt");
    const auto alaw = load("alaw_encode.txt");
    REQUIRE(ulaw.size() > 9000);
    int bad = 0;
    for (const auto& row : ulaw) {
        const auto linear = row.first;
        if (linear_to_ulaw(static_cast<std::int16_t>(linear)) != row.second && ++bad < 5) CHECK_MESSAGE(false, "ulaw ", linear);
    }
    for (const auto& row : alaw) {
        const auto linear = row.first;
        if (linear_to_alaw(static_cast<std::int16_t>(linear)) != row.second && ++bad < 10) CHECK_MESSAGE(false, "alaw ", linear);
    }
    CHECK(bad == 0);
}

TEST_CASE("G.711 known values: silence, extremes and the wire inversion") {
    CHECK(linear_to_ulaw(0) == 0xFF);       // mu-law: positive zero is all ones
    CHECK(ulaw_to_linear(0xFF) == 0);
    CHECK(ulaw_to_linear(0x80) == 32124);   // largest positive magnitude
    CHECK(ulaw_to_linear(0x00) == -32124);
    CHECK(linear_to_ulaw(32767) == 0x80);   // clipped
    CHECK(linear_to_alaw(0) == 0xD5);       // A-law: smallest positive step, even bits inverted
    CHECK(alaw_to_linear(0xD5) == 8);
    CHECK(alaw_to_linear(0x55) == -8);
    CHECK(alaw_to_linear(0xAA) == 32256);
    CHECK(linear_to_alaw(-32768) == 0x2A);
}

TEST_CASE("every G.711 code decodes and encodes back to itself") {
    for (int c = 0; c < 256; ++c) {
        CAPTURE(c);
        const auto code = static_cast<std::uint8_t>(c);
        // 0x7F is mu-law's negative zero: it decodes to 0, which encodes as positive zero 0xFF.
        CHECK(linear_to_ulaw(ulaw_to_linear(code)) == (code == 0x7F ? 0xFF : code));
        CHECK(linear_to_alaw(alaw_to_linear(code)) == code);
    }
}

TEST_CASE("G.711 quantisation error stays within half a step over the whole range") {
    for (int v = -32768; v <= 32767; ++v) {
        const auto s = static_cast<std::int16_t>(v);
        const int eu = std::abs(ulaw_to_linear(linear_to_ulaw(s)) - v);
        const int ea = std::abs(alaw_to_linear(linear_to_alaw(s)) - v);
        // Largest step is 1024 (mu-law) / 1024 (A-law) in segment 7; beyond the clip level more.
        if (std::abs(v) < 32000) {
            if (eu > 512 + 4) { CHECK_MESSAGE(false, "ulaw error at ", v, ": ", eu); break; }
            if (ea > 512 + 8) { CHECK_MESSAGE(false, "alaw error at ", v, ": ", ea); break; }
        }
    }
}

TEST_CASE("frame helpers: encode, decode and law conversion") {
    std::vector<std::int16_t> pcm = {0, 1000, -1000, 30000, -30000};
    std::vector<std::uint8_t> u(pcm.size()), a(pcm.size()), a2(pcm.size());
    std::vector<std::int16_t> back(pcm.size());
    g711_encode(G711Law::Pcmu, pcm, u);
    g711_encode(G711Law::Pcma, pcm, a);
    for (std::size_t i = 0; i < pcm.size(); ++i) {
        CHECK(u[i] == linear_to_ulaw(pcm[i]));
        CHECK(a[i] == linear_to_alaw(pcm[i]));
    }
    g711_decode(G711Law::Pcma, a, back);
    for (std::size_t i = 0; i < pcm.size(); ++i) CHECK(back[i] == alaw_to_linear(a[i]));
    g711_convert(G711Law::Pcmu, u, a2);
    for (std::size_t i = 0; i < pcm.size(); ++i) CHECK(a2[i] == linear_to_alaw(ulaw_to_linear(u[i])));
}
