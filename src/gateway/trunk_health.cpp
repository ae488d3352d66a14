// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/trunk_health.hpp"

#include <algorithm>

namespace turnbridge::gateway {

void TrunkHealth::set_targets(const std::string& realm, const std::string& trunk, const std::vector<Endpoint>& targets) {
    std::erase_if(targets_, [&](const TargetHealth& t) {
        return t.realm == realm && t.trunk == trunk && std::find(targets.begin(), targets.end(), t.to) == targets.end();
    });
    for (const auto& to : targets)
        if (find(realm, trunk, to) == nullptr) targets_.push_back(TargetHealth{realm, trunk, to});
}

TargetHealth* TrunkHealth::find(const std::string& realm, const std::string& trunk, const Endpoint& to) {
    auto it = std::find_if(targets_.begin(), targets_.end(),
                           [&](const TargetHealth& t) { return t.realm == realm && t.trunk == trunk && t.to == to; });
    return it == targets_.end() ? nullptr : &*it;
}

bool TrunkHealth::probe_sent(Time now, const std::string& realm, const std::string& trunk, const Endpoint& to) {
    auto* t = find(realm, trunk, to);
    if (t == nullptr) return false;
    bool went_down = false;
    if (t->sent) {
        ++t->misses;
        if (t->up && t->misses >= kMissesDown) {
            t->up = false;
            went_down = true;
        }
    }
    t->sent = now;
    return went_down;
}

bool TrunkHealth::on_response(Time now, const std::string& realm, const std::string& trunk, const Endpoint& to,
                              int status) {
    auto* t = find(realm, trunk, to);
    if (t == nullptr || !t->sent) return false;
    t->rtt = std::chrono::duration_cast<std::chrono::milliseconds>(now - *t->sent);
    t->sent.reset();
    t->last_status = status;
    t->last_response = now;
    t->misses = 0;
    const bool came_up = !t->up;
    t->up = true;
    return came_up;
}

bool TrunkHealth::down(const std::string& realm, const std::string& trunk, const Endpoint& to) const {
    return std::any_of(targets_.begin(), targets_.end(),
                       [&](const TargetHealth& t) { return t.realm == realm && t.trunk == trunk && t.to == to && !t.up; });
}

}  // namespace turnbridge::gateway
