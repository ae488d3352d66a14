// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/server/relay_binder.hpp"

#include <algorithm>

#include "turnbridge/base/log.hpp"
#include "turnbridge/server/relay_registry.hpp"
#include "turnbridge/server/relay_socket.hpp"
#include "turnbridge/io/socket_util.hpp"
#include "turnbridge/server/worker.hpp"

namespace turnbridge::server {

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
        log::warn("cannot open relay socket {}: {}", b.local.to_string(), io::error_text(err));
        registry_.release(b.local);
        return Error{StunCode::InsufficientCapacity, 0, "Insufficient Capacity"};
    }
    sockets_.emplace(handle, s);
    return turn::RelaySocket{handle, b.local};
}

Result<turn::RelaySocket> WorkerRelayBinder::bind_shared(Family f) {
    auto& shared = pool(f);
    bool& full = shared_full_[f == Family::V4 ? 0 : 1];
    const std::size_t wanted = worker_.config().relay_shared_ports;
    if (shared.size() < wanted && !full) {
        // Open ports as allocations come, so the first ones are spread over separate ports.
        std::uint64_t unused = 0;
        auto s = bind(f, false, false, unused);
        if (s) {
            s->shared = true;
            shared.push_back(Shared{*s, 0});
            log::info("shared relay socket {} open ({} of {})", s->local.to_string(), shared.size(), wanted);
        } else if (shared.empty()) {
            return s.error();
        } else {
            full = true;  // relay_ports is used up: share the ports already open
            log::warn("no port for another shared relay socket; sharing {} of {}", shared.size(), wanted);
        }
    }
    // The least used of the first `wanted` (a reload may have lowered it).
    const auto end = shared.begin() + static_cast<std::ptrdiff_t>(std::min(wanted, shared.size()));
    auto best = std::min_element(shared.begin(), end, [](const Shared& a, const Shared& b) { return a.users < b.users; });
    ++best->users;
    return best->socket;
}

void WorkerRelayBinder::release(turn::RelayHandle handle) {
    for (auto& shared : shared_) {
        for (auto& s : shared) {
            if (s.socket.handle != handle) continue;
            if (s.users > 0) --s.users;
            return;  // stays open for the other allocations and the next ones
        }
    }
    auto it = sockets_.find(handle);
    if (it == sockets_.end()) return;
    const Endpoint local = it->second->local();
    it->second->close();  // closes the fd now (uv_close), so the port can be bound again
    registry_.release(local);
    sockets_.erase(it);
}

void WorkerRelayBinder::close_all() {
    for (auto& [handle, s] : sockets_) {
        const Endpoint local = s->local();
        s->close();
        registry_.release(local);
    }
    sockets_.clear();
    for (auto& shared : shared_) shared.clear();
}

}  // namespace turnbridge::server
