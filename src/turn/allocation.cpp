// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/turn/allocation.hpp"

#include <algorithm>

namespace turnbridge::turn {

std::string_view to_string(CloseReason r) {
    switch (r) {
        case CloseReason::Expired: return "expired";
        case CloseReason::Refreshed0: return "refreshed-to-0";
        case CloseReason::ClientGone: return "client-gone";
        case CloseReason::Kicked: return "kicked";
        case CloseReason::Shutdown: return "shutdown";
        case CloseReason::Quota: return "quota";
    }
    return "unknown";
}

const RelaySocket* Allocation::relay_for(Family f) const {
    for (std::size_t i = 0; i < relay_count; ++i)
        if (relays[i].local.ip.family == f) return &relays[i];
    return nullptr;
}

bool Allocation::has_permission(const IpAddress& peer, Time now) const {
    for (const auto& p : permissions)
        if (p.peer == peer && p.expires > now) return true;
    return false;
}

void Allocation::install_permission(const IpAddress& peer, Time now) {
    // RFC 8656 §9: installing an existing permission refreshes it.
    for (auto& p : permissions) {
        if (p.peer == peer) {
            p.expires = now + kPermissionLifetime;
            return;
        }
    }
    permissions.push_back(Permission{peer, now + kPermissionLifetime});
}

const Channel* Allocation::channel_by_number(std::uint16_t number, Time now) const {
    for (const auto& c : channels)
        if (c.number == number && c.expires > now) return &c;
    return nullptr;
}

const Channel* Allocation::channel_by_peer(const Endpoint& peer, Time now) const {
    for (const auto& c : channels)
        if (c.peer == peer && c.expires > now) return &c;
    return nullptr;
}

void Allocation::expire(Time now) {
    std::erase_if(permissions, [&](const Permission& p) { return p.expires <= now; });
    // RFC 8656 §12: a channel's number and peer stay reserved for 5 minutes after it expires.
    std::erase_if(channels, [&](const Channel& c) { return c.expires + kChannelQuarantine <= now; });
}

}  // namespace turnbridge::turn
