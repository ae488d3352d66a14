// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/app/fleet_shipper.hpp"

#include <algorithm>

#include "turnbridge/accounting/outbox.hpp"
#include "turnbridge/base/log.hpp"

namespace turnbridge::app {
namespace {

constexpr std::size_t kBatchRows = 500;                 // rows per statement (27 parameters each)
constexpr auto kPoll = std::chrono::milliseconds(200);  // an idle outbox is looked at this often
constexpr auto kRetry = std::chrono::seconds(1);        // PostgreSQL away: try again this often
// After an outage the backlog drains in full batches with this pause between them (at most
// 25,000 rows/s per node), so that a fleet coming back does not flatten the database.
constexpr auto kPace = std::chrono::milliseconds(20);
constexpr auto kBeat = std::chrono::seconds(1);         // the registry heartbeat (issue 15)

}  // namespace

FleetShipper::FleetShipper(const config::Fleet& fleet, std::filesystem::path database, accounting::NodeHeartbeat beat)
    : node_(fleet.node_id), database_(std::move(database)), spool_max_(fleet.spool_max_rows), beat_(std::move(beat)),
      ledger_(fleet.database), locations_(fleet.node_id) {}

FleetShipper::~FleetShipper() { stop(std::chrono::milliseconds(0)); }

void FleetShipper::start() { thread_ = std::thread([this] { run(); }); }

void FleetShipper::stop(std::chrono::milliseconds grace) {
    if (!thread_.joinable()) return;
    {
        std::lock_guard lock(mu_);
        stop_ = true;
        stop_by_ = std::chrono::steady_clock::now() + grace;
    }
    cv_.notify_one();
    thread_.join();
}

void FleetShipper::wake() {
    {
        std::lock_guard lock(mu_);
        woken_ = true;
    }
    cv_.notify_one();
}

FleetStats FleetShipper::stats() const {
    return FleetStats{spool_rows_.load(std::memory_order_relaxed), spool_max_, shipped_.load(std::memory_order_relaxed),
                      replayed_.load(std::memory_order_relaxed), up_.load(std::memory_order_relaxed),
                      draining_.load(std::memory_order_relaxed)};
}

void FleetShipper::run() {
    std::unique_ptr<accounting::Outbox> outbox;
    try {
        outbox = accounting::Outbox::open(database_);
    } catch (const std::exception& e) {
        log::error("fleet: cannot read the outbox: {}; nothing is shipped", e.what());
        return;
    }
    for (;;) {
        const auto now = std::chrono::steady_clock::now();
        bool more = false, failed = false;
        try {
            spool_rows_.store(outbox->rows(), std::memory_order_relaxed);
            if (now - last_beat_ >= kBeat) beat(now);
            // Calls (issue 15): few, shipped whole before the intervals; a failure retries both.
            if (auto calls = outbox->read_calls(kBatchRows); !calls.empty()) {
                if (ledger_.ship_calls(node_, calls) < 0) {
                    failed = true;
                } else {
                    outbox->erase_calls_through(calls.back().seq);   // only after PostgreSQL's COMMIT
                    more = calls.size() == kBatchRows;
                }
            }
            auto rows = failed ? std::vector<accounting::OutboxRow>() : outbox->read(kBatchRows);
            if (!rows.empty()) {
                const long fresh = ledger_.ship(node_, rows);
                if (fresh < 0) {
                    failed = true;
                } else {
                    outbox->erase_through(rows.back().seq);  // only after PostgreSQL's COMMIT
                    shipped_ += static_cast<std::uint64_t>(fresh);
                    replayed_ += rows.size() - static_cast<std::uint64_t>(fresh);
                    more = more || rows.size() == kBatchRows;
                }
            }
        } catch (const std::exception& e) {
            log::warn("fleet: outbox: {}", e.what());
            failed = true;
        }
        if (failed) {
            up_.store(false, std::memory_order_relaxed);
            if (!warned_)
                log::warn("fleet: PostgreSQL unreachable ({}); {} rows kept in the outbox and retried every second",
                          ledger_.error(), spool_rows_.load());
            warned_ = true;
        } else if (ledger_.connected()) {
            if (warned_) log::info("fleet: PostgreSQL reachable again; the outbox drains ({} rows)", spool_rows_.load());
            warned_ = false;
            up_.store(true, std::memory_order_relaxed);
        }
        std::unique_lock lock(mu_);
        if (stop_) {
            // Stopping: the hub's final write is in the outbox; ship it all, unless PostgreSQL
            // stays away past the grace (then the rows wait in the file for the next start).
            if (!more && !failed) break;
            if (std::chrono::steady_clock::now() >= stop_by_) {
                log::warn("fleet: stopping with {} rows in the outbox; they are shipped at the next start",
                          spool_rows_.load());
                break;
            }
        }
        const auto wait = failed ? std::chrono::duration_cast<std::chrono::milliseconds>(kRetry)
                          : more ? kPace
                                 : kPoll;
        cv_.wait_for(lock, wait, [&] { return !failed && (woken_ || stop_); });
        woken_ = false;
    }
}

std::optional<std::optional<Endpoint>> FleetShipper::redirect() const {
    if (!draining_.load(std::memory_order_relaxed)) return std::nullopt;
    const auto a = alternate_.load(std::memory_order_acquire);
    return a ? *a : std::optional<Endpoint>();
}

// The node a draining node sends new allocations to: another node of the same region whose
// heartbeat is under 3 s old (issue 15: older is dead) and that is not draining itself, the
// one with the fewest allocations; its first listener.
void FleetShipper::choose_alternate(const std::vector<accounting::FleetNode>& nodes) {
    std::optional<Endpoint> best;
    std::uint64_t fewest = 0;
    for (const auto& n : nodes) {
        if (n.beat.node == node_ || n.beat.region != beat_.region || n.beat.state != "ready" || n.age_seconds > 3.0)
            continue;
        const auto comma = n.beat.listen.find(',');
        auto ep = Endpoint::parse(n.beat.listen.substr(0, comma));
        if (!ep || (best && n.beat.allocations >= fewest)) continue;
        best = ep, fewest = n.beat.allocations;
    }
    alternate_.store(std::make_shared<const std::optional<Endpoint>>(best), std::memory_order_release);
}

void FleetShipper::beat(std::chrono::steady_clock::time_point now) {
    last_beat_ = now;
    beat_.state = draining_.load(std::memory_order_relaxed) ? "draining" : "ready";
    beat_.allocations = allocations_.load(std::memory_order_relaxed);
    beat_.spool_rows = spool_rows_.load(std::memory_order_relaxed);
    if (ledger_.heartbeat(beat_)) up_.store(true, std::memory_order_relaxed);
    const auto nodes = ledger_.nodes();
    choose_alternate(nodes);
    locations_.run(ledger_, nodes, now);
}

}  // namespace turnbridge::app
