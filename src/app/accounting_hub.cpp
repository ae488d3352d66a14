// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/app/accounting_hub.hpp"

#include "turnbridge/app/outbound_calls.hpp"
#include "turnbridge/gateway/gateway_shared.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <unordered_map>
#include <fmt/format.h>

#include "turnbridge/base/log.hpp"

namespace turnbridge::app {
namespace {

std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
}

void add(accounting::Traffic& into, const accounting::Traffic& t) {
    for (std::size_t d = 0; d < accounting::kDirections; ++d) {
        into.packets[d] += t.packets[d];
        into.payload_bytes[d] += t.payload_bytes[d];
        into.wire_bytes[d] += t.wire_bytes[d];
    }
}

}  // namespace

AccountingHub::AccountingHub(uv_loop_t* control_loop, std::unique_ptr<accounting::Store> store,
                             std::shared_ptr<const config::Config> cfg, unsigned workers, Kicker kick)
    : store_(std::move(store)), cfg_(std::move(cfg)), kick_(std::move(kick)), stats_(workers) {
    refresh_quotas(unix_ms());
    uv_async_init(control_loop, &async_, [](uv_async_t* a) { static_cast<AccountingHub*>(a->data)->drain(); });
    async_.data = this;
}

AccountingHub::~AccountingHub() = default;

void AccountingHub::set_config(std::shared_ptr<const config::Config> cfg) {
    cfg_ = std::move(cfg);
    if (leases_ != nullptr) leases_->set_config(cfg_);
    refresh_quotas(unix_ms());   // a reload may give a realm a quota, or take it away
}

void AccountingHub::refresh_quotas(std::int64_t now_ms) {
    if (store_ == nullptr) return;
    bool changed = false;
    for (const auto& [name, realm] : cfg_->realms) {
        if (realm.quota_bytes == 0) continue;
        const std::int64_t start = period_start(realm.quota_period, now_ms);
        if (quota_book_.holds(name, start)) continue;
        quota_book_.load(name, start, store_->relayed_bytes(name, start));
        changed = true;
    }
    quota_book_.retain([&](const std::string& name) {
        auto it = cfg_->realms.find(name);
        const bool keep = it != cfg_->realms.end() && it->second.quota_bytes != 0;
        changed |= !keep;
        return keep;
    });
    if (changed || !quota_.load(std::memory_order_relaxed)) publish_quotas();
}

