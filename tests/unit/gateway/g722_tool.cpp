// SPDX-License-Identifier: Apache-2.0
// Test tool for tests/interop/gateway_g722_test.js (not shipped): `g722_tool decode` turns raw
// G.722 (64 kbit/s) on stdin into 16 kHz signed 16-bit little-endian PCM on stdout.
#include <cstdio>
#include <cstring>
#include <vector>

#include "turnbridge/gateway/g722.hpp"

int main(int argc, char** argv) {
    using namespace turnbridge::gateway;
    if (argc != 2 || std::strcmp(argv[1], "decode") != 0) {
        std::fprintf(stderr, "usage: g722_tool decode < in.g722 > out.s16le\n");
        return 2;
    }
    G722Decoder dec(true);
    std::array<std::uint8_t, kTrunkFrameBytes> frame{};
    std::array<std::int16_t, kWideFrameSamples> pcm{};
    while (std::fread(frame.data(), 1, frame.size(), stdin) == frame.size()) {
        const auto n = dec.decode(frame, pcm);
        std::fwrite(pcm.data(), sizeof(std::int16_t), n, stdout);  // x86: little-endian
    }
    return 0;
}
