// SPDX-License-Identifier: Apache-2.0
// TCP/TLS stream framing of STUN and padded ChannelData (RFC 8656 §12.5).
#include <doctest/doctest.h>

#include <vector>

#include "turnbridge/turn/channel_data.hpp"

using turnbridge::turn::StreamFramer;

TEST_CASE("the stream framer splits STUN and padded ChannelData fed byte by byte") {
    std::vector<std::uint8_t> stream = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42};
    for (int i = 0; i < 12; ++i) stream.push_back(static_cast<std::uint8_t>(i));
    const std::vector<std::uint8_t> cd = {0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0};
    stream.insert(stream.end(), cd.begin(), cd.end());
    StreamFramer f;
    std::vector<std::size_t> sizes;
    for (auto byte : stream) {
        REQUIRE(f.feed({&byte, 1}));
        std::span<const std::uint8_t> frame;
        while (f.next(frame) == StreamFramer::Status::Frame) sizes.push_back(frame.size());
    }
    REQUIRE(sizes.size() == 2);
    CHECK(sizes[0] == 20);
    CHECK(sizes[1] == 9);  // ChannelData without its padding
    CHECK(f.buffered() == 0);
}

TEST_CASE("the stream framer reports garbage and oversize input as errors") {
    StreamFramer f(128);
    const std::uint8_t junk[] = {0xC0, 0, 0, 0};
    REQUIRE(f.feed(junk));
    std::span<const std::uint8_t> frame;
    CHECK(f.next(frame) == StreamFramer::Status::Error);

    StreamFramer g(128);
    const std::uint8_t big[] = {0x40, 0x00, 0x01, 0x00};  // 256-byte ChannelData > 128 limit
    REQUIRE(g.feed(big));
    CHECK(g.next(frame) == StreamFramer::Status::Error);
    std::vector<std::uint8_t> flood(200, 0);
    StreamFramer h(128);
    CHECK_FALSE(h.feed(flood));
}
