// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/accounting/quota_book.hpp"

namespace turnbridge::accounting {

std::uint64_t QuotaSnapshot::used(const std::string& realm, const std::string& account,
                                  std::int64_t period_start_ms) const {
    auto r = realms_.find(realm);
    if (r == realms_.end() || r->second.period_start_ms != period_start_ms) return 0;
    auto a = r->second.bytes.find(account);
    return a == r->second.bytes.end() ? 0 : a->second;
}

bool QuotaBook::holds(const std::string& realm, std::int64_t period_start_ms) const {
    auto r = realms_.find(realm);
    return r != realms_.end() && r->second.period_start_ms == period_start_ms;
}

void QuotaBook::load(const std::string& realm, std::int64_t period_start_ms, std::map<std::string, std::uint64_t> bytes) {
    auto& r = realms_[realm];
    r.period_start_ms = period_start_ms;
    r.bytes.clear();
    for (auto& [account, n] : bytes) r.bytes.emplace(account, n);
}

void QuotaBook::add(const std::string& realm, const std::string& account, std::uint64_t bytes) {
    auto r = realms_.find(realm);
    if (r == realms_.end() || bytes == 0) return;
    r->second.bytes[account] += bytes;
}

std::shared_ptr<const QuotaSnapshot> QuotaBook::snapshot() const {
    auto s = std::make_shared<QuotaSnapshot>();
    s->realms_ = realms_;
    return s;
}

}  // namespace turnbridge::accounting
