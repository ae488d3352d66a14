// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/trunk_choice.hpp"

namespace turnbridge::gateway {

std::span<const config::Realm> trunks_of(const config::Realm& realm) {
    if (realm.trunks.empty()) return {&realm, 1};
    return realm.trunks;
}

const config::Realm& choose_trunk(const config::Realm& realm, std::string_view number) {
    const auto trunks = trunks_of(realm);
    const config::Realm* best = &trunks.front();
    std::size_t best_length = 0;
    // Longest prefix, as a routing table (Kamailio's dialplan/lcr prefix match): "+1555" beats
    // "+1". Prefixes are unique in a realm (trunks_config.cpp), so there are no ties.
    for (const auto& trunk : trunks)
        for (const auto& prefix : trunk.gateway.prefixes)
            if (prefix.size() > best_length && number.starts_with(prefix)) {
                best = &trunk;
                best_length = prefix.size();
            }
    return *best;
}

const config::Realm* trunk_at(const config::Realm& realm, std::size_t index) {
    const auto trunks = trunks_of(realm);
    return index < trunks.size() ? &trunks[index] : nullptr;
}

}  // namespace turnbridge::gateway
