// SPDX-License-Identifier: Apache-2.0
// CreatePermission (RFC 8656 §10).
#include "server_internal.hpp"

namespace turnbridge::turn {

bool Server::over_permission_cap(const Allocation& a, std::span<const Endpoint> peers) const {
    const std::uint32_t cap = shared_.config->max_permissions_per_allocation;
    if (cap == 0) return false;
    // Only addresses without a permission entry add one (an expired entry is refreshed in place).
    std::size_t added = 0;
    for (std::size_t i = 0; i < peers.size(); ++i) {
        if (a.has_permission(peers[i].ip, Time::min())) continue;
        bool repeated = false;
        for (std::size_t j = 0; j < i && !repeated; ++j) repeated = peers[j].ip == peers[i].ip;
        if (!repeated) ++added;
    }
    return added != 0 && a.permissions.size() + added > cap;
}

void Server::on_create_permission(const Clock& now, Request& req, std::vector<Action>& out) {
    Allocation* a = owned_allocation(req, out);
    if (a == nullptr) return;
    std::array<Endpoint, stun::kMaxAttributes> peers{};
    std::size_t n = 0;
    for (const auto& at : req.msg.attributes()) {
        if (at.type != stun::attr::XorPeerAddress) continue;
        auto peer = req.msg.get_xor_address(at);
        if (!peer) {
            send_error(req, StunCode::BadRequest, "Bad Request: XOR-PEER-ADDRESS", out);
            return;
        }
        if (refuse_peer(req, *a, *peer, out)) return;
        if (refuse_shared_peer(req, *a, *peer, out)) return;
        peers[n++] = *peer;
    }
    if (n == 0) {
        send_error(req, StunCode::BadRequest, "Bad Request: XOR-PEER-ADDRESS required", out);
        return;
    }
    if (over_permission_cap(*a, {peers.data(), n})) {
        // RFC 8656 §10.2: a request the server cannot fulfil for lack of capacity gets 508.
        ++stats_.permission_cap_refusals;
        send_error(req, StunCode::InsufficientCapacity, "Insufficient Capacity: too many permissions", out);
        return;
    }
    // RFC 8656 §10.2: all or nothing; only after every address passed are they installed.
    for (std::size_t i = 0; i < n; ++i) {
        a->install_permission(peers[i].ip, now.mono);
        claim_peer(*a, peers[i]);  // on a shared relay the exact address and port (shared_relay.cpp)
    }
    ResponseWriter w(*this, req, stun::Class::Success);
    w.finish(out);
}

}  // namespace turnbridge::turn
