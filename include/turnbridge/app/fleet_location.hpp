// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fleet mode (issue 15): SIP location across nodes, on the fleet shipper's thread. Once a second
// it copies this node's registrar (under the registrar's lock, a copy of at most
// gateway.max_bindings entries) and writes what changed to PostgreSQL's fleet_locations, then
// reads the other nodes' rows and publishes them to the workers as an immutable snapshot
// (gateway::FleetLocations). A REGISTER, a closed WebSocket or an inbound INVITE never waits on
// PostgreSQL; a registration is visible fleet-wide about a second after it is made or gone.
#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "turnbridge/accounting/pg_ledger.hpp"

namespace turnbridge::gateway {
class GatewayShared;
}

namespace turnbridge::app {

class FleetLocationSync {
public:
    explicit FleetLocationSync(std::string node) : node_(std::move(node)) {}
    // The workers' shared gateway state (set once the workers exist; none: no gateway).
    void attach(gateway::GatewayShared* shared) { shared_.store(shared, std::memory_order_release); }
    // One round, after the heartbeat: `nodes` is the registry as just read.
    void run(accounting::PgLedger& ledger, const std::vector<accounting::FleetNode>& nodes,
             std::chrono::steady_clock::time_point now);

private:
    std::string node_;
    std::atomic<gateway::GatewayShared*> shared_{nullptr};
    // What PostgreSQL holds of ours: (aor, instance) -> the binding's expiry (steady clock).
    std::map<std::pair<std::string, std::string>, std::chrono::steady_clock::time_point> shipped_;
    bool synced_ = false;   // the first sync replaces whatever a previous run left
};

}  // namespace turnbridge::app
