// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/server/relay_registry.hpp"

#include <cerrno>
#include <openssl/rand.h>
#include <random>
#include <unistd.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/socket_util.hpp"

namespace turnbridge::server {
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
    return io::open_bound_socket(io::SocketKind::Udp, Endpoint{ip, port}, io::SocketOptions{false, kRelayBufferBytes});
}

}  // namespace

RelayRegistry::RelayRegistry() : bind_(bind_relay) {}

RelayRegistry::~RelayRegistry() {
    for (auto& [token, r] : reserved_) ::close(r.relay.fd);
}

void RelayRegistry::HeldPorts::set(std::uint16_t port) {
    if (!held.test(port)) ++count;
    held.set(port);
}

void RelayRegistry::HeldPorts::reset(std::uint16_t port) {
    if (held.test(port)) --count;
    held.reset(port);
}

Result<BoundRelay> RelayRegistry::bind(const IpAddress& ip, PortRange range, bool even_port, bool reserve_next,
                                       std::uint64_t& token) {
    if (range.min == 0 || range.max < range.min) return Error{StunCode::InsufficientCapacity, 0, "no relay port range"};
    const std::uint32_t n = std::uint32_t{range.max} - range.min + 1;
    const std::uint32_t start = static_cast<std::uint32_t>(random_u64() % n);
    // Held under the lock from the probe to the mark, so two workers never race for a port.
    // Only Allocate comes here; the bind() calls are bounded by kMaxBindAttempts.
    std::lock_guard lock(mu_);
    auto& h = held_[ip];
    const Error full{StunCode::InsufficientCapacity, 0, "Insufficient Capacity: no free relay port"};
    if (h.count >= n) return full;  // every port of the range is ours: no probing at all
    int attempts = 0;
    for (std::uint32_t i = 0; i < n && attempts < kMaxBindAttempts; ++i) {
        const auto port = static_cast<std::uint16_t>(range.min + (start + i) % n);
        if (h.held.test(port)) continue;  // ours already: no syscall
        if (even_port && port % 2 != 0) continue;
        const auto next_port = static_cast<std::uint16_t>(port + 1);
        if (reserve_next && (port >= range.max || h.held.test(next_port))) continue;  // port+1 in the range too
        ++attempts;
        const int fd = bind_(ip, port);
        if (fd == -EADDRINUSE) continue;  // another process's
        if (fd < 0) {
            log::warn("cannot bind a relay socket on {}: {}", Endpoint{ip, port}.to_string(), io::error_text(fd));
            return Error{StunCode::InsufficientCapacity, 0, "Insufficient Capacity"};
        }
        if (reserve_next) {
            const int next = bind_(ip, next_port);
            if (next < 0) {
                ::close(fd);
                if (next == -EADDRINUSE) continue;
                log::warn("cannot bind a relay socket on {}: {}", Endpoint{ip, next_port}.to_string(), io::error_text(next));
                return Error{StunCode::InsufficientCapacity, 0, "Insufficient Capacity"};
            }
            token = reserve_locked(BoundRelay{next, Endpoint{ip, next_port}});
            h.set(next_port);
        }
        h.set(port);
        return BoundRelay{fd, Endpoint{ip, port}};
    }
    return full;
}

std::uint64_t RelayRegistry::reserve_locked(const BoundRelay& relay) {
    const auto expires = std::chrono::steady_clock::now() + kReservationLifetime;
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
        release_locked(r.relay.local);
        return Error{StunCode::InsufficientCapacity, 0, "Insufficient Capacity: token expired"};
    }
    return r.relay;  // still held: by the allocation that claimed it, until release()
}

void RelayRegistry::release(const Endpoint& local) {
    std::lock_guard lock(mu_);
    release_locked(local);
}

void RelayRegistry::release_locked(const Endpoint& local) {
    if (auto it = held_.find(local.ip); it != held_.end()) it->second.reset(local.port);
}

void RelayRegistry::purge() {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    std::erase_if(reserved_, [&](const auto& kv) {
        if (kv.second.expires > now) return false;
        ::close(kv.second.relay.fd);
        release_locked(kv.second.relay.local);
        return true;
    });
}

std::size_t RelayRegistry::held_count(const IpAddress& ip) const {
    std::lock_guard lock(mu_);
    auto it = held_.find(ip);
    return it == held_.end() ? 0 : it->second.count;
}

std::size_t RelayRegistry::reserved_count() const {
    std::lock_guard lock(mu_);
    return reserved_.size();
}

}  // namespace turnbridge::server
