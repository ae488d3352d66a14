// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/net/relay_registry.hpp"

#include <cerrno>
#include <openssl/rand.h>
#include <random>
#include <unistd.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/net/socket_util.hpp"

namespace turnbridge::net {
namespace {

// Relay sockets carry media bursts; a larger buffer absorbs them (capped by net.core.*mem_max).
constexpr int kRelayBufferBytes = 1 << 20;

std::uint64_t random_u64() {
    std::uint64_t v = 0;
    // RFC 8656 §14.9: the token must not be guessable by other clients, hence a CSPRNG.
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) v = (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
    return v;
}

int bind_relay(const IpAddress& ip, std::uint16_t port) {
    return open_bound_socket(SocketKind::Udp, Endpoint{ip, port}, SocketOptions{false, kRelayBufferBytes});
}

}  // namespace

RelayRegistry::~RelayRegistry() {
    for (auto& [token, r] : reserved_) ::close(r.relay.fd);
}

Result<BoundRelay> RelayRegistry::bind(const IpAddress& ip, PortRange range, bool even_port, bool reserve_next,
                                       std::uint64_t& token) {
    if (range.min == 0 || range.max < range.min) return Error{StunCode::InsufficientCapacity, 0, "no relay port range"};
    const std::uint32_t n = std::uint32_t{range.max} - range.min + 1;
    const std::uint32_t start = static_cast<std::uint32_t>(random_u64() % n);
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto port = static_cast<std::uint16_t>(range.min + (start + i) % n);
        if (even_port && port % 2 != 0) continue;
        if (reserve_next && port >= range.max) continue;  // port+1 must be in the range too
        const int fd = bind_relay(ip, port);
        if (fd == -EADDRINUSE) continue;
        if (fd < 0) {
            log::warn("cannot bind a relay socket on {}: {}", Endpoint{ip, port}.to_string(), error_text(fd));
            return Error{StunCode::InsufficientCapacity, 0, "Insufficient Capacity"};
        }
        if (reserve_next) {
            const int next = bind_relay(ip, static_cast<std::uint16_t>(port + 1));
            if (next < 0) {
                ::close(fd);
                if (next == -EADDRINUSE) continue;
                log::warn("cannot bind a relay socket on {}: {}", Endpoint{ip, static_cast<std::uint16_t>(port + 1)}.to_string(),
                          error_text(next));
                return Error{StunCode::InsufficientCapacity, 0, "Insufficient Capacity"};
            }
            token = reserve(BoundRelay{next, Endpoint{ip, static_cast<std::uint16_t>(port + 1)}});
        }
        return BoundRelay{fd, Endpoint{ip, port}};
    }
    return Error{StunCode::InsufficientCapacity, 0, "Insufficient Capacity: no free relay port"};
}

std::uint64_t RelayRegistry::reserve(const BoundRelay& relay) {
    const auto expires = std::chrono::steady_clock::now() + kReservationLifetime;
    std::lock_guard lock(mu_);
    std::uint64_t token = 0;
    do token = random_u64();
    while (token == 0 || reserved_.contains(token));
    reserved_.emplace(token, Reservation{relay, expires});
    return token;
}

Result<BoundRelay> RelayRegistry::claim(std::uint64_t token) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    auto it = reserved_.find(token);
    if (it == reserved_.end()) return Error{StunCode::InsufficientCapacity, 0, "Insufficient Capacity: unknown token"};
    const Reservation r = it->second;
    reserved_.erase(it);
    if (r.expires <= now) {
        ::close(r.relay.fd);
        return Error{StunCode::InsufficientCapacity, 0, "Insufficient Capacity: token expired"};
    }
    return r.relay;
}

void RelayRegistry::purge() {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    std::erase_if(reserved_, [&](const auto& kv) {
        if (kv.second.expires > now) return false;
        ::close(kv.second.relay.fd);
        return true;
    });
}

std::size_t RelayRegistry::reserved_count() const {
    std::lock_guard lock(mu_);
    return reserved_.size();
}

}  // namespace turnbridge::net
