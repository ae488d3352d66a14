// SPDX-License-Identifier: Apache-2.0
#pragma once
// Admission of new stream connections for one listener kind: a global cap and a per-source-IP
// cap (issue 11: 1,100 idle SIP/TCP connections took every file descriptor of the process).
// Shared by every worker that accepts that kind, so it counts under a mutex; it is touched at
// accept and close only, never per packet. A GateTicket holds one admitted slot and gives it
// back when it goes (the connection owns its ticket).
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "turnbridge/base/address.hpp"
#include "turnbridge/io/stream_stats.hpp"

namespace turnbridge::io {

struct GateLimits {
    std::uint32_t max_connections = 0;  // 0 = no cap
    std::uint32_t max_per_ip = 0;       // 0 = no cap
};

class ConnectionGate;

class GateTicket {
public:
    GateTicket() = default;
    GateTicket(GateTicket&& o) noexcept : gate_(o.gate_), ip_(o.ip_) { o.gate_ = nullptr; }
    GateTicket& operator=(GateTicket&& o) noexcept;
    GateTicket(const GateTicket&) = delete;
    GateTicket& operator=(const GateTicket&) = delete;
    ~GateTicket() { reset(); }
    explicit operator bool() const { return gate_ != nullptr; }
    void reset();  // gives the slot back now (idempotent)

private:
    friend class ConnectionGate;
    GateTicket(ConnectionGate* g, const IpAddress& ip) : gate_(g), ip_(ip) {}
    ConnectionGate* gate_ = nullptr;
    IpAddress ip_{};
};

class ConnectionGate {
public:
    ConnectionGate(StreamKind kind, StreamStats& stats) : kind_(kind), stats_(stats) {}
    ConnectionGate(const ConnectionGate&) = delete;
    ConnectionGate& operator=(const ConnectionGate&) = delete;

    // New limits (SIGHUP); connections already open stay.
    void set_limits(GateLimits l);
    GateLimits limits() const;
    // A slot for a connection from `ip`, or an empty ticket (the refusal is counted).
    GateTicket admit(const IpAddress& ip);
    std::size_t open() const;
    std::size_t open_from(const IpAddress& ip) const;
    StreamKind kind() const { return kind_; }
    StreamStats& stats() { return stats_; }

private:
    friend class GateTicket;
    void release(const IpAddress& ip);

    StreamKind kind_;
    StreamStats& stats_;
    mutable std::mutex mu_;
    GateLimits limits_;
    std::size_t open_ = 0;
    std::unordered_map<IpAddress, std::uint32_t> per_ip_;  // only IPs with open connections
};

}  // namespace turnbridge::io
