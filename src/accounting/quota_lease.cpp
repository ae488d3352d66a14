// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/accounting/quota_lease.hpp"

#include <algorithm>
#include <limits>

namespace turnbridge::accounting {

std::uint64_t lease_grant(std::uint64_t want, std::uint64_t remaining, std::uint64_t live_nodes) {
    const std::uint64_t share = remaining / (2 * std::max<std::uint64_t>(live_nodes, 1));
    if (share < kLeaseMinSlice) return std::min({want, remaining, kLeaseMinSlice});
    return std::min(want, share);
}

void QuotaLease::observe(std::uint64_t used, Time now) {
    const std::uint64_t moved = used > base_ ? used - base_ : 0;
    const std::uint64_t w = std::min(moved, lease_);
    lease_ -= w;
    within_ += w;
    excess_ += moved - w;
    excess_total_ += moved - w;
    if (down_) outage_excess_ += moved - w;
    base_ = std::max(base_, used);
    // Not renewed within lease_ttl: PostgreSQL counts the whole lease as used and forgets it,
    // so what is left of it here may not be relayed any more.
    if (now >= deadline_) lease_ = 0;
    if (moved != 0) last_traffic_ = now;
    if (!rate_known_ && rate_since_ == Time{}) rate_since_ = now, rate_used_ = used;
    const double secs = std::chrono::duration<double>(now - rate_since_).count();
    if (secs >= 0.5) {
        const double r = static_cast<double>(used - std::min(used, rate_used_)) / secs;
        rate_ = rate_known_ ? (rate_ + r) / 2 : r;
        rate_known_ = true;
        rate_since_ = now, rate_used_ = used;
    }
}

bool QuotaLease::wants_more(Time) const {
    const double low = std::max(rate_ * 5.0, static_cast<double>(kLeaseMinSlice / 2));
    return static_cast<double>(lease_) < low;
}

QuotaLease::Report QuotaLease::report(bool give_back, Time now) const {
    Report r{within_, excess_, give_back ? 0 : lease_, 0};
    if (!give_back && idle(now)) r.hold = kLeaseMinSlice;
    if (give_back || !wants_more(now)) return r;
    const double span = std::chrono::duration<double>(kLeaseSpan).count();
    const std::uint64_t target = rate_known_ && rate_ > 0
                                     ? std::max(kLeaseMinSlice, static_cast<std::uint64_t>(rate_ * span))
                                     : kLeaseFirstSlice;
    r.want = target > lease_ ? target - lease_ : 0;
    return r;
}

void QuotaLease::committed(const Report& sent, std::uint64_t lease, Time sent_at, std::chrono::seconds ttl) {
    within_ -= std::min(within_, sent.within);
    excess_ -= std::min(excess_, sent.excess);
    if (lease > sent.hold) last_traffic_ = std::max(last_traffic_, sent_at);  // a fresh grant is not idle yet
    lease_ = lease;
    deadline_ = sent_at + ttl;
    down_ = false;
    outage_excess_ = 0;
}

std::uint64_t QuotaLease::limit(const config::Fleet& fleet) const {
    const std::uint64_t held = base_ + lease_;
    if (!down_) return held;
    switch (fleet.quota_outage) {
        case config::Fleet::QuotaOutage::FailClosed: return held;
        case config::Fleet::QuotaOutage::Grace:
            return held + (fleet.quota_grace_bytes - std::min(fleet.quota_grace_bytes, outage_excess_));
        case config::Fleet::QuotaOutage::FailOpen: break;
    }
    return std::numeric_limits<std::uint64_t>::max();
}

}  // namespace turnbridge::accounting
