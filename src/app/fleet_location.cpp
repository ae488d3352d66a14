// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/app/fleet_location.hpp"

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/gateway_shared.hpp"

namespace turnbridge::app {
namespace {

// issue 15: a node whose heartbeat is over 3 s old is dead.
constexpr double kDeadAfterSeconds = 3.0;

}  // namespace

void FleetLocationSync::run(accounting::PgLedger& ledger, const std::vector<accounting::FleetNode>& nodes,
                            std::chrono::steady_clock::time_point now) {
    auto* shared = shared_.load(std::memory_order_acquire);
    if (shared == nullptr) return;

    // Ours: what changed since the last round that PostgreSQL took.
    auto local = shared->with_registrar([](sip::Registrar& r) { return r.all(); });
    std::map<std::pair<std::string, std::string>, std::chrono::steady_clock::time_point> current;
    for (const auto& [aor, b] : local)
        current[{aor, b.instance.empty() ? b.contact : b.instance}] = b.expires_at;
    std::vector<accounting::LocationRow> upserts, removed;
    for (const auto& [key, expires] : current) {
        auto it = shipped_.find(key);
        if (synced_ && it != shipped_.end() && it->second == expires) continue;
        const auto left = std::chrono::duration_cast<std::chrono::seconds>(expires - now).count();
        upserts.push_back({key.first, key.second, std::max<std::int64_t>(left, 1)});
    }
    for (const auto& [key, expires] : shipped_)
        if (!current.contains(key)) removed.push_back({key.first, key.second, 0});
    if ((!synced_ || !upserts.empty() || !removed.empty()) && ledger.sync_locations(node_, upserts, removed, !synced_)) {
        shipped_ = std::move(current);
        synced_ = true;
    }

    // Theirs: every other node with a SIP address, and its unexpired registrations.
    auto remote = ledger.remote_locations(node_);
    if (!remote) return;   // PostgreSQL away: the last snapshot's deadlines run out by themselves
    auto snap = std::make_shared<gateway::RemoteLocations>();
    std::map<std::string, std::size_t> index;
    for (const auto& n : nodes) {
        if (n.beat.node == node_ || n.beat.sip.empty()) continue;
        auto ep = Endpoint::parse(n.beat.sip);
        if (!ep) continue;
        const auto left = std::chrono::milliseconds(static_cast<std::int64_t>((kDeadAfterSeconds - n.age_seconds) * 1000));
        index[n.beat.node] = snap->peers.size();
        snap->peers.push_back({n.beat.node, *ep, now + left});
    }
    for (const auto& r : *remote)
        if (auto it = index.find(r.node); it != index.end()) snap->aors[r.aor].push_back(it->second);
    shared->fleet().publish(std::move(snap));
}

}  // namespace turnbridge::app
