// SPDX-License-Identifier: Apache-2.0
#pragma once
// Bounds on every stream listener (issue 11): the four kinds of stream connection, why one is
// refused or closed by a limit, and the process-wide counters /metrics shows. Plain data with
// relaxed atomics: bumped only when a limit bites (never per packet), read by the admin thread.
// Header only, no libuv: admin/ includes it.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace turnbridge::io {

// One listener kind per protocol; TLS variants count with their plain twin.
enum class StreamKind : std::uint8_t { Turn, WebSocket, Sip, Admin };
inline constexpr std::size_t kStreamKinds = 4;

// Why a new connection was turned away at accept.
enum class Refusal : std::uint8_t { Global, PerIp };
inline constexpr std::size_t kRefusals = 2;

// Why a limit closed a connection.
enum class StreamClose : std::uint8_t {
    HandshakeTimeout,  // TLS handshake / WebSocket upgrade not done in time
    MessageTimeout,    // a started message (SIP, STUN frame, WS fragments, HTTP request) not finished
    IdleTimeout,       // no whole message for too long
    WriteTimeout,      // the peer did not read what we queued for too long
    WriteLimit,        // the write queue passed its hard bound
    TooLarge,          // a message or fragment count over its cap
    Evicted,           // admin: an unauthenticated connection closed to make room
};
inline constexpr std::size_t kStreamCloses = 7;

// A copy for the admin thread.
struct StreamCounts {
    std::array<std::uint64_t, kStreamKinds> open{};
    std::array<std::array<std::uint64_t, kRefusals>, kStreamKinds> refused{};
    std::array<std::array<std::uint64_t, kStreamCloses>, kStreamKinds> closed{};
    std::array<std::uint64_t, kStreamKinds> read_pauses{};  // back-pressure: reading stopped
};

class StreamStats {
public:
    void opened(StreamKind k) { bump(open_[i(k)], 1); }
    void gone(StreamKind k) { bump(open_[i(k)], -1); }
    void refused(StreamKind k, Refusal r) { bump(refused_[i(k)][static_cast<std::size_t>(r)], 1); }
    void closed(StreamKind k, StreamClose c) { bump(closed_[i(k)][static_cast<std::size_t>(c)], 1); }
    void paused(StreamKind k) { bump(pauses_[i(k)], 1); }
    StreamCounts snapshot() const;

private:
    static std::size_t i(StreamKind k) { return static_cast<std::size_t>(k); }
    template <class A>
    static void bump(A& a, std::int64_t d) { a.fetch_add(static_cast<std::uint64_t>(d), std::memory_order_relaxed); }
    std::array<std::atomic<std::uint64_t>, kStreamKinds> open_{};
    std::array<std::array<std::atomic<std::uint64_t>, kRefusals>, kStreamKinds> refused_{};
    std::array<std::array<std::atomic<std::uint64_t>, kStreamCloses>, kStreamKinds> closed_{};
    std::array<std::atomic<std::uint64_t>, kStreamKinds> pauses_{};
};

// Metric labels: "turn", "ws", "sip", "admin"; "global", "per_ip"; "idle_timeout", ...
inline std::string_view to_string(StreamKind k) {
    switch (k) {
        case StreamKind::Turn: return "turn";
        case StreamKind::WebSocket: return "ws";
        case StreamKind::Sip: return "sip";
        case StreamKind::Admin: return "admin";
    }
    return "?";
}

inline std::string_view to_string(Refusal r) { return r == Refusal::Global ? "global" : "per_ip"; }

inline std::string_view to_string(StreamClose c) {
    switch (c) {
        case StreamClose::HandshakeTimeout: return "handshake_timeout";
        case StreamClose::MessageTimeout: return "message_timeout";
        case StreamClose::IdleTimeout: return "idle_timeout";
        case StreamClose::WriteTimeout: return "write_timeout";
        case StreamClose::WriteLimit: return "write_limit";
        case StreamClose::TooLarge: return "too_large";
        case StreamClose::Evicted: return "evicted";
    }
    return "?";
}

inline StreamCounts StreamStats::snapshot() const {
    StreamCounts c;
    for (std::size_t k = 0; k < kStreamKinds; ++k) {
        c.open[k] = open_[k].load(std::memory_order_relaxed);
        c.read_pauses[k] = pauses_[k].load(std::memory_order_relaxed);
        for (std::size_t r = 0; r < kRefusals; ++r) c.refused[k][r] = refused_[k][r].load(std::memory_order_relaxed);
        for (std::size_t r = 0; r < kStreamCloses; ++r) c.closed[k][r] = closed_[k][r].load(std::memory_order_relaxed);
    }
    return c;
}

}  // namespace turnbridge::io
