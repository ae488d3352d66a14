// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/jitter_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace turnbridge::gateway {
namespace {
// RFC 3550 §A.1 style serial comparison: a - b as a signed distance modulo 2^16.
int distance(std::uint16_t a, std::uint16_t b) { return static_cast<std::int16_t>(static_cast<std::uint16_t>(a - b)); }
// After this many concealed frames with an empty buffer the talker is gone: rebuffer on return.
constexpr int kMaxEmptyRun = 25;  // 500 ms
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
    const std::uint16_t seq = next_++;
    Slot& s = slot(seq);
    if (s.used && s.sequence == seq) {
        s.used = false;  // the span stays valid until the slot is written again
        f.kind = Frame::Kind::Packet;
        f.payload = {s.bytes.data(), s.size};
        ++stats_.played;
        empty_run_ = 0;
        return f;
    }
    f.kind = Frame::Kind::Missing;
    ++stats_.missing;
    const Slot& n = slot(next_);
    if (n.used && n.sequence == next_) f.next = {n.bytes.data(), n.size};
    const bool anything = std::any_of(slots_.begin(), slots_.end(), [](const Slot& x) { return x.used; });
    if (!anything && ++empty_run_ >= kMaxEmptyRun) restart();
    return f;
}

void JitterBuffer::restart() {
    for (auto& s : slots_) s.used = false;
    playing_ = false;
    have_first_ = false;
    buffered_ticks_ = 0;
    empty_run_ = 0;
}

}  // namespace turnbridge::gateway
