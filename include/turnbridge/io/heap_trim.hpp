// SPDX-License-Identifier: Apache-2.0
#pragma once
// Gives memory back to the kernel after a burst of closed connections: glibc keeps freed heap
// pages (and raises its trim threshold as it goes), so after an attack that held many buffers
// (issue 11: 300 WebSocket clients holding 60 KB fragments) RSS would stay at its peak. The
// host counts closes; a trim runs only after many of them, when they stop (or every few seconds
// while they go on), never per packet.
#include <cstddef>
#include <cstdint>

namespace turnbridge::io {

class HeapTrim {
public:
    // Counts one close; true when enough have closed that a trim is worth it: the host then
    // (re)starts a short timer, so the trim runs once the burst is over (trim()).
    bool closed() { return ++closed_ >= kCloses; }
    void trim(std::uint64_t now_ms);
    // From the host's sweep: during a burst that never pauses, trim every kEveryMs anyway.
    void maybe_trim(std::uint64_t now_ms) {
        if (closed_ >= kCloses && now_ms - last_ms_ >= kEveryMs) trim(now_ms);
    }

    static constexpr std::size_t kCloses = 64;
    static constexpr std::uint64_t kEveryMs = 5'000;
    static constexpr std::uint64_t kQuietMs = 100;   // the burst is over when no close came for this long

private:
    std::size_t closed_ = 0;
    std::uint64_t last_ms_ = 0;
};

}  // namespace turnbridge::io
