// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/app/fleet_leases.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "turnbridge/app/accounting_hub.hpp"
#include "turnbridge/base/log.hpp"

namespace turnbridge::app {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kTick = std::chrono::milliseconds(100);  // low leases are renewed this soon
constexpr auto kRound = std::chrono::seconds(1);        // every lease reported and renewed
constexpr auto kBackoff = std::chrono::seconds(1);      // a refused ask is repeated no sooner
constexpr std::int64_t kSpentLookback = 32LL * 86'400'000;  // periods are a day or a month

std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

FleetLeases::FleetLeases(std::shared_ptr<const config::Config> cfg, std::int64_t boot)
    : node_(cfg->fleet.node_id), boot_(boot), pg_(cfg->fleet.database, cfg->fleet.node_id, boot),
      cfg_(std::move(cfg)) {
    spent_.store(std::make_shared<const Spent>());
}

FleetLeases::~FleetLeases() { stop(std::chrono::milliseconds(0)); }

void FleetLeases::start() { thread_ = std::thread([this] { run(); }); }

void FleetLeases::stop(std::chrono::milliseconds grace) {
    if (!thread_.joinable()) return;
    {
        std::lock_guard lock(mu_);
        stop_ = true;
        stop_by_ = Clock::now() + grace;
    }
    cv_.notify_one();
    thread_.join();
}

void FleetLeases::set_config(std::shared_ptr<const config::Config> cfg) {
    std::lock_guard lock(mu_);
    cfg_ = std::move(cfg);
}

std::shared_ptr<const config::Config> FleetLeases::config() const {
    std::lock_guard lock(mu_);
    return cfg_;
}

std::shared_ptr<turn::LeaseSlot> FleetLeases::attach(const config::Realm& realm, const std::string& account) {
    std::shared_ptr<turn::LeaseSlot> slot;
    {
        std::lock_guard lock(mu_);
        auto& u = users_[{realm.name, account}];
        if (!u) {
            u = std::make_shared<User>();
            u->realm = realm.name, u->account = account;
        }
        u->slot->allocations.fetch_add(1, std::memory_order_acq_rel);
        slot = u->slot;
        woken_ = true;  // a new user wants its first lease before its first packet
    }
    cv_.notify_one();
    return slot;
}

bool FleetLeases::spent(const config::Realm& realm, const std::string& account, std::int64_t period_start_ms) const {
    const auto s = spent_.load(std::memory_order_acquire);
    return s->count({realm.name, account, period_start_ms}) != 0;
}

LeaseStats FleetLeases::stats() const {
    return LeaseStats{users_count_.load(std::memory_order_relaxed), leased_.load(std::memory_order_relaxed),
                      refused_.load(std::memory_order_relaxed), excess_.load(std::memory_order_relaxed),
                      up_.load(std::memory_order_relaxed)};
}

void FleetLeases::run() {
    auto last_round = Clock::time_point{};
    for (;;) {
        bool stopping = false;
        {
            std::unique_lock lock(mu_);
            cv_.wait_for(lock, kTick, [&] { return woken_ || stop_; });
            woken_ = false;
            stopping = stop_;
        }
        const auto now = Clock::now();
        const bool all = stopping || now - last_round >= kRound;
        if (all) last_round = now;
        round(all, stopping);
        if (stopping) {
            // Stopping: every lease went back (hold 0) unless PostgreSQL is away; then they
            // expire after lease_ttl and count as used.
            if (up_.load(std::memory_order_relaxed) || Clock::now() >= stop_by_) break;
            std::this_thread::sleep_for(kTick);
        }
    }
}

// One user at the start of a round: its traffic settled against its lease, its slot's limit set,
// and what to ask PostgreSQL for, if anything this round.
std::optional<accounting::LeaseAsk> FleetLeases::look_at(User& u, const config::Config& cfg, Clock::time_point now,
                                                         std::int64_t now_ms, bool all, bool stopping, Tally& tally) {
    const auto realm = cfg.realms.find(u.realm);
    const std::uint64_t budget = realm == cfg.realms.end() ? 0 : realm->second.quota_bytes;
    const std::uint64_t used = u.slot->used.load(std::memory_order_acquire);
    if (budget == 0) {
        // A reload took the quota away: nothing to lease, nothing to stop.
        u.slot->limit.store(UINT64_MAX, std::memory_order_release);
        return std::nullopt;
    }
    const std::int64_t period = AccountingHub::period_start(realm->second.quota_period, now_ms);
    if (period != u.period_start_ms) {
        // A new period (or the first): a fresh budget; a lease of the old one expires unused.
        u.period_start_ms = period;
        u.lease = accounting::QuotaLease(used);
    }
    if (down_) u.lease.unreachable();  // also a user who came during the outage
    const bool give_back = stopping || u.slot->allocations.load(std::memory_order_acquire) == 0;
    const bool idle = !give_back && u.lease.idle(now);
    // Returning: the limit stays where the slot is (idle: one minimum slice above), so nothing
    // relays on what goes back.
    if (give_back) u.slot->limit.store(used, std::memory_order_release);
    if (idle)
        u.slot->limit.store(std::min(u.slot->limit.load(std::memory_order_relaxed), used + accounting::kLeaseMinSlice),
                            std::memory_order_release);
    const std::uint64_t excess_before = u.lease.excess_total();
    u.lease.observe(u.slot->used.load(std::memory_order_acquire), now);
    tally.excess += u.lease.excess_total() - excess_before;
    if (!give_back && !idle) u.slot->limit.store(u.lease.limit(cfg.fleet), std::memory_order_release);
    tally.leased += u.lease.lease();
    tally.refused += u.slot->refused.load(std::memory_order_relaxed);
    const auto r = u.lease.report(give_back, now);
    const bool urgent = r.want != 0 && now >= u.backoff;
    const bool owes = r.within != 0 || r.excess != 0 || r.hold < u.lease.lease();
    if (!all && !urgent && !((give_back || idle) && owes)) return std::nullopt;
    return accounting::LeaseAsk{u.realm, u.account, period, budget, r};
}

void FleetLeases::round(bool all, bool stopping) {
    const auto cfg = config();
    const auto& fleet = cfg->fleet;
    const auto now = Clock::now();
    const std::int64_t now_ms = unix_ms();
    std::vector<std::shared_ptr<User>> users;
    {
        std::lock_guard lock(mu_);
        // A user whose allocations ended and whose lease went back needs no slot any more.
        std::erase_if(users_, [&](const auto& kv) {
            const User& u = *kv.second;
            const bool gone = u.slot->allocations.load(std::memory_order_acquire) == 0 && u.lease.lease() == 0 &&
                              u.lease.unreported() == 0;
            if (gone) refused_gone_ += u.slot->refused.load(std::memory_order_relaxed);
            return gone;
        });
        for (const auto& [key, u] : users_) users.push_back(u);
    }
    std::vector<accounting::LeaseAsk> asks;
    std::vector<User*> asked;
    Tally tally{0, refused_gone_, 0};
    for (const auto& up : users) {
        if (auto ask = look_at(*up, *cfg, now, now_ms, all, stopping, tally)) {
            asks.push_back(std::move(*ask));
            asked.push_back(up.get());
        }
    }
    std::uint64_t leased = tally.leased, refused = tally.refused, excess = tally.excess;
    users_count_.store(users.size(), std::memory_order_relaxed);
    refused_.store(refused, std::memory_order_relaxed);
    excess_.fetch_add(excess, std::memory_order_relaxed);
    const bool waiting = down_ && !stopping && now < retry_at_;  // PostgreSQL away: ask once a second
    const bool any_quota = std::any_of(cfg->realms.begin(), cfg->realms.end(),
                                       [](const auto& r) { return r.second.quota_bytes != 0; });
    if ((asks.empty() && !all) || waiting || !any_quota) {  // no quota realm: PostgreSQL is not asked
        leased_.store(leased, std::memory_order_relaxed);
        return;
    }
    // Every node locks users in this order (pg_leases.hpp).
    std::vector<std::size_t> order(asks.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return std::tie(asks[a].realm, asks[a].account) < std::tie(asks[b].realm, asks[b].account);
    });
    std::vector<accounting::LeaseAsk> sorted;
    std::vector<User*> sorted_users;
    for (auto i : order) sorted.push_back(asks[i]), sorted_users.push_back(asked[i]);
    const auto sent_at = Clock::now();
    std::vector<accounting::LeaseAnswer> answers;
    std::vector<accounting::SpentUser> spent;
    if (pg_.exchange(sorted, fleet.lease_ttl, now_ms - kSpentLookback, answers, spent)) {
        for (std::size_t i = 0; i < sorted.size(); ++i) {
            User& u = *sorted_users[i];
            u.lease.committed(sorted[i].report, answers[i].lease, sent_at, fleet.lease_ttl);
            if (sorted[i].report.want != 0 && answers[i].lease <= sorted[i].report.hold) u.backoff = sent_at + kBackoff;
            const bool returned = sorted[i].report.hold == 0 && sorted[i].report.want == 0;
            if (!returned) u.slot->limit.store(u.lease.limit(fleet), std::memory_order_release);
        }
        auto snapshot = std::make_shared<Spent>();
        for (auto& s : spent) snapshot->emplace(std::move(s.realm), std::move(s.account), s.period_start_ms);
        spent_.store(std::move(snapshot), std::memory_order_release);
        if (warned_) log::info("fleet: quota leases: PostgreSQL reachable again");
        warned_ = false;
        down_ = false;
        up_.store(true, std::memory_order_relaxed);
    } else if (pg_.unreachable()) {
        // An outage: fleet.quota_outage decides what each quota user may still relay here.
        for (const auto& up : users) {
            up->lease.unreachable();
            if (up->slot->allocations.load(std::memory_order_acquire) != 0)
                up->slot->limit.store(up->lease.limit(fleet), std::memory_order_release);
        }
        if (!warned_)
            log::warn("fleet: quota leases: PostgreSQL unreachable ({}); quota users relay on their leases, then "
                      "by fleet.quota_outage",
                      pg_.error());
        warned_ = true;
        down_ = true;
        retry_at_ = Clock::now() + kRound;
        up_.store(false, std::memory_order_relaxed);
    } else {
        log::warn("fleet: quota leases: {} (retried)", pg_.error());
    }
    leased = 0;
    for (const auto& up : users) leased += up->lease.lease();
    leased_.store(leased, std::memory_order_relaxed);
}

}  // namespace turnbridge::app
