// SPDX-License-Identifier: Apache-2.0
// Fuzz target: ChannelData parsing and TCP/TLS stream framing, fed in input-chosen chunks.
#include <cstddef>
#include <cstdint>

#include "turnbridge/turn/channel_data.hpp"

using namespace turnbridge::turn;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> in(data, size);
    if (auto cd = parse_channel_data(in); cd && cd->data.data() + cd->data.size() > data + size) __builtin_trap();
    StreamFramer framer(4096);
    std::size_t pos = 0;
    while (pos < size) {
        const std::size_t chunk = 1 + data[pos] % 97;  // the input picks how the stream is cut
        const std::size_t n = std::min(chunk, size - pos);
        if (!framer.feed(in.subspan(pos, n))) return 0;
        pos += n;
        std::span<const std::uint8_t> frame;
        StreamFramer::Status st;
        while ((st = framer.next(frame)) == StreamFramer::Status::Frame) {
            if (frame.size() < 4) __builtin_trap();
        }
        if (st == StreamFramer::Status::Error) return 0;
    }
    return 0;
}
