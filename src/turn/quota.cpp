// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/turn/quota.hpp"

namespace turnbridge::turn {

bool QuotaTracker::acquire(const std::string& realm, const std::string& user, std::uint32_t total_limit,
                           std::uint32_t user_limit) {
    std::lock_guard lock(mu_);
    if (total_limit != 0 && total_ >= total_limit) return false;
    auto& n = per_user_[{realm, user}];
    if (user_limit != 0 && n >= user_limit) {
        if (n == 0) per_user_.erase({realm, user});
        return false;
    }
    ++n;
    ++total_;
    return true;
}

void QuotaTracker::release(const std::string& realm, const std::string& user) {
    std::lock_guard lock(mu_);
    auto it = per_user_.find({realm, user});
    if (it == per_user_.end()) return;
    if (--it->second == 0) per_user_.erase(it);
    if (total_ > 0) --total_;
}

std::uint32_t QuotaTracker::total() const {
    std::lock_guard lock(mu_);
    return total_;
}

std::uint32_t QuotaTracker::of(const std::string& realm, const std::string& user) const {
    std::lock_guard lock(mu_);
    auto it = per_user_.find({realm, user});
    return it == per_user_.end() ? 0 : it->second;
}

}  // namespace turnbridge::turn
