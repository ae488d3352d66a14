// SPDX-License-Identifier: Apache-2.0
// The data path: Send indications and ChannelData from the client (RFC 8656 §11.2, §12.6),
// datagrams from peers (§11.3, §12.7). No heap allocation: payload spans point into the
// caller's buffer, headers into the server's fixed buffers.
#include <cstring>

#include "server_internal.hpp"
#include "turnbridge/turn/channel_data.hpp"
#include "turnbridge/turn/lease_slot.hpp"

namespace turnbridge::turn {
namespace {

std::uint8_t stream_pad(Transport t, std::size_t len) {
    return t == Transport::Udp ? 0 : static_cast<std::uint8_t>((4 - len % 4) % 4);
}

}  // namespace

void Server::add_wire_overhead(const FiveTuple& ft, Direction d, std::size_t bytes) {
    if (Allocation* a = find_mut(ft)) a->counters.wire_bytes[static_cast<std::size_t>(d)] += bytes;
}

void Server::on_send_indication(const Clock& now, const FiveTuple& from, const stun::Message& m,
                                std::vector<Action>& out) {
    Allocation* a = find_mut(from);
    if (a == nullptr) return;  // RFC 8656 §11.2: indications are silently discarded on error
    const auto peer = m.get_xor_address(stun::attr::XorPeerAddress);
    const auto data = m.get(stun::attr::Data);
    if (!peer || !data) return;
    const RelaySocket* relay = a->relay_for(peer->ip.family);
    if (relay == nullptr) return;
    if (!a->has_permission(peer->ip, now.mono)) {
        ++a->counters.dropped_no_permission;
        return;
    }
    if (relay->shared && !claim_peer(*a, *peer)) return;  // refused on a shared socket (shared_relay.cpp)
    a->counters.add(Direction::ClientToRelay, data->size(), m.bytes().size());
    if (!a->to_peer_rate.allow(data->size(), now.mono)) {
        ++a->counters.dropped_rate;
        return;
    }
    if (a->lease && !a->lease->take(data->size())) return;  // [fleet] quota: outside the node's leases
    a->counters.add(Direction::RelayToPeer, data->size(), data->size());
    relay_to_peer(*a, *relay, *peer, *data, m.find(stun::attr::DontFragment) != nullptr, out);
}

void Server::on_channel_data(const Clock& now, const FiveTuple& from, stun::Bytes bytes, std::vector<Action>& out) {
    Allocation* a = find_mut(from);
    if (a == nullptr) return;
    const auto cd = parse_channel_data(bytes);
    if (!cd) return;  // RFC 8656 §12.4: a length beyond the datagram is discarded
    const Channel* ch = a->channel_by_number(cd->channel, now.mono);
    if (ch == nullptr) return;
    const RelaySocket* relay = a->relay_for(ch->peer.ip.family);
    if (relay == nullptr) return;
    a->counters.add(Direction::ClientToRelay, cd->data.size(),
                    kChannelDataHeader + cd->data.size() + stream_pad(from.transport, cd->data.size()));
    if (!a->to_peer_rate.allow(cd->data.size(), now.mono)) {
        ++a->counters.dropped_rate;
        return;
    }
    if (a->lease && !a->lease->take(cd->data.size())) return;  // [fleet] quota: outside the node's leases
    a->counters.add(Direction::RelayToPeer, cd->data.size(), cd->data.size());
    relay_to_peer(*a, *relay, ch->peer, cd->data, false, out);
}

void Server::relay_to_peer(Allocation& a, const RelaySocket& relay, const Endpoint& peer, stun::Bytes body,
                           bool dont_fragment, std::vector<Action>& out) {
    if (local_ != nullptr && local_->is_local_ip(peer.ip)) {
        if (a.gateway_peer && local_->is_local(peer)) {
            out.push_back(ToLocal{a.id, relay.handle, a.advertised[&relay == &a.relays[0] ? 0 : 1], peer, body});
            return;
        }
        // Permissions are per IP (RFC 8656 §9): one for the gateway's media address must not
        // open the server's other ports on it.
        if (!policy_.allowed(peer.ip)) {
            ++a.counters.dropped_no_permission;
            return;
        }
    }
    out.push_back(ToPeer{relay.handle, peer, body, dont_fragment});
}

void Server::on_peer_data(const Clock& now, RelayHandle relay, const Endpoint& peer, stun::Bytes bytes,
                          std::vector<Action>& out) {
    Allocation* owner = allocation_on(relay, peer);  // O(1): by socket, or on a shared one by peer
    if (owner == nullptr) {
        ++stats_.dropped_datagrams;
        return;
    }
    Allocation& a = *owner;
    // RFC 8656 §9: only peers with a permission (by IP address) reach the client.
    if (!a.has_permission(peer.ip, now.mono)) {
        ++a.counters.dropped_no_permission;
        return;
    }
    a.counters.add(Direction::PeerToRelay, bytes.size(), bytes.size());
    if (!a.to_client_rate.allow(bytes.size(), now.mono)) {
        ++a.counters.dropped_rate;
        return;
    }
    if (a.lease && !a.lease->take(bytes.size())) return;  // [fleet] quota: outside the node's leases
    const Transport transport = a.five_tuple.transport;
    if (const Channel* ch = a.channel_by_peer(peer, now.mono); ch != nullptr && bytes.size() <= 0xFFFF) {
        // RFC 8656 §12.7: ChannelData when a channel is bound to this peer.
        head_buf_[0] = static_cast<std::uint8_t>(ch->number >> 8);
        head_buf_[1] = static_cast<std::uint8_t>(ch->number);
        head_buf_[2] = static_cast<std::uint8_t>(bytes.size() >> 8);
        head_buf_[3] = static_cast<std::uint8_t>(bytes.size());
        const std::uint8_t pad = stream_pad(transport, bytes.size());
        a.counters.add(Direction::RelayToClient, bytes.size(), kChannelDataHeader + bytes.size() + pad);
        out.push_back(ToClient{a.five_tuple, stun::Bytes(head_buf_.data(), kChannelDataHeader), bytes, pad});
        return;
    }
    // RFC 8656 §11.3: otherwise a Data indication with XOR-PEER-ADDRESS and DATA. The header is
    // built here and the payload follows it untouched, so the DATA attribute is written by hand.
    if (bytes.size() > 0xFFFF - 64) return;
    stun::TransactionId tid{};
    const std::uint64_t seq = next_indication_++;
    std::memcpy(tid.data(), &seq, sizeof seq);
    tid[8] = static_cast<std::uint8_t>(shared_.worker);
    stun::MessageBuilder b(head_buf_, stun::method::Data, stun::Class::Indication, tid);
    b.add_xor_address(stun::attr::XorPeerAddress, peer);
    const std::size_t head = b.size() + 4;
    const std::uint8_t data_pad = static_cast<std::uint8_t>((4 - bytes.size() % 4) % 4);
    const std::size_t body_len = head - stun::kHeaderSize + bytes.size() + data_pad;
    head_buf_[2] = static_cast<std::uint8_t>(body_len >> 8);
    head_buf_[3] = static_cast<std::uint8_t>(body_len);
    head_buf_[head - 4] = static_cast<std::uint8_t>(stun::attr::Data >> 8);
    head_buf_[head - 3] = static_cast<std::uint8_t>(stun::attr::Data & 0xFF);
    head_buf_[head - 2] = static_cast<std::uint8_t>(bytes.size() >> 8);
    head_buf_[head - 1] = static_cast<std::uint8_t>(bytes.size());
    a.counters.add(Direction::RelayToClient, bytes.size(), head + bytes.size() + data_pad);
    out.push_back(ToClient{a.five_tuple, stun::Bytes(head_buf_.data(), head), bytes, data_pad});
}

}  // namespace turnbridge::turn
