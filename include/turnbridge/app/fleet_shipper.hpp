// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fleet mode (issue 15): ships the local outbox to the PostgreSQL ledger and keeps this node's
// heartbeat row, on a thread of its own: relaying and the control loop never wait on
// PostgreSQL. Rows are deleted locally only after PostgreSQL committed them; a batch shipped
// twice (a crash between COMMIT and the delete) adds nothing the second time.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "turnbridge/accounting/pg_ledger.hpp"
#include "turnbridge/app/fleet_location.hpp"
#include "turnbridge/base/address.hpp"
#include "turnbridge/config/config.hpp"

namespace turnbridge::app {

struct FleetStats {
    std::uint64_t spool_rows = 0;       // outbox rows waiting
    std::uint64_t spool_max_rows = 0;
    std::uint64_t shipped_rows = 0;     // rows PostgreSQL newly took (since start)
    std::uint64_t replayed_rows = 0;    // rows it already had (a replay after a crash)
    bool database_up = false;           // the last attempt reached PostgreSQL
    bool draining = false;
};

class FleetShipper {
public:
    // `database`: the node's SQLite file (its outbox). `beat` is this node's registry row; its
    // state, allocations and spool rows are kept current here.
    FleetShipper(const config::Fleet& fleet, std::filesystem::path database, accounting::NodeHeartbeat beat);
    ~FleetShipper();  // stop() if not yet

    void start();
    // Ships what the outbox holds (for at most `grace`), then ends the thread.
    void stop(std::chrono::milliseconds grace);
    // A flush wrote rows: ship them without waiting for the next poll.
    void wake();
    void set_live(std::uint64_t allocations) { allocations_.store(allocations, std::memory_order_relaxed); }
    void set_draining() { draining_.store(true, std::memory_order_relaxed); }
    FleetStats stats() const;
    // While draining: the node new allocations go to (a live node of this region, from the
    // registry, looked up every second), or none. nullopt while not draining. Any thread.
    std::optional<std::optional<Endpoint>> redirect() const;
    // SIP location across nodes: synced on this thread after each heartbeat.
    FleetLocationSync& locations() { return locations_; }

private:
    void run();
    bool ship_some();  // true when the outbox may hold more right now
    void beat(std::chrono::steady_clock::time_point now);
    void choose_alternate(const std::vector<accounting::FleetNode>& nodes);

    std::string node_;
    std::filesystem::path database_;
    std::uint64_t spool_max_;
    accounting::NodeHeartbeat beat_;
    accounting::PgLedger ledger_;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false, woken_ = false;
    std::chrono::steady_clock::time_point stop_by_{};
    std::chrono::steady_clock::time_point last_beat_{};
    std::atomic<std::uint64_t> allocations_{0}, spool_rows_{0}, shipped_{0}, replayed_{0};
    std::atomic<bool> draining_{false}, up_{false};
    bool warned_ = false;
    std::atomic<std::shared_ptr<const std::optional<Endpoint>>> alternate_;
    FleetLocationSync locations_;
};

}  // namespace turnbridge::app
