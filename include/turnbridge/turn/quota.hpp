// SPDX-License-Identifier: Apache-2.0
#pragma once
// Allocation counts shared by all workers, for the 486 quota (RFC 8656 §7.2). Touched only on
// Allocate and on deletion, never per packet, so a mutex is fine here.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace turnbridge::turn {

class QuotaTracker {
public:
    // Reserves one allocation for (realm, user); false if either limit (0 = none) is reached.
    bool acquire(const std::string& realm, const std::string& user, std::uint32_t total_limit,
                 std::uint32_t user_limit);
    void release(const std::string& realm, const std::string& user);
    std::uint32_t total() const;
    std::uint32_t of(const std::string& realm, const std::string& user) const;

private:
    mutable std::mutex mu_;
    std::uint32_t total_ = 0;
    std::map<std::pair<std::string, std::string>, std::uint32_t> per_user_;
};

}  // namespace turnbridge::turn
