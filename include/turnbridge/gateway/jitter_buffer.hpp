// SPDX-License-Identifier: Apache-2.0
#pragma once
// A small fixed-delay jitter buffer for the browser leg: packets in by RTP sequence number,
// one 20 ms frame out per tick. Gaps come out as Missing so the decoder conceals them (PLC, or
// FEC from the next packet). Preallocated slots: no allocation per packet.
#include <array>
#include <cstdint>
#include <span>

namespace turnbridge::gateway {

class JitterBuffer {
public:
    static constexpr std::size_t kSlots = 32;          // 640 ms of 20 ms packets
    static constexpr std::size_t kMaxPayload = 1500;

    // `target_frames` ticks of delay before playout starts (3 = 60 ms).
    explicit JitterBuffer(int target_frames = 3) : target_(target_frames) {}

    // Copies the payload. Late (already played), duplicate and oversized packets are dropped.
    void push(std::uint16_t sequence, std::span<const std::uint8_t> payload);

    struct Frame {
        enum class Kind : std::uint8_t { Waiting, Packet, Missing } kind = Kind::Waiting;
        std::span<const std::uint8_t> payload;  // Packet: this frame
        std::span<const std::uint8_t> next;     // Missing: the following packet if here (for FEC)
    };
    // One call per 20 ms tick. Waiting until the target delay is buffered; then Packet or Missing
    // for every sequence number in turn. When nothing at all is buffered (underrun) the frame is
    // Missing but the same number is waited for again; a sender running fast has a frame skipped
    // once the delay exceeds the target by 4 frames. Spans stay valid until the next push/pop.
    Frame pop();

    struct Stats {
        std::uint32_t played = 0, missing = 0, underruns = 0, late = 0, duplicate = 0, skipped = 0, resyncs = 0;
    };
    const Stats& stats() const { return stats_; }

private:
    struct Slot {
        bool used = false;
        std::uint16_t sequence = 0;
        std::uint16_t size = 0;
        std::array<std::uint8_t, kMaxPayload> bytes{};
    };
    Slot& slot(std::uint16_t seq) { return slots_[seq % kSlots]; }
    void restart();

    std::array<Slot, kSlots> slots_{};
    int target_;
    bool playing_ = false;
    bool have_first_ = false;
    std::uint16_t first_ = 0;     // lowest sequence seen while buffering
    int buffered_ticks_ = 0;      // ticks spent waiting since the first packet
    std::uint16_t next_ = 0;      // sequence number of the next frame to play
    int empty_run_ = 0;           // consecutive underruns
    int count_ = 0;               // slots in use
    Stats stats_;
};

}  // namespace turnbridge::gateway
