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

void RateLimit::set_rate(std::uint64_t bits_per_second, Time now) {
    rate_bps_ = bits_per_second;
    // A burst of 200 ms at the rate, but always room for one full-size datagram.
    burst_bits_ = std::max(static_cast<double>(bits_per_second) * 0.2, 1500.0 * 8);
    tokens_bits_ = burst_bits_;
    last_ = now;
}

void RateLimit::change_rate(std::uint64_t bits_per_second) {
    if (bits_per_second == rate_bps_) return;
    const double tokens = tokens_bits_;
    const bool was_unlimited = rate_bps_ == 0;
    set_rate(bits_per_second, last_);
    if (!was_unlimited) tokens_bits_ = std::min(tokens, burst_bits_);
}

bool RateLimit::allow(std::size_t bytes, Time now) {
    if (rate_bps_ == 0) return true;
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_bits_ = std::min(burst_bits_, tokens_bits_ + elapsed * static_cast<double>(rate_bps_));
    const double need = static_cast<double>(bytes) * 8;
    if (tokens_bits_ < need) return false;
    tokens_bits_ -= need;
    return true;
}

const RelaySocket* Allocation::relay_for(Family f) const {
    for (std::size_t i = 0; i < relay_count; ++i)
        if (relays[i].local.ip.family == f) return &relays[i];
    return nullptr;
}

PeerIndex* Allocation::index() const {
    if (permissions.size() <= kLinearPeers && channels.size() <= kLinearPeers && index_ == nullptr) return nullptr;
    if (index_ == nullptr) index_ = std::make_unique<PeerIndex>();
    PeerIndex& ix = *index_;
    for (; ix.permissions_indexed < permissions.size(); ++ix.permissions_indexed)
        ix.permission[permissions[ix.permissions_indexed].peer] = static_cast<std::uint32_t>(ix.permissions_indexed);
    for (; ix.channels_indexed < channels.size(); ++ix.channels_indexed) {
        const Channel& c = channels[ix.channels_indexed];
        const auto pos = static_cast<std::uint32_t>(ix.channels_indexed);
        ix.channel_number[c.number] = pos;
        ix.channel_peer[c.peer] = pos;
    }
    return &ix;
}

bool Allocation::has_permission(const IpAddress& peer, Time now) const {
    if (const PeerIndex* ix = index()) {
        auto it = ix->permission.find(peer);
        return it != ix->permission.end() && permissions[it->second].expires > now;
    }
    for (const auto& p : permissions)
        if (p.peer == peer && p.expires > now) return true;
    return false;
}

void Allocation::install_permission(const IpAddress& peer, Time now) {
    // RFC 8656 §9: installing an existing permission refreshes it.
    if (const PeerIndex* ix = index()) {
        if (auto it = ix->permission.find(peer); it != ix->permission.end()) {
            permissions[it->second].expires = now + kPermissionLifetime;
            return;
        }
    } else {
        for (auto& p : permissions) {
            if (p.peer == peer) {
                p.expires = now + kPermissionLifetime;
                return;
            }
        }
    }
    permissions.push_back(Permission{peer, now + kPermissionLifetime});
    ++peers_seen;
}

const Channel* Allocation::channel_by_number(std::uint16_t number, Time now) const {
    if (const PeerIndex* ix = index()) {
        auto it = ix->channel_number.find(number);
        if (it == ix->channel_number.end()) return nullptr;
        const Channel& c = channels[it->second];
        return c.expires > now ? &c : nullptr;
    }
    for (const auto& c : channels)
        if (c.number == number && c.expires > now) return &c;
    return nullptr;
}

const Channel* Allocation::channel_by_peer(const Endpoint& peer, Time now) const {
    if (const PeerIndex* ix = index()) {
        auto it = ix->channel_peer.find(peer);
        if (it == ix->channel_peer.end()) return nullptr;
        const Channel& c = channels[it->second];
        return c.expires > now ? &c : nullptr;
    }
    for (const auto& c : channels)
        if (c.peer == peer && c.expires > now) return &c;
    return nullptr;
}

void Allocation::expire(Time now) {
    const std::size_t before = permissions.size() + channels.size();
    std::erase_if(permissions, [&](const Permission& p) { return p.expires <= now; });
    // RFC 8656 §12: a channel's number and peer stay reserved for 5 minutes after it expires.
    std::erase_if(channels, [&](const Channel& c) { return c.expires + kChannelQuarantine <= now; });
    if (index_ != nullptr && permissions.size() + channels.size() != before) {
        // Positions moved: rebuild here, on the timer path, rather than on the next packet.
        index_.reset();
        (void)index();
    }
}

Time Allocation::next_deadline() const {
    Time t = expires;
    for (const auto& p : permissions) t = std::min(t, p.expires);
    for (const auto& c : channels) t = std::min(t, c.expires + kChannelQuarantine);
    return t;
}

}  // namespace turnbridge::turn
