// SPDX-License-Identifier: Apache-2.0
#pragma once
// turn::RelayBinder for one worker: binds through the process-wide RelayRegistry and opens the
// sockets on this worker's loop as RelaySocket handles.
#include <unordered_map>

#include "turnbridge/turn/relay_binder.hpp"

namespace turnbridge::net {

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
    void release(turn::RelayHandle handle) override;

    RelaySocket* find(turn::RelayHandle handle) const {
        auto it = sockets_.find(handle);
        return it == sockets_.end() ? nullptr : it->second;
    }
    std::size_t size() const { return sockets_.size(); }
    void close_all();

private:
    Result<turn::RelaySocket> adopt(const BoundRelay& b);

    Worker& worker_;
    RelayRegistry& registry_;
    std::unordered_map<turn::RelayHandle, RelaySocket*> sockets_;
    turn::RelayHandle next_ = 1;
};

}  // namespace turnbridge::net
