// SPDX-License-Identifier: Apache-2.0
#pragma once
// Relay port allocation for the whole process: binds relay sockets in the configured port range
// and keeps the ports reserved by EVEN-PORT (R bit) until a RESERVATION-TOKEN claims them
// (RFC 8656 §7.2, §14.6, §14.9). Shared by all workers; touched only on Allocate, so a mutex is
// fine. Reserved sockets are raw fds, not uv handles, so any worker can open them on its loop.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "turnbridge/base/address.hpp"
#include "turnbridge/base/result.hpp"

namespace turnbridge::net {

// RFC 8656 §7.2: a reserved port is held for about 30 seconds.
constexpr auto kReservationLifetime = std::chrono::seconds(30);

struct BoundRelay {
    int fd = -1;      // bound, non-blocking UDP socket; the caller owns it
    Endpoint local;
};

struct PortRange {
    std::uint16_t min = 0;
    std::uint16_t max = 0;
};

class RelayRegistry {
public:
    RelayRegistry() = default;
    ~RelayRegistry();  // closes reservations nobody claimed
    RelayRegistry(const RelayRegistry&) = delete;
    RelayRegistry& operator=(const RelayRegistry&) = delete;

    // Binds a UDP socket on `ip` at a port in `range`: random start, linear probe, skipping ports
    // in use. With `even_port` the port is even; with `reserve_next` port+1 is bound too and held
    // under a new random `token`. Fails with InsufficientCapacity.
    Result<BoundRelay> bind(const IpAddress& ip, PortRange range, bool even_port, bool reserve_next,
                            std::uint64_t& token);
    // Hands over the socket reserved under `token`; InsufficientCapacity if unknown or expired.
    Result<BoundRelay> claim(std::uint64_t token);
    // Closes reservations past their lifetime.
    void purge();
    std::size_t reserved_count() const;

private:
    struct Reservation {
        BoundRelay relay;
        std::chrono::steady_clock::time_point expires;
    };
    std::uint64_t reserve(const BoundRelay& relay);

    mutable std::mutex mu_;
    std::unordered_map<std::uint64_t, Reservation> reserved_;
};

}  // namespace turnbridge::net
