// SPDX-License-Identifier: Apache-2.0
// ChannelBind (RFC 8656 §12.2).
#include "server_internal.hpp"
#include "turnbridge/turn/channel_data.hpp"

namespace turnbridge::turn {

void Server::on_channel_bind(const Clock& now, Request& req, std::vector<Action>& out) {
    Allocation* a = owned_allocation(req, out);
    if (a == nullptr) return;
    const auto number_attr = req.msg.get(stun::attr::ChannelNumber);
    const auto peer = req.msg.get_xor_address(stun::attr::XorPeerAddress);
    if (!number_attr || number_attr->size() != 4 || !peer) {
        send_error(req, StunCode::BadRequest, "Bad Request: CHANNEL-NUMBER and XOR-PEER-ADDRESS required", out);
        return;
    }
    const auto number = static_cast<std::uint16_t>((*number_attr)[0] << 8 | (*number_attr)[1]);
    if (number < kMinChannel || number > kMaxChannel) {
        send_error(req, StunCode::BadRequest, "Bad Request: channel number out of range", out);
        return;
    }
    if (refuse_peer(req, *a, *peer, out)) return;
    if (refuse_shared_peer(req, *a, *peer, out)) return;
    // RFC 8656 §12.2: a number bound (or quarantined) to another peer, or a peer bound to
    // another number, is a 400. Expired bindings still count during their 5-minute quarantine.
    Channel* existing = nullptr;
    for (auto& c : a->channels) {
        if (c.number == number && !(c.peer == *peer)) {
            send_error(req, StunCode::BadRequest, "Bad Request: channel bound to another peer", out);
            return;
        }
        if (c.peer == *peer && c.number != number) {
            send_error(req, StunCode::BadRequest, "Bad Request: peer bound to another channel", out);
            return;
        }
        if (c.number == number) existing = &c;
    }
    // RFC 8656 §12.2: a request the server cannot fulfil for lack of capacity gets 508. Channels
    // in quarantine keep their number, so they count.
    const std::uint32_t channel_cap = shared_.config->max_channels_per_allocation;
    if (existing == nullptr && channel_cap != 0 && a->channels.size() >= channel_cap) {
        ++stats_.channel_cap_refusals;
        send_error(req, StunCode::InsufficientCapacity, "Insufficient Capacity: too many channels", out);
        return;
    }
    if (over_permission_cap(*a, std::span<const Endpoint>(&*peer, 1))) {
        ++stats_.permission_cap_refusals;
        send_error(req, StunCode::InsufficientCapacity, "Insufficient Capacity: too many permissions", out);
        return;
    }
    if (existing != nullptr)
        existing->expires = now.mono + kChannelLifetime;
    else
        a->channels.push_back(Channel{number, *peer, now.mono + kChannelLifetime});
    a->install_permission(peer->ip, now.mono);  // RFC 8656 §12.2: also installs/refreshes it
    claim_peer(*a, *peer);
    ResponseWriter w(*this, req, stun::Class::Success);
    w.finish(out);
}

}  // namespace turnbridge::turn
