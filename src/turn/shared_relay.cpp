// SPDX-License-Identifier: Apache-2.0
// Shared relay sockets (server.relay_sharing): many allocations on one relayed transport
// address, told apart by the peer's exact address and port. An allocation claims a peer address
// when it permits, binds or sends to it, and keeps the claim while a permission for the peer's IP
// (RFC 8656 §9) or a bound channel to that address (§12) lives.
// Deviation: RFC 8656 §9 permissions match the IP address only; on a shared socket a peer must
// also send from the port the client named, the filtering of an address-and-port-dependent NAT
// (RFC 4787 §5), since that is all that tells its allocation.
#include <algorithm>

#include "server_internal.hpp"
#include "turnbridge/base/log.hpp"

namespace turnbridge::turn {
namespace {

// Allocations on one shared relayed address cannot address each other: what the socket sends to
// itself comes back from that very address, which names none of them. Such a peer is refused.
bool is_own_address(const Allocation& a, const RelaySocket& relay, const Endpoint& peer) {
    if (peer == relay.local) return true;
    for (std::size_t i = 0; i < a.relay_count; ++i)
        if (a.relays[i].handle == relay.handle && a.advertised[i] == peer) return true;
    return false;
}

}  // namespace

Allocation* Server::allocation_on(RelayHandle relay, const Endpoint& peer) {
    if (auto it = by_relay_.find(relay); it != by_relay_.end()) return it->second;
    return shared_peers_.owner(relay, peer);
}

Server::SharedRefusal Server::shared_refusal(const Allocation& a, const RelaySocket& relay, const Endpoint& peer,
                                             const Allocation* holder) const {
    if (is_own_address(a, relay, peer)) return SharedRefusal::OwnAddress;
    if (holder != nullptr && holder != &a) return SharedRefusal::Held;
    if (holder == nullptr && a.shared_peers.size() >= kMaxSharedPeers) return SharedRefusal::TooMany;
    return SharedRefusal::None;
}

bool Server::refuse_shared_peer(const Request& req, const Allocation& a, const Endpoint& peer,
                                std::vector<Action>& out) {
    const RelaySocket* relay = a.relay_for(peer.ip.family);
    if (relay == nullptr || !relay->shared) return false;
    const Allocation* holder = shared_peers_.owner(relay->handle, peer);
    const char* reason = nullptr;
    switch (shared_refusal(a, *relay, peer, holder)) {
        case SharedRefusal::None: return false;
        case SharedRefusal::OwnAddress:
            reason = "Insufficient Capacity: peer address is this relayed address";
            log::info("peer [{}] refused to allocation id={:x}: it is the shared relayed address itself",
                      peer.to_string(), a.id);
            break;
        case SharedRefusal::Held:
            reason = "Insufficient Capacity: peer address in use on this relay";
            log::info("peer [{}] refused to allocation id={:x}: held on shared relay {} by allocation id={:x}",
                      peer.to_string(), a.id, relay->local.to_string(), holder->id);
            break;
        case SharedRefusal::TooMany:
            reason = "Insufficient Capacity: too many peer addresses";
            log::info("peer [{}] refused to allocation id={:x}: it holds {} peer addresses on shared relay {}",
                      peer.to_string(), a.id, a.shared_peers.size(), relay->local.to_string());
            break;
    }
    ++stats_.shared_peer_refusals;
    // RFC 8656 §10.2: a permission the server cannot install is refused with 508; here what is
    // lacking is the peer address on this relayed address. ChannelBind, which installs one, too.
    send_error(req, StunCode::InsufficientCapacity, reason, out);
    return true;
}

bool Server::claim_peer(Allocation& a, const Endpoint& peer) {
    const RelaySocket* relay = a.relay_for(peer.ip.family);
    if (relay == nullptr || !relay->shared) return true;
    const Allocation* holder = shared_peers_.owner(relay->handle, peer);
    if (holder == &a) return true;  // the usual case, every Send after the first: one lookup
    if (shared_refusal(a, *relay, peer, holder) != SharedRefusal::None) {
        ++stats_.shared_peer_refusals;
        return false;
    }
    shared_peers_.claim(relay->handle, peer, &a);
    a.shared_peers.push_back(peer);
    return true;
}

void Server::release_stale_peers(Allocation& a, Time now) {
    std::erase_if(a.shared_peers, [&](const Endpoint& peer) {
        if (a.has_permission(peer.ip, now) || a.channel_by_peer(peer, now) != nullptr) return false;
        if (const RelaySocket* relay = a.relay_for(peer.ip.family)) shared_peers_.release(relay->handle, peer, &a);
        return true;
    });
}

void Server::release_all_peers(Allocation& a) {
    for (const Endpoint& peer : a.shared_peers)
        if (const RelaySocket* relay = a.relay_for(peer.ip.family)) shared_peers_.release(relay->handle, peer, &a);
    a.shared_peers.clear();
}

}  // namespace turnbridge::turn
