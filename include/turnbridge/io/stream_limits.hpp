// SPDX-License-Identifier: Apache-2.0
#pragma once
// The process's stream bounds in one place (issue 11): one ConnectionGate per listener kind, the
// counters behind them, and the per-connection limits each kind gets from [streams]
// (turnbridge.toml(5)). Owned by the App; workers, the gateway and the admin server hold a
// pointer. No libuv here.
#include <array>
#include <cstdint>

#include "turnbridge/config/config.hpp"
#include "turnbridge/io/connection_gate.hpp"
#include "turnbridge/io/stream_guard.hpp"
#include "turnbridge/io/stream_stats.hpp"

namespace turnbridge::io {

// Per-connection limits of a kind under `cfg`.
GuardLimits guard_limits(const config::Streams& cfg, StreamKind kind);
GateLimits gate_limits(const config::Streams& cfg, StreamKind kind);

// Scales the global caps of `limits` down, in proportion, so that together they leave
// `reserved` of `fd_limit` descriptors for everything else (relay sockets, the store, logs).
// Returns true when it had to.
bool fit_to_fd_limit(std::array<GateLimits, kStreamKinds>& limits, std::uint64_t fd_limit, std::uint64_t reserved);

class StreamGates {
public:
    StreamGates();
    // Limits from `cfg`, fitted to the descriptor limit found at start (see raise_fd_limit()).
    void apply(const config::Config& cfg, std::uint64_t fd_limit);
    ConnectionGate& gate(StreamKind k) { return *gates_[static_cast<std::size_t>(k)]; }
    StreamStats& stats() { return stats_; }

private:
    StreamStats stats_;
    std::array<std::unique_ptr<ConnectionGate>, kStreamKinds> gates_;
};

// RLIMIT_NOFILE: raises the soft limit to the hard limit; returns {before, after}.
struct FdLimit {
    std::uint64_t before = 0;
    std::uint64_t after = 0;
};
FdLimit raise_fd_limit();

}  // namespace turnbridge::io
