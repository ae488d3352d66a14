// SPDX-License-Identifier: Apache-2.0
#pragma once
// Gives memory back to the kernel after a burst of closed connections: glibc keeps freed heap
// pages (and raises its trim threshold as it goes), so after an attack that held many buffers
// (issue 11: 300 WebSocket clients holding 60 KB fragments) RSS would stay at its peak. The
// host counts closes and calls maybe_trim() from its sweep; trimming runs at most every few
// seconds and only after many closes, never per packet.
#include <cstddef>
#include <cstdint>

namespace turnbridge::io {

class HeapTrim {
public:
    void closed() { ++closed_; }
    // malloc_trim(0) when at least kCloses connections closed since the last one, and
    // kEveryMs has passed.
    void maybe_trim(std::uint64_t now_ms);

    static constexpr std::size_t kCloses = 64;
    static constexpr std::uint64_t kEveryMs = 5'000;

private:
    std::size_t closed_ = 0;
    std::uint64_t last_ms_ = 0;
};

}  // namespace turnbridge::io
