// SPDX-License-Identifier: Apache-2.0
#pragma once
// The timers and write bounds of one stream connection, without I/O (issue 11): the connection
// tells it what happened (bytes read, a whole message, its write queue size) with a time in
// milliseconds, and asks whether a deadline has passed and whether to stop or resume reading.
// One implementation for TURN over TCP/TLS, SIP over TCP/TLS, WebSocket and the admin API; its
// host sweeps its connections about once a second. Tests step a fake `now`.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "turnbridge/io/stream_stats.hpp"

namespace turnbridge::io {

struct GuardLimits {
    std::uint64_t handshake_ms = 10'000;  // accept to established (TLS, WebSocket upgrade); 0 = none
    std::uint64_t message_ms = 10'000;    // first byte of a message to its last (slowloris); 0 = none
    std::uint64_t idle_ms = 0;            // last whole message to now; 0 = none
    std::uint64_t write_ms = 30'000;      // over the soft bound for this long: the peer is not reading
    std::size_t write_soft = 256 * 1024;  // stop reading above this much unsent, resume at or below
    std::size_t write_hard = 4 * 1024 * 1024;  // close above this much unsent
};

class StreamGuard {
public:
    // `stats` may be null (outbound connections, tests); closes and pauses are counted there.
    StreamGuard(StreamKind kind, const GuardLimits& limits, StreamStats* stats, std::uint64_t now_ms);

    // The handshake is done (or there is none): from now on the idle clock runs.
    void established(std::uint64_t now_ms);
    bool is_established() const { return established_; }
    // Bytes arrived; `partial`: an unfinished message is buffered after them.
    void on_read(std::uint64_t now_ms, bool partial);
    // A whole message arrived (the idle clock restarts).
    void on_message(std::uint64_t now_ms);
    // While exempt the idle timeout does not apply (a TURN connection whose allocation lives).
    void set_idle_exempt(bool exempt) { idle_exempt_ = exempt; }

    enum class Flow { Keep, Pause, Resume, Close };
    // After every write and every completed write, with the bytes still unsent.
    Flow on_queue(std::uint64_t now_ms, std::size_t unsent);
    bool paused() const { return paused_since_.has_value(); }

    // The limit that has run out by `now`, if any (counted once; the caller closes).
    std::optional<StreamClose> expired(std::uint64_t now_ms);
    // Counts a close for a reason found elsewhere (a message over its cap).
    void count(StreamClose why);
    StreamKind kind() const { return kind_; }

private:
    StreamKind kind_;
    GuardLimits limits_;
    StreamStats* stats_;
    std::uint64_t accepted_;
    std::uint64_t last_message_;
    std::optional<std::uint64_t> partial_since_;
    std::optional<std::uint64_t> paused_since_;
    bool established_ = false;
    bool idle_exempt_ = false;
    bool counted_ = false;
};

}  // namespace turnbridge::io
