// SPDX-License-Identifier: Apache-2.0
#pragma once
// Relay port allocation for the whole process: binds relay sockets in the configured port range
// and keeps the ports reserved by EVEN-PORT (R bit) until a RESERVATION-TOKEN claims them
// (RFC 8656 §7.2, §14.6, §14.9). Shared by all workers; touched only on Allocate, so a mutex is
// fine. Reserved sockets are raw fds, not uv handles, so any worker can open them on its loop.
#include <bitset>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "turnbridge/base/address.hpp"
#include "turnbridge/base/result.hpp"

namespace turnbridge::server {

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

// Ports in use by other processes are skipped after an EADDRINUSE; an Allocate gives up after
// this many bind() calls instead of probing the whole range (issue 11: 10 ms per refusal).
constexpr int kMaxBindAttempts = 32;

class RelayRegistry {
public:
    // Binds a UDP relay socket: the fd, or -errno. Tests pass a fake.
    using BindFn = std::function<int(const IpAddress& ip, std::uint16_t port)>;
    RelayRegistry();
    explicit RelayRegistry(BindFn bind) : bind_(std::move(bind)) {}
    ~RelayRegistry();  // closes reservations nobody claimed
    RelayRegistry(const RelayRegistry&) = delete;
    RelayRegistry& operator=(const RelayRegistry&) = delete;

    // Binds a UDP socket on `ip` at a port in `range`: random start, linear probe over the ports
    // this registry does not hold, at most kMaxBindAttempts bind() calls. With `even_port` the
    // port is even; with `reserve_next` port+1 is bound too and held under a new random
    // `token`. Fails with InsufficientCapacity, at once when every port of the range is held.
    Result<BoundRelay> bind(const IpAddress& ip, PortRange range, bool even_port, bool reserve_next,
                            std::uint64_t& token);
    // Hands over the socket reserved under `token`; InsufficientCapacity if unknown or expired.
    Result<BoundRelay> claim(std::uint64_t token);
    // The socket bound at `local` was closed: its port is free again.
    void release(const Endpoint& local);
    // Closes reservations past their lifetime.
    void purge();
    std::size_t reserved_count() const;
    std::size_t held_count(const IpAddress& ip) const;

private:
    struct Reservation {
        BoundRelay relay;
        std::chrono::steady_clock::time_point expires;
    };
    // Ports of one relay address held by this process: bound relay sockets and reservations.
    struct HeldPorts {
        std::bitset<65536> held;
        std::uint32_t count = 0;
        void set(std::uint16_t port);
        void reset(std::uint16_t port);
    };
    std::uint64_t reserve_locked(const BoundRelay& relay);
    void release_locked(const Endpoint& local);

    BindFn bind_;
    mutable std::mutex mu_;
    std::unordered_map<std::uint64_t, Reservation> reserved_;
    std::unordered_map<IpAddress, HeldPorts> held_;
};

}  // namespace turnbridge::server