void AccountingHub::close() {
    // The final drain() has run: whatever is still here, the store refused (a full or read-only
    // disk); say how much is lost rather than drop it silently.
    if (!unwritten_.empty() || !unwritten_calls_.empty())
        log::error("accounting: {} allocation record{} and {} call record{} could not be written to {} and are lost",
                   unwritten_.size(), unwritten_.size() == 1 ? "" : "s", unwritten_calls_.size(),
                   unwritten_calls_.size() == 1 ? "" : "s", cfg_->accounting.database.string());
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

std::string AccountingHub::record_id(const std::string& node, std::int64_t instance_ms, std::uint64_t allocation_id) {
    if (node.empty()) return fmt::format("{:x}-{:x}", instance_ms, allocation_id);
    return fmt::format("{}:{:x}-{:x}", node, instance_ms, allocation_id);
}

void AccountingHub::post(unsigned worker, std::vector<accounting::AllocationRecord> records, const WorkerStats& stats) {
    {
        std::lock_guard lock(mu_);
        if (worker < stats_.size()) stats_[worker] = stats;
        for (auto& r : records) inbox_.push_back(std::move(r));
    }
    uv_async_send(&async_);
}

void AccountingHub::post_call(accounting::CallRecord r) {
    {
        std::lock_guard lock(mu_);
        call_inbox_.push_back(std::move(r));
    }
    uv_async_send(&async_);
}

void AccountingHub::drain() {
    std::vector<accounting::AllocationRecord> batch;
    std::vector<accounting::CallRecord> calls;
    {
        std::lock_guard lock(mu_);
        batch.swap(inbox_);
        calls.swap(call_inbox_);
    }
    const std::int64_t now = unix_ms();
    for (const auto& r : batch) absorb(r, now);
    for (auto& c : calls) {
        absorb_call(c);
        unwritten_calls_.push_back(std::move(c));
    }
    // Keep only the newest record per allocation: totals, so the last one says it all.
    std::unordered_map<std::string, std::size_t> index;
    index.reserve(unwritten_.size() + batch.size());
    for (std::size_t i = 0; i < unwritten_.size(); ++i) index.emplace(unwritten_[i].id, i);
    for (auto& r : batch) {
        auto [it, fresh] = index.emplace(r.id, unwritten_.size());
        if (fresh)
            unwritten_.push_back(std::move(r));
        else
            unwritten_[it->second] = std::move(r);
    }
    if (store_ == nullptr) {
        unwritten_calls_.clear();  // accounting is off: counted in /metrics only
        return;
    }
    // A period that began since the last drain is loaded before this batch is written.
    refresh_quotas(now);
    if (unwritten_.empty() && unwritten_calls_.empty()) return;
    if (!store_->write(unwritten_, unwritten_calls_, now)) return;  // kept, retried at the next drain
    unwritten_calls_.clear();
    // What the store now holds beyond what the quota book had: add it, then publish.
    for (const auto& r : unwritten_) {
        const std::uint64_t payload = r.traffic.payload_bytes[1] + r.traffic.payload_bytes[3];
        auto& seen = quota_seen_[r.id];
        const std::uint64_t delta = payload > seen ? payload - seen : 0;
        seen = payload;
        if (r.end_ms != 0) quota_seen_.erase(r.id);
        quota_book_.add(r.realm, r.account.empty() ? r.username : r.account, delta);
    }
    unwritten_.clear();
    publish_quotas();
}

std::int64_t AccountingHub::period_start(config::Realm::QuotaPeriod p, std::int64_t now_ms) {
    const std::time_t t = static_cast<std::time_t>(now_ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    if (p == config::Realm::QuotaPeriod::Month) tm.tm_mday = 1;
    return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

bool AccountingHub::over_quota(const config::Realm& realm, const std::string& account) const {
    if (realm.quota_bytes == 0 || store_ == nullptr) return false;
    // [fleet]: the fleet has nothing left to lease for the user (PostgreSQL's answer, published).
    if (leases_ != nullptr) return leases_->spent(realm, account, period_start(realm.quota_period, unix_ms()));
    const auto snapshot = quota_.load(std::memory_order_acquire);
    return snapshot && snapshot->used(realm.name, account, period_start(realm.quota_period, unix_ms())) >= realm.quota_bytes;
}

void AccountingHub::absorb(const accounting::AllocationRecord& r, std::int64_t now_ms) {
    auto it = live_.find(r.id);
    if (it == live_.end()) {
        ++created_[r.realm];  // workers post every record in order: the first is the creation
        if (r.end_ms == 0) it = live_.emplace(r.id, Live{r, now_ms, 0, 0}).first;
    } else {
        // Bit rates over the interval since the previous record of this allocation.
        const double secs = static_cast<double>(now_ms - it->second.seen_ms) / 1000.0;
        if (secs > 0.05) {
            const auto& a = it->second.record.traffic;
            const auto& b = r.traffic;
            const double in = static_cast<double>((b.wire_bytes[0] - a.wire_bytes[0]) + (b.wire_bytes[2] - a.wire_bytes[2]));
            const double out = static_cast<double>((b.wire_bytes[1] - a.wire_bytes[1]) + (b.wire_bytes[3] - a.wire_bytes[3]));
            it->second.in_bps = in * 8 / secs;
            it->second.out_bps = out * 8 / secs;
        }
        it->second.record = r;
        it->second.seen_ms = now_ms;
    }
    if (r.end_ms != 0) {
        ++closed_[r.end_reason];
        add(closed_traffic_[r.realm], r.traffic);
        if (it != live_.end()) live_.erase(it);
    }
}

void AccountingHub::absorb_call(const accounting::CallRecord& c) {
    auto& m = calls_[c.realm];
    ++m.ended[{c.direction, std::string(accounting::call_result(c)), c.trunk}];
    m.answered_seconds += static_cast<double>(std::max<std::int64_t>(0, c.duration_ms())) / 1000.0;
    const std::uint64_t packets[] = {c.browser_in_packets, c.browser_out_packets, c.trunk_in_packets, c.trunk_out_packets};
    const std::uint64_t bytes[] = {c.browser_in_bytes, c.browser_out_bytes, c.trunk_in_bytes, c.trunk_out_bytes};
    for (std::size_t i = 0; i < m.packets.size(); ++i) {
        m.packets[i] += packets[i];
        m.bytes[i] += bytes[i];
        const accounting::CallQuality& q = c.quality[i];
        if (!q.measured) continue;
        m.rtp_lost[i] += static_cast<std::uint64_t>(std::max<std::int64_t>(0, q.lost));
        for (std::size_t b = 0; b < admin::kMosBounds.size(); ++b)
            if (q.mos <= admin::kMosBounds[b]) ++m.mos_buckets[i][b];
        m.mos_sum[i] += q.mos;
        ++m.mos_count[i];
    }
}

std::vector<admin::LiveAllocation> AccountingHub::live() {
    drain();
    std::vector<admin::LiveAllocation> out;
    for (const auto& [id, l] : live_) out.push_back(admin::LiveAllocation{l.record, l.in_bps, l.out_bps});
    return out;
}

bool AccountingHub::kick(std::string_view id) {
    auto it = live_.find(std::string(id));
    if (it == live_.end()) return false;
    const auto dash = id.rfind('-');  // a fleet id starts with "NODE:", and NODE may hold '-'
    std::uint64_t raw = 0;
    try {
        raw = std::stoull(std::string(id.substr(dash + 1)), nullptr, 16);
    } catch (const std::exception&) {
        return false;
    }
    return kick_(static_cast<unsigned>(raw >> 48), raw);
}

namespace {
constexpr int kFleetReadTimeoutMs = 3000;
}  // namespace

std::vector<accounting::UsageRow> AccountingHub::usage(const accounting::UsageQuery& q) {
    drain();  // what workers posted so far is in the store before we read it
    if (store_ == nullptr) return {};
    std::map<std::string, accounting::Prices> prices;
    for (const auto& [name, realm] : cfg_->realms) prices[name] = accounting::Prices{realm.price_per_gb, realm.currency};
    if (fleet_ != nullptr) {
        // The fleet's totals (issue 15); what this node has not shipped yet joins them shortly.
        // This read runs on the control loop: each query is bounded (kFleetReadTimeoutMs, and
        // libpq's connect and TCP user timeouts), so a slow or vanished database costs the admin
        // API seconds, never the relay (workers do not wait on this loop).
        if (fleet_store_ == nullptr)
            fleet_store_ = accounting::PgLedger::open_store(cfg_->fleet.database, kFleetReadTimeoutMs);
        try {
            return fleet_store_->usage(q, prices);
        } catch (const std::exception&) {
            fleet_store_.reset();  // reconnect on the next request
            throw;
        }
    }
    return store_->usage(q, prices);
}

std::vector<accounting::CallRecord> AccountingHub::calls(const accounting::CallQuery& q) {
    drain();  // calls posted so far are in the store before we read it
    if (store_ == nullptr) return {};
    return store_->calls(q);
}

// Not ready (GET /readyz, issue 15): draining, or an outbox past 90 % of spool_max_rows (the
// database has been away long enough that this node should take no new work).
std::string AccountingHub::not_ready() {
    if (fleet_ == nullptr) return "";
    const auto s = fleet_->stats();
    if (s.draining) return "draining";
    if (s.spool_rows >= s.spool_max_rows / 10 * 9)
        return fmt::format("outbox at {} of {} rows (fleet.spool_max_rows): PostgreSQL unreachable", s.spool_rows,
                           s.spool_max_rows);
    return "";
}

admin::Metrics AccountingHub::metrics() {
    drain();
    admin::Metrics m;
    for (const auto& [name, realm] : cfg_->realms) m.realms[name];
    for (const auto& [realm, t] : closed_traffic_) add(m.realms[realm].traffic, t);
    for (const auto& [id, l] : live_) {
        auto& rt = m.realms[l.record.realm];
        ++rt.active_allocations;
        add(rt.traffic, l.record.traffic);
    }
    m.allocations_created = created_;
    for (const auto& [name, realm] : cfg_->realms)
        if (realm.gateway.enabled) m.calls[name];
    for (const auto& [realm, c] : calls_) m.calls[realm] = c;
    m.allocations_closed = closed_;
    if (fleet_ != nullptr) {
        const auto s = fleet_->stats();
        m.fleet = admin::FleetMetrics{s.spool_rows, s.spool_max_rows, store_ ? store_->outbox_dropped() : 0,
                                      s.shipped_rows, s.replayed_rows, s.database_up, s.draining};
        if (leases_ != nullptr) {
            const auto l = leases_->stats();
            m.fleet->quota_users = l.users, m.fleet->quota_leased_bytes = l.leased_bytes;
            m.fleet->quota_refused_bytes = l.refused_bytes, m.fleet->quota_excess_bytes = l.excess_bytes;
        }
    }
    if (stream_stats_ != nullptr) m.streams = stream_stats_->snapshot();
    if (gateway_shared_ != nullptr) m.gateway_mail_dropped = gateway_shared_->dropped();
    std::lock_guard lock(mu_);
    for (const auto& s : stats_) {
        m.auth_failures += s.auth_failures;
        m.quota_refusals += s.quota_refusals;
        m.unauthenticated_dropped += s.unauthenticated_dropped;
        for (std::size_t i = 0; i < s.sip_limited.size(); ++i) m.sip_limited[i] += s.sip_limited[i];
        for (std::size_t i = 0; i < m.gateway_media_dropped_source.size(); ++i)
            m.gateway_media_dropped_source[i] += s.gateway_media_dropped_source[i];
        for (std::size_t i = 0; i < m.gateway_agent.size(); ++i) m.gateway_agent[i] += s.gateway_agent[i];
        for (std::size_t i = 0; i < m.agent_transfers.size(); ++i) m.agent_transfers[i] += s.agent_transfers[i];
        m.user_allocation_refusals += s.user_allocation_refusals;
        m.permission_cap_refusals += s.permission_cap_refusals;
        m.channel_cap_refusals += s.channel_cap_refusals;
        m.trunk_targets.insert(m.trunk_targets.end(), s.trunk_targets.begin(), s.trunk_targets.end());
        m.loop_lag_seconds.push_back(s.loop_lag_seconds);
        for (std::size_t i = 0; i < s.allocate_refused.size(); ++i)
            m.allocations_failed[std::string(turn::to_string(static_cast<turn::AllocateRefusal>(i)))] += s.allocate_refused[i];
    }
    m.allocations_failed["auth"] = m.auth_failures;
    m.allocations_failed["quota"] = m.quota_refusals;
    if (auth_ != nullptr) {
        const auto c = auth_->counters();
        for (std::size_t p = 0; p < kAuthProtocols; ++p) {
            const auto name = std::string(to_string(static_cast<AuthProtocol>(p)));
            m.auth_failed[name] = c.failures[p];
            m.auth_throttled[name] = c.throttled[p];
        }
        m.auth_throttle_evictions = c.evictions;
    }
    if (outbound_ != nullptr) outbound_->fill(m);
    return m;
}

admin::Placed AccountingHub::place_call(const admin::PlaceCall& req) {
    if (outbound_ == nullptr) {   // no realm has gateway mode
        if (!cfg_->realms.contains(req.realm)) return {404, "no such realm", "realm", {}};
        return {409, "the realm has no gateway mode (no trunk to call through)", "realm", {}};
    }
    return outbound_->place(req, unix_ms());
}

std::optional<admin::OutboundCall> AccountingHub::outbound_call(std::string_view id) {
    return outbound_ != nullptr ? outbound_->find(id) : std::nullopt;
}

}  // namespace turnbridge::app
