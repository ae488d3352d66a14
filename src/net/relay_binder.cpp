// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/net/relay_binder.hpp"

#include "turnbridge/base/log.hpp"
#include "turnbridge/net/relay_registry.hpp"
#include "turnbridge/net/relay_socket.hpp"
#include "turnbridge/net/socket_util.hpp"
#include "turnbridge/net/worker.hpp"

namespace turnbridge::net {

WorkerRelayBinder::~WorkerRelayBinder() { close_all(); }

Result<turn::RelaySocket> WorkerRelayBinder::bind(Family f, bool even_port, bool reserve_next, std::uint64_t& token) {
    const auto& cfg = worker_.config();
    const auto ip = cfg.relay_ip(f);
    if (!ip) return Error{StunCode::InsufficientCapacity, 0, "Insufficient Capacity: no relay address"};
    auto bound = registry_.bind(*ip, PortRange{cfg.relay_port_min, cfg.relay_port_max}, even_port, reserve_next, token);
    if (!bound) return bound.error();
    return adopt(*bound);
}

Result<turn::RelaySocket> WorkerRelayBinder::claim(std::uint64_t token) {
    auto bound = registry_.claim(token);
    if (!bound) return bound.error();
    return adopt(*bound);
}

Result<turn::RelaySocket> WorkerRelayBinder::adopt(const BoundRelay& b) {
    while (next_ == 0 || sockets_.contains(next_)) ++next_;  // 0 is never a handle
    const turn::RelayHandle handle = next_++;
    int err = 0;
    RelaySocket* s = RelaySocket::open(worker_, handle, b.fd, b.local, err);
    if (s == nullptr) {
        log::warn("cannot open relay socket {}: {}", b.local.to_string(), error_text(err));
        return Error{StunCode::InsufficientCapacity, 0, "Insufficient Capacity"};
    }
    sockets_.emplace(handle, s);
    return turn::RelaySocket{handle, b.local};
}

void WorkerRelayBinder::release(turn::RelayHandle handle) {
    auto it = sockets_.find(handle);
    if (it == sockets_.end()) return;
    it->second->close();
    sockets_.erase(it);
}

void WorkerRelayBinder::close_all() {
    for (auto& [handle, s] : sockets_) s->close();
    sockets_.clear();
}

}  // namespace turnbridge::net
