// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/jitter_buffer.hpp"

#include <cstring>

namespace turnbridge::gateway {
namespace {
// RFC 3550 §A.1 style serial comparison: a - b as a signed distance modulo 2^16.
int distance(std::uint16_t a, std::uint16_t b) { return static_cast<std::int16_t>(static_cast<std::uint16_t>(a - b)); }
// After this many concealed frames with an empty buffer the talker is gone: rebuffer on return.
constexpr int kMaxEmptyRun = 25;  // 500 ms
// Frames above the target delay tolerated before one is skipped.
constexpr int kMaxExtra = 4;
}  // namespace

void JitterBuffer::push(std::uint16_t seq, std::span<const std::uint8_t> payload) {
    if (payload.size() > kMaxPayload) return;
    if (playing_) {
        const int ahead = distance(seq, next_);
        if (ahead < 0) { ++stats_.late; return; }
        if (ahead >= static_cast<int>(kSlots)) {
            // Far ahead (a jump in the sender's sequence or a long stall): start again from here.
            ++stats_.resyncs;
            restart();
        }
    }
    if (!playing_) {
        if (!have_first_ || distance(seq, first_) < 0) first_ = seq;
        have_first_ = true;
    }
    Slot& s = slot(seq);
    if (s.used && s.sequence == seq) { ++stats_.duplicate; return; }
    if (!s.used) ++count_;
    s.used = true;
    s.sequence = seq;
    s.size = static_cast<std::uint16_t>(payload.size());
    std::memcpy(s.bytes.data(), payload.data(), payload.size());
}

JitterBuffer::Frame JitterBuffer::pop() {
    Frame f;
    if (!playing_) {
        if (!have_first_ || ++buffered_ticks_ < target_) return f;  // Waiting
        playing_ = true;
        next_ = first_;
        empty_run_ = 0;
    }
    Slot& s = slot(next_);
    if (s.used && s.sequence == next_) {
        s.used = false;  // the span stays valid until the slot is written again
        --count_;
        ++next_;
        f.kind = Frame::Kind::Packet;
        f.payload = {s.bytes.data(), s.size};
        ++stats_.played;
        empty_run_ = 0;
        // The sender runs faster than our clock: skip one frame rather than let the delay grow.
        if (count_ > target_ + kMaxExtra) {
            Slot& skip = slot(next_);
            if (skip.used && skip.sequence == next_) { skip.used = false; --count_; }
            ++next_;
            ++stats_.skipped;
        }
        return f;
    }
    f.kind = Frame::Kind::Missing;
    ++stats_.missing;
    if (count_ == 0) {
        // Underrun: nothing later has arrived, so this packet is probably late rather than lost
        // (a sender whose clock runs slow). Conceal but keep waiting for the same number.
        ++stats_.underruns;
        if (++empty_run_ >= kMaxEmptyRun) restart();
        return f;
    }
    ++next_;  // later packets are here: this one is lost
    const Slot& n = slot(next_);
    if (n.used && n.sequence == next_) f.next = {n.bytes.data(), n.size};
    return f;
}

void JitterBuffer::restart() {
    for (auto& s : slots_) s.used = false;
    count_ = 0;
    playing_ = false;
    have_first_ = false;
    buffered_ticks_ = 0;
    empty_run_ = 0;
}

}  // namespace turnbridge::gateway
