// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/fleet_locations.hpp"

#include <algorithm>

namespace turnbridge::gateway {

std::vector<const FleetPeer*> RemoteLocations::owners(std::string_view aor, sip::Time now) const {
    std::vector<const FleetPeer*> out;
    auto it = aors.find(aor);
    if (it == aors.end()) return out;
    for (auto i : it->second)
        if (i < peers.size() && peers[i].live_until > now &&
            std::find(out.begin(), out.end(), &peers[i]) == out.end())
            out.push_back(&peers[i]);
    return out;
}

bool RemoteLocations::is_peer(const IpAddress& ip) const {
    return std::any_of(peers.begin(), peers.end(), [&](const FleetPeer& p) { return p.sip.ip == ip; });
}

}  // namespace turnbridge::gateway
