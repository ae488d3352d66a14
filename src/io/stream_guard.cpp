// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/io/stream_guard.hpp"

namespace turnbridge::io {

StreamGuard::StreamGuard(StreamKind kind, const GuardLimits& limits, StreamStats* stats, std::uint64_t now_ms)
    : kind_(kind), limits_(limits), stats_(stats), accepted_(now_ms), last_message_(now_ms) {}

void StreamGuard::established(std::uint64_t now_ms) {
    if (established_) return;
    established_ = true;
    last_message_ = now_ms;  // the idle clock starts when the stream can carry messages
}

void StreamGuard::on_read(std::uint64_t now_ms, bool partial) {
    if (!partial) partial_since_.reset();
    else if (!partial_since_) partial_since_ = now_ms;
}

void StreamGuard::on_message(std::uint64_t now_ms) {
    last_message_ = now_ms;
    // Pipelined messages: whatever is still buffered started after this one ended.
    if (partial_since_) partial_since_ = now_ms;
}

StreamGuard::Flow StreamGuard::on_queue(std::uint64_t now_ms, std::size_t unsent) {
    if (unsent > limits_.write_hard) {
        count(StreamClose::WriteLimit);
        return Flow::Close;
    }
    if (unsent > limits_.write_soft) {
        if (paused_since_) return Flow::Keep;
        paused_since_ = now_ms;
        if (stats_ != nullptr) stats_->paused(kind_);
        return Flow::Pause;
    }
    if (!paused_since_) return Flow::Keep;
    paused_since_.reset();
    return Flow::Resume;
}

std::optional<StreamClose> StreamGuard::expired(std::uint64_t now_ms) {
    std::optional<StreamClose> why;
    if (!established_ && limits_.handshake_ms != 0 && now_ms - accepted_ >= limits_.handshake_ms)
        why = StreamClose::HandshakeTimeout;
    else if (partial_since_ && limits_.message_ms != 0 && now_ms - *partial_since_ >= limits_.message_ms)
        why = StreamClose::MessageTimeout;
    else if (paused_since_ && limits_.write_ms != 0 && now_ms - *paused_since_ >= limits_.write_ms)
        why = StreamClose::WriteTimeout;
    else if (established_ && !idle_exempt_ && limits_.idle_ms != 0 && now_ms - last_message_ >= limits_.idle_ms)
        why = StreamClose::IdleTimeout;
    if (why) count(*why);
    return why;
}

void StreamGuard::count(StreamClose why) {
    if (counted_) return;  // one close, one count
    counted_ = true;
    if (stats_ != nullptr) stats_->closed(kind_, why);
}

}  // namespace turnbridge::io
