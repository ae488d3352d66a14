// SPDX-License-Identifier: Apache-2.0
// Allocate (RFC 8656 §7.2).
#include <cstring>

#include "server_internal.hpp"
#include "turnbridge/base/log.hpp"

namespace turnbridge::turn {
namespace {

constexpr std::uint8_t kUdp = 17;  // RFC 8656 §18.7: REQUESTED-TRANSPORT protocol number

struct AllocateParams {
    Family family = Family::V4;
    bool additional_v6 = false;     // ADDITIONAL-ADDRESS-FAMILY (dual allocation, RFC 8656 §7.2)
    bool even_port = false;
    bool reserve_next = false;      // EVEN-PORT R bit
    std::optional<std::uint64_t> token;  // RESERVATION-TOKEN
    std::chrono::seconds lifetime{};
};

// Reads and cross-checks the Allocate attributes; on failure sets `code` and returns a reason.
const char* parse_params(const stun::Message& m, const config::Config& cfg, AllocateParams& p, StunCode& code) {
    code = StunCode::BadRequest;
    const auto transport = m.get(stun::attr::RequestedTransport);
    if (!transport || transport->size() != 4) return "Bad Request: REQUESTED-TRANSPORT required";
    if ((*transport)[0] != kUdp) {
        code = StunCode::UnsupportedTransport;
        return "Unsupported Transport Protocol";
    }
    const auto raf = m.get(stun::attr::RequestedAddressFamily);
    const auto aaf = m.get(stun::attr::AdditionalAddressFamily);
    const auto even = m.get(stun::attr::EvenPort);
    const auto token = m.get(stun::attr::ReservationToken);
    if (raf && aaf) return "Bad Request: REQUESTED- and ADDITIONAL-ADDRESS-FAMILY together";
    if (token && (even || raf || aaf)) return "Bad Request: RESERVATION-TOKEN with EVEN-PORT or an address family";
    if (raf) {
        if (raf->size() != 4) return "Bad Request: REQUESTED-ADDRESS-FAMILY";
        if ((*raf)[0] != 0x01 && (*raf)[0] != 0x02) {
            code = StunCode::AddressFamilyNotSupported;
            return "Address Family not Supported";
        }
        p.family = (*raf)[0] == 0x01 ? Family::V4 : Family::V6;
    }
    if (aaf) {
        // RFC 8656 §7.2: ADDITIONAL-ADDRESS-FAMILY may only ask for IPv6 (IPv4 is implied).
        if (aaf->size() != 4 || (*aaf)[0] != 0x02) return "Bad Request: ADDITIONAL-ADDRESS-FAMILY must be IPv6";
        p.additional_v6 = true;
    }
    if (even) {
        if (even->size() != 1) return "Bad Request: EVEN-PORT";
        p.even_port = true;
        p.reserve_next = ((*even)[0] & 0x80) != 0;
        if (p.reserve_next && p.additional_v6) return "Bad Request: EVEN-PORT reservation with a dual allocation";
    }
    if (token) {
        if (token->size() != 8) return "Bad Request: RESERVATION-TOKEN";
        std::uint64_t t = 0;
        for (auto b : *token) t = t << 8 | b;
        p.token = t;
    }
    p.lifetime = cfg.default_lifetime;
    if (auto lt = m.get_u32(stun::attr::Lifetime)) {
        // RFC 8656 §7.2: at most the server's maximum; less than the default gets the default.
        p.lifetime = std::clamp(std::chrono::seconds(*lt), cfg.default_lifetime, cfg.max_lifetime);
    }
    return nullptr;
}

Endpoint advertised(const config::Config& cfg, const RelaySocket& s) {
    Endpoint ep = s.local;
    if (cfg.external_ip && ep.ip.family == cfg.external_ip->family) ep.ip = *cfg.external_ip;
    return ep;
}

}  // namespace

void Server::on_allocate(const Clock& now, Request& req, std::vector<Action>& out) {
    const auto& cfg = *shared_.config;
    if (auto* existing = find_mut(req.from)) {
        // RFC 8656 §7.2: a retransmission gets the same answer; anything else 437.
        if (existing->allocate_tid == req.msg.transaction_id() && !existing->allocate_response.empty()) {
            out.push_back(ToClient{req.from, existing->allocate_response, {}, 0});
            return;
        }
        send_error(req, StunCode::AllocationMismatch, "Allocation Mismatch", out);
        return;
    }
    // Issue 15, draining: RFC 8489 §10 / RFC 8656 §7.2 allow 300 (Try Alternate) with an
    // ALTERNATE-SERVER (§14.15) for Allocate; authenticated, so the client can trust it. No
    // live node to name: 403, so the client tries its next server at once.
    if (shared_.drain != nullptr)
        if (auto to = shared_.drain->redirect()) {
            if (!*to) {
                send_error(req, StunCode::Forbidden, "Draining", out);
                return;
            }
            ResponseWriter w(*this, req, stun::Class::Error);
            w.builder().add_error_code(StunCode::TryAlternate, "Try Alternate");
            w.builder().add_address(stun::attr::AlternateServer, **to);
            w.finish(out);
            return;
        }
    AllocateParams p;
    StunCode code{};
    if (const char* why = parse_params(req.msg, cfg, p, code)) {
        send_error(req, code, why, out);
        return;
    }
    if (!p.token && !cfg.relay_ip(p.family)) {
        send_error(req, StunCode::AddressFamilyNotSupported, "Address Family not Supported", out);
        return;
    }
    const std::string quota_user = req.account.empty() ? req.username : req.account;
    if (over_byte_quota(req)) {
        send_error(req, StunCode::AllocationQuotaReached, "Allocation Quota Reached", out);
        return;
    }
    const auto* realm_cfg = cfg.find_realm(req.realm.name);
    const std::uint32_t user_limit = realm_cfg && realm_cfg->max_allocations_per_user
                                         ? realm_cfg->max_allocations_per_user
                                         : cfg.max_allocations_per_user;
    // RFC 8656 §7.2: 486 when the user's (or the server's) allocation quota is reached. The
    // counts are shared by all workers and touched only here and when an allocation ends.
    if (shared_.quota && !shared_.quota->acquire(req.realm.name, quota_user, cfg.max_allocations, user_limit)) {
        ++stats_.quota_refusals;
        const bool per_user = user_limit != 0 && shared_.quota->of(req.realm.name, quota_user) >= user_limit;
        if (per_user) ++stats_.user_allocation_refusals;
        const std::string_view why = per_user ? "max_allocations_per_user" : "max_allocations";
        const std::string client = req.from.to_string();
        log::event(log::Level::Info, "allocation.refused",
                   {req.realm.name, req.username, {}, {}, client, {}, {}, why, std::nullopt},
                   fmt::format("allocation refused ({}) user={} realm={} client=[{}]", why, req.username,
                               req.realm.name, client));
        send_error(req, StunCode::AllocationQuotaReached, "Allocation Quota Reached", out);
        return;
    }
    auto a = std::make_unique<Allocation>();
    std::uint64_t token = 0;
    auto fail = [&](const Error& e) {
        for (std::size_t i = 0; i < a->relay_count; ++i) binder_.release(a->relays[i].handle);
        if (shared_.quota) shared_.quota->release(req.realm.name, quota_user);
        send_error(req, e.code, e.what, out);
    };
    // server.relay_sharing: a shared socket unless the client asked for a port of its own.
    const bool shared = cfg.relay_sharing && !p.even_port && !p.token;
    auto first = p.token ? binder_.claim(*p.token)
                 : shared ? binder_.bind_shared(p.family)
                          : binder_.bind(p.family, p.even_port, p.reserve_next, token);
    if (!first) return fail(first.error());
    a->relays[a->relay_count++] = *first;
    bool v6_failed = false;
    if (p.additional_v6) {
        std::uint64_t unused = 0;
        auto second = !cfg.relay_ip(Family::V6) ? Result<RelaySocket>(Error{StunCode::AddressFamilyNotSupported, 0, "no IPv6 relay"})
                      : shared                  ? binder_.bind_shared(Family::V6)
                                                : binder_.bind(Family::V6, false, false, unused);
        if (second)
            a->relays[a->relay_count++] = *second;
        else
            v6_failed = true;  // RFC 8656 §7.2: succeed with IPv4 and say why in ADDRESS-ERROR-CODE
    }
    a->id = (static_cast<AllocationId>(shared_.worker) << 48) | next_id_++;
    a->five_tuple = req.from;
    a->username = req.username;
    a->account = req.account;
    a->realm = req.realm.name;
    a->key = req.key;
    a->integrity = req.integrity;
    a->created = now.mono;
    a->expires = now.mono + p.lifetime;
    a->allocate_tid = req.msg.transaction_id();
    if (realm_cfg != nullptr && realm_cfg->max_bitrate != 0) {
        a->to_peer_rate.set_rate(realm_cfg->max_bitrate, now.mono);
        a->to_client_rate.set_rate(realm_cfg->max_bitrate, now.mono);
    }
    for (std::size_t i = 0; i < a->relay_count; ++i) a->advertised[i] = advertised(cfg, a->relays[i]);

    ResponseWriter w(*this, req, stun::Class::Success);
    auto& b = w.builder();
    for (std::size_t i = 0; i < a->relay_count; ++i) b.add_xor_address(stun::attr::XorRelayedAddress, a->advertised[i]);
    b.add_u32(stun::attr::Lifetime, static_cast<std::uint32_t>(p.lifetime.count()));
    if (p.reserve_next) {
        std::uint8_t t[8];
        for (int i = 0; i < 8; ++i) t[i] = static_cast<std::uint8_t>(token >> (56 - 8 * i));
        b.add(stun::attr::ReservationToken, t);
    }
    if (v6_failed) {
        static constexpr char kReason[] = "Address Family not Supported";
        std::uint8_t v[4 + sizeof kReason - 1] = {0x02, 0x00, 4, 40};
        std::memcpy(v + 4, kReason, sizeof kReason - 1);
        b.add(stun::attr::AddressErrorCode, v);
    }
    b.add_xor_address(stun::attr::XorMappedAddress, req.from.client);
    w.finish(out);
    const auto& sent = std::get<ToClient>(out.back()).head;
    a->allocate_response.assign(sent.begin(), sent.end());

    std::string relays;
    for (std::size_t i = 0; i < a->relay_count; ++i) {
        if (i) relays += ",";
        relays += a->advertised[i].to_string();
        if (!a->relays[i].shared) by_relay_[a->relays[i].handle] = a.get();  // shared: by peer (shared_relay.cpp)
    }
    if (log::level() <= log::Level::Info) {
        const std::string id = fmt::format("{:x}", a->id), client = a->five_tuple.to_string();
        log::event(log::Level::Info, "allocation.created",
                   {a->realm, a->username, id, {}, client, relays, {}, {}, std::nullopt},
                   fmt::format("allocation created id={} user={} realm={} client=[{}] relay={} lifetime={}s", id,
                               a->username, a->realm, client, relays, p.lifetime.count()));
    }
    // [fleet] (issue 15): from now on this allocation relays only within the user's leases.
    if (shared_.leases != nullptr && req.realm.quota_bytes != 0) a->lease = shared_.leases->attach(req.realm, req.account);
    if (observer_ != nullptr) observer_->on_created(*a);
    by_tuple_.emplace(req.from, std::move(a));
}

}  // namespace turnbridge::turn
