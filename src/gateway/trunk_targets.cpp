// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/trunk_targets.hpp"

#include <algorithm>

namespace turnbridge::gateway {
namespace {

// RFC 2782 "Usage rules": within one priority, zero weights first, then repeatedly a random
// number in [0, sum of the remaining weights] picks the first record whose running sum reaches it.
void weighted_order(std::vector<TrunkTarget> group, const std::function<std::uint64_t()>& random,
                    std::vector<Endpoint>& out) {
    std::stable_partition(group.begin(), group.end(), [](const TrunkTarget& t) { return t.weight == 0; });
    while (!group.empty()) {
        std::uint64_t sum = 0;
        for (const auto& t : group) sum += t.weight;
        const std::uint64_t pick = random() % (sum + 1);
        std::uint64_t running = 0;
        std::size_t chosen = group.size() - 1;
        for (std::size_t i = 0; i < group.size(); ++i) {
            running += group[i].weight;
            if (running >= pick) {
                chosen = i;
                break;
            }
        }
        out.push_back(group[chosen].to);
        group.erase(group.begin() + static_cast<std::ptrdiff_t>(chosen));
    }
}

}  // namespace

std::vector<Endpoint> order_targets(std::span<const TrunkTarget> targets, const std::function<std::uint64_t()>& random,
                                    const std::function<bool(const Endpoint&)>& down) {
    std::vector<TrunkTarget> live;
    for (const auto& t : targets)
        if (!down || !down(t.to)) live.push_back(t);
    if (live.empty()) live.assign(targets.begin(), targets.end());
    std::stable_sort(live.begin(), live.end(),
                     [](const TrunkTarget& a, const TrunkTarget& b) { return a.priority < b.priority; });
    std::vector<Endpoint> out;
    for (auto it = live.begin(); it != live.end();) {
        auto end = std::find_if(it, live.end(), [&](const TrunkTarget& t) { return t.priority != it->priority; });
        weighted_order({it, end}, random, out);
        it = end;
    }
    return out;
}

}  // namespace turnbridge::gateway
