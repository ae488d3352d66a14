// SPDX-License-Identifier: Apache-2.0
#pragma once
// server.relay_sharing: many allocations relay through one socket, so a datagram arriving on it
// belongs to the allocation that claimed its source, the exact peer address and port. One
// allocation per peer address per shared socket; a second one asking for it is a conflict.
#include <cstddef>
#include <unordered_map>

#include "turnbridge/base/address.hpp"
#include "turnbridge/turn/relay_binder.hpp"

namespace turnbridge::turn {

struct Allocation;

// Peer addresses one allocation may claim on a shared socket. ICE needs a handful; the cap keeps
// one client from taking a whole IP's ports (and their memory) away from the others.
constexpr std::size_t kMaxSharedPeers = 256;

struct SharedPeer {
    RelayHandle relay = 0;
    Endpoint peer;
    friend bool operator==(const SharedPeer&, const SharedPeer&) = default;
};

struct SharedPeerHash {
    std::size_t operator()(const SharedPeer& p) const noexcept {
        return hash_value(p.peer) * 31 + p.relay;
    }
};

class SharedPeerTable {
public:
    enum class Claim { New, Held, Conflict };  // New: now ours; Held: ours already; Conflict: another's

    Claim claim(RelayHandle relay, const Endpoint& peer, Allocation* owner) {
        auto [it, inserted] = owners_.try_emplace(SharedPeer{relay, peer}, owner);
        if (inserted) return Claim::New;
        return it->second == owner ? Claim::Held : Claim::Conflict;
    }
    // Who claimed `peer` on `relay`, or nullptr. O(1), no allocation: the per-datagram lookup.
    Allocation* owner(RelayHandle relay, const Endpoint& peer) const {
        auto it = owners_.find(SharedPeer{relay, peer});
        return it == owners_.end() ? nullptr : it->second;
    }
    // Drops the claim if `owner` holds it.
    void release(RelayHandle relay, const Endpoint& peer, const Allocation* owner) {
        auto it = owners_.find(SharedPeer{relay, peer});
        if (it != owners_.end() && it->second == owner) owners_.erase(it);
    }
    std::size_t size() const { return owners_.size(); }

private:
    std::unordered_map<SharedPeer, Allocation*, SharedPeerHash> owners_;
};

}  // namespace turnbridge::turn
