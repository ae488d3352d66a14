// SPDX-License-Identifier: Apache-2.0
#pragma once
// turn::RelayBinder for one worker: binds through the process-wide RelayRegistry and opens the
// sockets on this worker's loop as RelaySocket handles.
#include <array>
#include <unordered_map>
#include <vector>

#include "turnbridge/turn/relay_binder.hpp"

namespace turnbridge::server {

class RelayRegistry;
class RelaySocket;
class Worker;
struct BoundRelay;

class WorkerRelayBinder final : public turn::RelayBinder {
public:
    WorkerRelayBinder(Worker& worker, RelayRegistry& registry) : worker_(worker), registry_(registry) {}
    ~WorkerRelayBinder() override;

    Result<turn::RelaySocket> bind(Family f, bool even_port, bool reserve_next, std::uint64_t& token) override;
    Result<turn::RelaySocket> claim(std::uint64_t token) override;
    // server.relay_sharing: the least used of this worker's shared sockets of family `f`. They
    // are opened as needed, one per new allocation until server.relay_shared_ports are open,
    // and stay open until the worker stops.
    Result<turn::RelaySocket> bind_shared(Family f) override;
    void release(turn::RelayHandle handle) override;

    RelaySocket* find(turn::RelayHandle handle) const {
        auto it = sockets_.find(handle);
        return it == sockets_.end() ? nullptr : it->second;
    }
    std::size_t size() const { return sockets_.size(); }
    std::size_t shared_count() const { return shared_[0].size() + shared_[1].size(); }
    void close_all();

private:
    Result<turn::RelaySocket> adopt(const BoundRelay& b);
    struct Shared {
        turn::RelaySocket socket;
        std::uint32_t users = 0;  // allocations relaying through it
    };
    std::vector<Shared>& pool(Family f) { return shared_[f == Family::V4 ? 0 : 1]; }

    Worker& worker_;
    RelayRegistry& registry_;
    std::unordered_map<turn::RelayHandle, RelaySocket*> sockets_;
    turn::RelayHandle next_ = 1;
    std::array<std::vector<Shared>, 2> shared_;  // IPv4, IPv6
    std::array<bool, 2> shared_full_{};           // a shared port could not be bound: stop trying
};

}  // namespace turnbridge::server
