// SPDX-License-Identifier: Apache-2.0
// CreatePermission (RFC 8656 §10).
#include "server_internal.hpp"

namespace turnbridge::turn {

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
    // RFC 8656 §10.2: all or nothing; only after every address passed are they installed.
    for (std::size_t i = 0; i < n; ++i) {
        a->install_permission(peers[i].ip, now.mono);
        claim_peer(*a, peers[i]);  // on a shared relay the exact address and port (shared_relay.cpp)
    }
    ResponseWriter w(*this, req, stun::Class::Success);
    w.finish(out);
}

}  // namespace turnbridge::turn
