// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fleet-wide byte quotas (issue 15): the lease thread. Workers attach each allocation of a quota
// user to the user's LeaseSlot on Allocate (a short lock, never per packet) and then relay only
// while the slot's `used` stays under its `limit`, which this thread sets from the leases it gets
// from PostgreSQL (accounting/pg_leases) on a thread of its own: relaying never waits on the
// database. Every 100 ms it looks at each slot; a lease running low is renewed at once, and every
// second all of them are reported and renewed (lease_ttl). A user whose allocations here all
// ended, or who went idle, gets its lease returned. The users with nothing left to lease are
// published as an immutable snapshot that Allocate and Refresh read (486).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include "turnbridge/accounting/pg_leases.hpp"
#include "turnbridge/accounting/quota_lease.hpp"
#include "turnbridge/config/config.hpp"
#include "turnbridge/turn/lease_slot.hpp"

namespace turnbridge::app {

struct LeaseStats {
    std::uint64_t users = 0;           // quota users with a slot on this node
    std::uint64_t leased_bytes = 0;    // what this node holds, not relayed yet
    std::uint64_t refused_bytes = 0;   // not relayed for want of a lease (since start)
    std::uint64_t excess_bytes = 0;    // relayed beyond the leases in outages (since start)
    bool database_up = false;
};

class FleetLeases : public turn::LeaseGate {
public:
    FleetLeases(std::shared_ptr<const config::Config> cfg, std::int64_t boot);
    ~FleetLeases() override;  // stop() if not yet

    void start();
    // Returns every lease (PostgreSQL permitting, within `grace`), then ends the thread.
    void stop(std::chrono::milliseconds grace);
    void set_config(std::shared_ptr<const config::Config> cfg);

    // turn::LeaseGate: any worker, on Allocate.
    std::shared_ptr<turn::LeaseSlot> attach(const config::Realm& realm, const std::string& account) override;
    // Nothing left to lease for the user in its current period (Allocate and Refresh: 486). Any thread.
    bool spent(const config::Realm& realm, const std::string& account, std::int64_t period_start_ms) const;
    LeaseStats stats() const;

private:
    struct User {
        std::string realm, account;
        std::int64_t period_start_ms = 0;
        std::shared_ptr<turn::LeaseSlot> slot = std::make_shared<turn::LeaseSlot>();
        accounting::QuotaLease lease;
        std::chrono::steady_clock::time_point backoff{};  // refused: no urgent ask before then
    };
    using Key = std::pair<std::string, std::string>;  // realm, account
    using Spent = std::set<std::tuple<std::string, std::string, std::int64_t>>;

    struct Tally {
        std::uint64_t leased = 0, refused = 0, excess = 0;
    };
    void run();
    std::optional<accounting::LeaseAsk> look_at(User& u, const config::Config& cfg,
                                                std::chrono::steady_clock::time_point now, std::int64_t now_ms,
                                                bool all, bool stopping, Tally& tally);
    // One round with PostgreSQL; `all`: report and renew every lease, not only the low ones.
    void round(bool all, bool stopping);
    std::shared_ptr<const config::Config> config() const;

    std::string node_;
    std::int64_t boot_;
    accounting::PgLeases pg_;
    mutable std::mutex mu_;  // users_, cfg_, stop_, woken_
    std::condition_variable cv_;
    std::shared_ptr<const config::Config> cfg_;
    std::map<Key, std::shared_ptr<User>> users_;
    bool stop_ = false, woken_ = false;
    std::chrono::steady_clock::time_point stop_by_{};
    std::thread thread_;
    std::atomic<std::shared_ptr<const Spent>> spent_;
    std::atomic<std::uint64_t> users_count_{0}, leased_{0}, refused_{0}, excess_{0};
    std::uint64_t refused_gone_ = 0;  // of users no longer in users_ (lease thread only)
    std::atomic<bool> up_{false};
    bool warned_ = false;
    bool down_ = false;  // the last round found PostgreSQL unreachable (lease thread only)
    std::chrono::steady_clock::time_point retry_at_{};
};

}  // namespace turnbridge::app
