// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/server/worker_accounting.hpp"

#include <chrono>
#include <numeric>

#include "turnbridge/app/accounting_hub.hpp"

namespace turnbridge::server {
namespace {

std::int64_t unix_ms_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
}

std::uint64_t packet_sum(const turn::Counters& c) { return std::accumulate(c.packets.begin(), c.packets.end(), std::uint64_t{0}); }

}  // namespace

accounting::AllocationRecord WorkerAccounting::record(const turn::Allocation& a) const {
    accounting::AllocationRecord r;
    r.id = app::AccountingHub::record_id(node_, instance_ms_, a.id);
    r.account = a.account;
    r.username = a.username;
    r.realm = a.realm;
    r.client = a.five_tuple.client.to_string();
    r.transport = std::string(to_string(a.five_tuple.transport));
    for (std::size_t i = 0; i < a.relay_count; ++i) {
        if (i) r.relay += ",";
        r.relay += a.advertised[i].to_string();
    }
    // The core keeps monotonic time; the store wants wall-clock milliseconds.
    const auto age = std::chrono::steady_clock::now() - a.created;
    r.start_ms = unix_ms_now() - std::chrono::duration_cast<std::chrono::milliseconds>(age).count();
    r.peers = a.peers_seen;
    for (std::size_t d = 0; d < accounting::kDirections; ++d) {
        r.traffic.packets[d] = a.counters.packets[d];
        r.traffic.payload_bytes[d] = a.counters.payload_bytes[d];
        r.traffic.wire_bytes[d] = a.counters.wire_bytes[d];
    }
    return r;
}

void WorkerAccounting::on_created(const turn::Allocation& a) {
    queued_.push_back(record(a));
    last_packets_[a.id] = 0;  // any traffic before the next flush makes a snapshot
}

void WorkerAccounting::on_closed(const turn::Allocation& a, turn::CloseReason why) {
    auto r = record(a);
    r.end_ms = unix_ms_now();
    r.end_reason = std::string(turn::to_string(why));
    queued_.push_back(std::move(r));
    last_packets_.erase(a.id);
    if (ended_) ended_();
}

std::vector<accounting::AllocationRecord> WorkerAccounting::take_queued() {
    std::vector<accounting::AllocationRecord> out;
    out.reserve(queued_.size());
    for (auto& r : queued_)
        if (r.end_ms == 0) out.push_back(std::move(r));
    for (auto& r : queued_)
        if (r.end_ms != 0) out.push_back(std::move(r));
    queued_.clear();
    return out;
}

std::vector<accounting::AllocationRecord> WorkerAccounting::take(const turn::Server& server) {
    // Order matters, records carry totals: creations first, then the counters that moved, then
    // closings (an allocation that ended since the last flush has its final totals there).
    std::vector<accounting::AllocationRecord> out;
    for (auto& r : queued_)
        if (r.end_ms == 0) out.push_back(std::move(r));
    server.for_each([&](const turn::Allocation& a) {
        auto& last = last_packets_[a.id];
        const auto now = packet_sum(a.counters);
        if (now == last) return;
        last = now;
        out.push_back(record(a));
    });
    for (auto& r : queued_)
        if (r.end_ms != 0) out.push_back(std::move(r));
    queued_.clear();
    return out;
}

}  // namespace turnbridge::server
