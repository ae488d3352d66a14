// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/io/stream_limits.hpp"

#include <sys/resource.h>

namespace turnbridge::io {
namespace {

std::uint64_t ms(std::chrono::seconds s) { return static_cast<std::uint64_t>(s.count()) * 1000; }

const config::StreamKindLimits& of(const config::Streams& cfg, StreamKind kind) {
    switch (kind) {
        case StreamKind::Turn: return cfg.turn;
        case StreamKind::WebSocket: return cfg.ws;
        case StreamKind::Sip: return cfg.sip;
        case StreamKind::Admin: break;
    }
    return cfg.admin;
}

}  // namespace

GuardLimits guard_limits(const config::Streams& cfg, StreamKind kind) {
    GuardLimits g;
    g.handshake_ms = ms(cfg.handshake_timeout);
    g.message_ms = ms(cfg.message_timeout);
    g.idle_ms = ms(of(cfg, kind).idle_timeout);
    g.write_ms = ms(cfg.write_timeout);
    g.write_soft = cfg.write_soft_limit;
    g.write_hard = cfg.write_hard_limit;
    return g;
}

GateLimits gate_limits(const config::Streams& cfg, StreamKind kind) {
    const auto& l = of(cfg, kind);
    return GateLimits{l.max_connections, l.max_connections_per_ip};
}

bool fit_to_fd_limit(std::array<GateLimits, kStreamKinds>& limits, std::uint64_t fd_limit, std::uint64_t reserved) {
    std::uint64_t total = 0;
    for (const auto& l : limits) total += l.max_connections;
    const std::uint64_t budget = fd_limit > reserved * 2 ? fd_limit - reserved : fd_limit / 2;
    if (total <= budget || total == 0) return false;
    for (auto& l : limits) {
        if (l.max_connections == 0) continue;
        const std::uint64_t scaled = static_cast<std::uint64_t>(l.max_connections) * budget / total;
        l.max_connections = static_cast<std::uint32_t>(scaled > 0 ? scaled : 1);
    }
    return true;
}

StreamGates::StreamGates() {
    for (std::size_t k = 0; k < kStreamKinds; ++k)
        gates_[k] = std::make_unique<ConnectionGate>(static_cast<StreamKind>(k), stats_);
}

void StreamGates::apply(const config::Config& cfg, std::uint64_t fd_limit) {
    // Only the kinds this configuration listens on share the descriptor budget; the admin cap
    // is small and never scaled (its reserve must stay usable).
    const bool used[kStreamKinds] = {!cfg.listen.empty() || !cfg.tls_listen.empty(),
                                     !cfg.ws_listen.empty() || !cfg.wss_listen.empty(), !cfg.sip_listen.empty(),
                                     false};
    std::array<GateLimits, kStreamKinds> all, shared;
    for (std::size_t k = 0; k < kStreamKinds; ++k) {
        all[k] = gate_limits(cfg.streams, static_cast<StreamKind>(k));
        shared[k] = used[k] ? all[k] : GateLimits{};
    }
    // Relay sockets need descriptors too: one per relay port at most, plus a margin for the rest.
    const std::uint64_t relay_ports = static_cast<std::uint64_t>(cfg.relay_port_max - cfg.relay_port_min) + 1;
    if (fd_limit != 0 && fit_to_fd_limit(shared, fd_limit, relay_ports + 256 + all[3].max_connections))
        for (std::size_t k = 0; k < kStreamKinds; ++k)
            if (used[k]) all[k].max_connections = shared[k].max_connections;
    for (std::size_t k = 0; k < kStreamKinds; ++k) gates_[k]->set_limits(all[k]);
}

FdLimit raise_fd_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return {};
    FdLimit out{rl.rlim_cur, rl.rlim_cur};
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) out.after = rl.rlim_max;
    }
    return out;
}

}  // namespace turnbridge::io
