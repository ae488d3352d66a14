// SPDX-License-Identifier: Apache-2.0
#pragma once
// The control thread's side of accounting (ARCHITECTURE.md): workers post batches of
// allocation records every flush interval and when allocations end; the hub writes them to the
// store in one transaction per batch, keeps the live view and the counters /metrics shows,
// and answers the admin API. Workers never wait for it: posting takes a short lock, and a
// failed write (full or read-only disk) keeps the records for the next try. Gateway calls
// arrive the same way, one CallRecord when a call ends, and go in the same transactions.
#include <atomic>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <uv.h>
#include <vector>

#include "turnbridge/accounting/quota_book.hpp"
#include "turnbridge/accounting/record.hpp"
#include "turnbridge/accounting/store.hpp"
#include "turnbridge/admin/backend.hpp"
#include "turnbridge/app/fleet_leases.hpp"
#include "turnbridge/app/fleet_shipper.hpp"
#include "turnbridge/config/config.hpp"
#include "turnbridge/turn/server.hpp"

namespace turnbridge::gateway {
class GatewayShared;
}

namespace turnbridge::app {

class OutboundCalls;

// What a worker reports besides records, replaced wholesale at every post.
struct WorkerStats {
    std::uint64_t auth_failures = 0;
    std::uint64_t quota_refusals = 0;
    double loop_lag_seconds = 0;
    decltype(turn::Stats::allocate_refused) allocate_refused{};
    std::uint64_t unauthenticated_dropped = 0;
    sip::LimitCounts sip_limited{};   // worker 0's gateway, if any
    std::array<std::uint64_t, 2> gateway_media_dropped_source{};  // admin::Metrics order; worker 0 only
    std::uint64_t user_allocation_refusals = 0;  // turn::Stats, the per-user limits (issue 11)
    std::uint64_t permission_cap_refusals = 0;
    std::uint64_t channel_cap_refusals = 0;
    std::vector<admin::TrunkTargetStatus> trunk_targets;   // worker 0's gateway (shared by all)
    std::array<std::uint64_t, 5> gateway_agent{};   // this worker's agent calls (admin::kAgentEventNames)
    std::array<std::uint64_t, 4> agent_transfers{};   // this worker's (admin::kAgentTransferResults)
};

class AccountingHub : public admin::Backend, public turn::QuotaGate, public turn::DrainGate, public turn::LeaseGate {
public:
    // `kick` asks worker `index` to delete allocation `id` (raw id) on its own thread.
    using Kicker = std::function<bool(unsigned worker, std::uint64_t allocation_id)>;
    AccountingHub(uv_loop_t* control_loop, std::unique_ptr<accounting::Store> store,
                  std::shared_ptr<const config::Config> cfg, unsigned workers, Kicker kick);
    ~AccountingHub() override;

    // Thread-safe, called by workers.
    void post(unsigned worker, std::vector<accounting::AllocationRecord> records, const WorkerStats& stats);
    // Thread-safe, called by the gateway once per call when it ends (with accounting off, the
    // call is only counted in /metrics).
    void post_call(accounting::CallRecord r);

    // Control thread.
    void set_config(std::shared_ptr<const config::Config> cfg);
    // Where metrics() reads the failed-authentication counters; null: none.
    void set_auth_throttle(const AuthThrottle* auth) { auth_ = auth; }
    void drain();  // writes what was posted; also called at shutdown after workers stopped
    void close();  // closes the async handle; logs what could not be written, if anything

