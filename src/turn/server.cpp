// SPDX-License-Identifier: Apache-2.0
// Dispatch of client datagrams, Binding, timers and allocation teardown.
#include "turnbridge/turn/server.hpp"

#include <algorithm>

#include "server_internal.hpp"
#include "turnbridge/base/log.hpp"
#include "turnbridge/stun/integrity.hpp"
#include "turnbridge/turn/channel_data.hpp"

namespace turnbridge::turn {
namespace {

// Comprehension-required attributes we understand (RFC 8489 §7.3.1 asks for 420 otherwise).
bool known_required(std::uint16_t t) {
    using namespace stun::attr;
    switch (t) {
        case MappedAddress: case Username: case MessageIntegrity: case ErrorCode: case UnknownAttributes:
        case ChannelNumber: case Lifetime: case XorPeerAddress: case Data: case Realm: case Nonce:
        case XorRelayedAddress: case RequestedAddressFamily: case EvenPort: case RequestedTransport:
        case DontFragment: case MessageIntegritySha256: case PasswordAlgorithm: case Userhash:
        case XorMappedAddress: case ReservationToken: case Priority: case UseCandidate:
            return true;
        default:
            return false;
    }
}

}  // namespace

Server::Server(SharedState shared, RelayBinder& binder, AllocationObserver* observer)
    : shared_(std::move(shared)),
      policy_(*shared_.config),
      reflection_(ReflectionGuard::with_random_seed(shared_.config->unauthenticated_rate,
                                                    shared_.config->unauthenticated_burst)),
      binder_(binder),
      observer_(observer) {}

Server::~Server() { close_all(CloseReason::Shutdown); }

void Server::set_config(std::shared_ptr<const config::Config> cfg) {
    shared_.config = std::move(cfg);
    policy_ = PeerPolicy(*shared_.config);
    reflection_.set_limits(shared_.config->unauthenticated_rate, shared_.config->unauthenticated_burst);
    for (auto& [ft, a] : by_tuple_) {
        const auto* realm = shared_.config->find_realm(a->realm);
        const std::uint64_t rate = realm ? realm->max_bitrate : 0;
        a->to_peer_rate.change_rate(rate);
        a->to_client_rate.change_rate(rate);
    }
}

const Allocation* Server::find(const FiveTuple& ft) const {
    auto it = by_tuple_.find(ft);
    return it == by_tuple_.end() ? nullptr : it->second.get();
}

Allocation* Server::find_mut(const FiveTuple& ft) {
    auto it = by_tuple_.find(ft);
    return it == by_tuple_.end() ? nullptr : it->second.get();
}

void Server::on_client_data(const Clock& now, const FiveTuple& from, stun::Bytes bytes, std::vector<Action>& out) {
    // RFC 8656 §12: the first two bits tell ChannelData (0b01) from STUN (0b00).
    if (looks_like_channel_data(bytes)) {
        on_channel_data(now, from, bytes, out);
        return;
    }
    auto m = stun::Message::parse(bytes);
    // RFC 8489 §6.3: malformed messages and bad fingerprints are dropped without an answer.
    if (!m || !stun::check_fingerprint(*m)) {
        ++stats_.dropped_datagrams;
        return;
    }
    on_stun(now, from, *m, out);
}

void Server::on_stun(const Clock& now, const FiveTuple& from, const stun::Message& m, std::vector<Action>& out) {
    if (m.cls() == stun::Class::Indication) {
        if (m.method() == stun::method::Send) on_send_indication(now, from, m, out);
        return;  // RFC 8489 §6.3.2: other indications are ignored
    }
    if (m.cls() != stun::Class::Request) return;  // stray responses are dropped
    const auto& cfg = *shared_.config;
    const config::Realm* realm = cfg.realm_for_listener(from.server);
    if (realm == nullptr) return;
    Request req{m, from, *realm};
    const std::size_t first = out.size();
    on_request(now, req, out);
    if (!req.authenticated) limit_reflection(now, req, first, out);
}

void Server::on_request(const Clock& now, Request& req, std::vector<Action>& out) {
    if (req.msg.method() == stun::method::Binding) {
        on_binding(req, out);
        return;
    }
    const auto method = req.msg.method();
    if (method != stun::method::Allocate && method != stun::method::Refresh &&
        method != stun::method::CreatePermission && method != stun::method::ChannelBind) {
        send_error(req, StunCode::BadRequest, "Bad Request: unknown method", out, false);
        return;
    }
    if (!authenticate(now, req, out)) return;
    if (refuse_unknown_attributes(req, out, true)) return;
    switch (method) {
        case stun::method::Allocate: on_allocate(now, req, out); break;
        case stun::method::Refresh: on_refresh(now, req, out); break;
        case stun::method::CreatePermission: on_create_permission(now, req, out); break;
        case stun::method::ChannelBind: on_channel_bind(now, req, out); break;
        default: break;
    }
    reschedule(req.from);  // Allocate, Refresh, CreatePermission and ChannelBind move deadlines
}

void Server::reschedule(const FiveTuple& ft) {
    if (Allocation* a = find_mut(ft)) expiry_.schedule(*a, a->next_deadline());
}

void Server::limit_reflection(const Clock& now, const Request& req, std::size_t first, std::vector<Action>& out) {
    // RFC 8656 §21: only UDP sources can be spoofed; a stream peer has completed a handshake.
    if (req.from.transport != Transport::Udp) return;
    for (std::size_t i = first; i < out.size(); ++i) {
        const auto* tc = std::get_if<ToClient>(&out[i]);
        if (tc == nullptr) continue;
        const std::size_t size = tc->head.size() + tc->body.size() + tc->pad;
        if (!reflection_.allow(now.mono, req.from.client.ip, req.msg.bytes().size(), size)) {
            ++stats_.unauthenticated_dropped;
            out.erase(out.begin() + static_cast<std::ptrdiff_t>(i), out.end());
            return;
        }
    }
}

bool Server::refuse_unknown_attributes(const Request& req, std::vector<Action>& out, bool with_integrity) {
    std::array<std::uint16_t, stun::kMaxAttributes> unknown{};
    std::size_t n_unknown = 0;
    for (const auto& a : req.msg.attributes())
        if (stun::attr::comprehension_required(a.type) && !known_required(a.type)) unknown[n_unknown++] = a.type;
    if (n_unknown == 0) return false;
    ResponseWriter w(*this, req, stun::Class::Error);
    w.builder().add_error_code(StunCode::UnknownAttribute, "Unknown Attribute");
    w.builder().add_unknown_attributes({unknown.data(), n_unknown});
    w.finish(out, with_integrity);
    return true;
}

void Server::on_binding(const Request& req, std::vector<Action>& out) {
    if (refuse_unknown_attributes(req, out, false)) return;
    ResponseWriter w(*this, req, stun::Class::Success);
    w.builder().add_xor_address(stun::attr::XorMappedAddress, req.from.client);
    w.finish(out, false);
}

void Server::on_client_closed(const Clock&, const FiveTuple& ft) {
    if (auto* a = find_mut(ft)) destroy(*a, CloseReason::ClientGone);
}

void Server::on_timer(const Clock& now) {
    // Only allocations with something due are touched (a heap keyed by next_deadline), not
    // every allocation each tick. A deadline moved later by a refresh just pops early and is
    // requeued.
    while (Allocation* a = expiry_.pop_due(now.mono)) {
        if (a->expires <= now.mono) {
            destroy(*a, CloseReason::Expired);
            continue;
        }
        a->expire(now.mono);
        if (!a->shared_peers.empty()) release_stale_peers(*a, now.mono);
        expiry_.schedule(*a, a->next_deadline());
    }
}

void Server::close_all(CloseReason why) {
    while (!by_tuple_.empty()) destroy(*by_tuple_.begin()->second, why);
}

bool Server::close(AllocationId id, CloseReason why, std::vector<Action>& out) {
    for (auto& [ft, a] : by_tuple_) {
        if (a->id != id) continue;
        const FiveTuple tuple = ft;
        destroy(*a, why);
        if (tuple.transport != Transport::Udp) out.push_back(CloseClient{tuple});
        return true;
    }
    return false;
}

void Server::destroy(Allocation& a, CloseReason why) {
    expiry_.remove(a);
    if (observer_ != nullptr) observer_->on_closed(a, why);
    release_all_peers(a);
    std::string relays;
    for (std::size_t i = 0; i < a.relay_count; ++i) {
        if (i) relays += ",";
        relays += a.advertised[i].to_string();
        by_relay_.erase(a.relays[i].handle);
        binder_.release(a.relays[i].handle);
    }
    const auto c = a.counters;
    if (log::level() <= log::Level::Info) {
        const auto sent = c.payload_bytes[static_cast<int>(Direction::RelayToPeer)];
        const auto received = c.payload_bytes[static_cast<int>(Direction::RelayToClient)];
        const std::string id = fmt::format("{:x}", a.id), client = a.five_tuple.to_string();
        log::event(log::Level::Info, "allocation.deleted",
                   {a.realm, a.username, id, {}, client, relays, {}, to_string(why), sent + received},
                   fmt::format("allocation deleted id={} user={} realm={} client=[{}] relay={} reason={} "
                               "sent={}p/{}B received={}p/{}B",
                               id, a.username, a.realm, client, relays, to_string(why),
                               c.packets[static_cast<int>(Direction::RelayToPeer)], sent,
                               c.packets[static_cast<int>(Direction::RelayToClient)], received));
    }
    if (shared_.quota != nullptr) shared_.quota->release(a.realm, a.account.empty() ? a.username : a.account);
    if (a.lease) detach(*a.lease);
    by_tuple_.erase(a.five_tuple);  // frees `a`
}

}  // namespace turnbridge::turn
