// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/udp_flows.hpp"

namespace turnbridge::sip {

std::optional<UdpFlows::Opened> UdpFlows::open(Time now, const Endpoint& remote, std::uint32_t socket, TransportId new_id,
                                               const Busy& busy) {
    if (auto it = by_remote_.find(remote); it != by_remote_.end()) {
        it->second->last_used = now;
        lru_.splice(lru_.begin(), lru_, it->second);
        return Opened{it->second->id, false};
    }
    if (lru_.size() >= capacity_) {
        // Make room from the old end; a busy flow met on the way counts as used now.
        bool made_room = false;
        for (std::size_t looked = 0; looked < kEvictScan && !lru_.empty(); ++looked) {
            auto oldest = std::prev(lru_.end());
            if (busy && busy(*oldest)) {
                lru_.splice(lru_.begin(), lru_, oldest);
                continue;
            }
            erase(oldest);
            ++evicted_;
            made_room = true;
            break;
        }
        if (!made_room) {
            ++refused_;
            return std::nullopt;
        }
    }
    lru_.push_front(Flow{new_id, remote, socket, now});
    by_remote_.emplace(remote, lru_.begin());
    by_id_.emplace(new_id, lru_.begin());
    return Opened{new_id, true};
}

const UdpFlows::Flow* UdpFlows::find(TransportId id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &*it->second;
}

std::optional<TransportId> UdpFlows::find(const Endpoint& remote) const {
    auto it = by_remote_.find(remote);
    if (it == by_remote_.end()) return std::nullopt;
    return it->second->id;
}

void UdpFlows::close(TransportId id) {
    if (auto it = by_id_.find(id); it != by_id_.end()) erase(it->second);
}

std::size_t UdpFlows::expire(Time now, Duration idle, const Busy& busy) {
    std::size_t n = 0;
    // Oldest first; stops at the first flow used within `idle` (all later ones are newer).
    for (auto it = lru_.end(); it != lru_.begin();) {
        --it;
        if (now - it->last_used < idle) break;
        if (busy && busy(*it)) continue;
        auto victim = it++;
        erase(victim);
        ++n;
    }
    return n;
}

void UdpFlows::erase(List::iterator it) {
    by_remote_.erase(it->remote);
    by_id_.erase(it->id);
    lru_.erase(it);
}

}  // namespace turnbridge::sip