    std::vector<admin::LiveAllocation> live() override;
    bool kick(std::string_view id) override;
    std::vector<accounting::UsageRow> usage(const accounting::UsageQuery& q) override;
    admin::Metrics metrics() override;
    // The stream counters /metrics shows (connections refused, closed by a limit); set by the App.
    void set_stream_stats(const io::StreamStats* stats) { stream_stats_ = stats; }
    // The gateway's cross-worker SIP mailboxes (their drop counter); set by the App, null without gateway.
    void set_gateway_shared(const gateway::GatewayShared* shared) { gateway_shared_ = shared; }
    std::vector<accounting::CallRecord> calls(const accounting::CallQuery& q) override;
    std::string not_ready() override;
    // [fleet] (issue 15): usage reads the fleet ledger; /metrics and /readyz see the shipper.
    void set_fleet(FleetShipper* fleet) { fleet_ = fleet; }
    // Drain (issue 15): asked by the workers on Allocate; answered from the shipper's snapshot.
    std::optional<std::optional<Endpoint>> redirect() const override {
        return fleet_ != nullptr ? fleet_->redirect() : std::nullopt;
    }
    // [fleet] byte quotas (issue 15): fleet-wide by leases; over_quota() then asks the leases.
    void set_leases(FleetLeases* leases) { leases_ = leases; }
    std::shared_ptr<turn::LeaseSlot> attach(const config::Realm& realm, const std::string& account) override {
        return leases_ != nullptr ? leases_->attach(realm, account) : nullptr;
    }
    // POST /api/v1/drain: what the process does to drain (App::drain); false without [fleet].
    void set_drainer(std::function<bool()> drain) { drainer_ = std::move(drain); }
    bool drain_node() override { return drainer_ ? drainer_() : false; }
    // POST /api/v1/calls and GET /api/v1/calls/ID (issue 17): the App's table of outbound agent
    // calls (null without gateway mode).
    void set_outbound(OutboundCalls* calls) { outbound_ = calls; }
    admin::Placed place_call(const admin::PlaceCall& req) override;
    std::optional<admin::OutboundCall> outbound_call(std::string_view id) override;

    // turn::QuotaGate, called by workers on Allocate/Refresh: relayed payload bytes (relay->peer
    // plus relay->client) of the account in the realm's current UTC day or month, read from the
    // snapshot the control thread last published: no lock, no store (a worker never waits for a
    // write). The snapshot lags the relay by at most one flush interval, like the store.
    bool over_quota(const config::Realm& realm, const std::string& account) const override;

    // "BOOT-COUNTER" (hex), or in a fleet "NODE:BOOT-COUNTER": unique across restarts and nodes
    // (issue 15: the fleet ledger is keyed by node, boot and counter).
    static std::string record_id(const std::string& node, std::int64_t instance_ms, std::uint64_t allocation_id);
    static std::int64_t period_start(config::Realm::QuotaPeriod p, std::int64_t now_ms);

private:
    FleetShipper* fleet_ = nullptr;
    FleetLeases* leases_ = nullptr;
    OutboundCalls* outbound_ = nullptr;
    std::function<bool()> drainer_;
    std::unique_ptr<accounting::Store> fleet_store_;  // the PostgreSQL ledger, opened on first use
    const io::StreamStats* stream_stats_ = nullptr;
    const gateway::GatewayShared* gateway_shared_ = nullptr;
    void absorb(const accounting::AllocationRecord& r, std::int64_t now_ms);
    void absorb_call(const accounting::CallRecord& c);

    uv_async_t async_{};
    std::unique_ptr<accounting::Store> store_;
    std::shared_ptr<const config::Config> cfg_;
    Kicker kick_;

    std::mutex mu_;
    std::vector<accounting::AllocationRecord> inbox_;
    std::vector<WorkerStats> stats_;
    const AuthThrottle* auth_ = nullptr;
    std::vector<accounting::CallRecord> call_inbox_;

    std::vector<accounting::AllocationRecord> unwritten_;  // a failed write's batch, retried
    std::vector<accounting::CallRecord> unwritten_calls_;  // the same for calls
    std::map<std::string, admin::RealmCalls> calls_;       // realm -> calls ended, for /metrics
    struct Live {
        accounting::AllocationRecord record;
        std::int64_t seen_ms = 0;
        double in_bps = 0, out_bps = 0;
    };
    std::map<std::string, Live> live_;
    std::map<std::string, accounting::Traffic> closed_traffic_;  // realm -> closed allocations' totals
    std::map<std::string, std::uint64_t> created_;               // realm -> allocations created
    std::map<std::string, std::uint64_t> closed_;                // reason -> count

    // Byte quotas (control thread): each quota realm's usage in its current period, loaded from
    // the store when the period starts (before a batch is written, so no batch counts twice)
    // and kept current with the deltas of every written batch; published to quota_ after.
    void refresh_quotas(std::int64_t now_ms);
    void publish_quotas() { quota_.store(quota_book_.snapshot(), std::memory_order_release); }
    accounting::QuotaBook quota_book_;
    std::map<std::string, std::uint64_t> quota_seen_;  // record id -> payload bytes already counted
    std::atomic<std::shared_ptr<const accounting::QuotaSnapshot>> quota_;
};

}  // namespace turnbridge::app
