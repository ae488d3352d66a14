// SPDX-License-Identifier: Apache-2.0
// SipRouter's bounds toward outsiders (issue 11): who is a trunk, the per-source request rate,
// stateless answers to UDP strangers, what a flow is used by, and live calls per user and realm.
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/gateway/trunk_choice.hpp"

#include <algorithm>

namespace turnbridge::gateway {

void SipRouter::apply_limits() {
    rate_.set_limits(cfg_->sip_requests_per_second, cfg_->sip_requests_burst);
    trunk_rate_.set_limits(cfg_->sip_requests_per_second * kTrunkRateFactor, cfg_->sip_requests_burst * kTrunkRateFactor);
    layer_.set_max_server(cfg_->sip_transactions);
    shared_->with_registrar([&](sip::Registrar& reg) { reg.set_limits(cfg_->sip_registrations_per_user, cfg_->sip_registrations); });
    shared_->set_placements(cfg_->sip_transactions);
}

bool SipRouter::is_trunk(const IpAddress& ip) const { return fleet_node(ip) || listed_trunk(ip); }

bool SipRouter::listed_trunk(const IpAddress& ip) const {
    for (const auto& [name, base] : cfg_->realms) {
        if (!base.gateway.enabled) continue;
        for (const config::Realm& realm : trunks_of(base)) {   // every trunk of the realm (issue 14)
            // May call in (trunk_allow), or is a target we send to (its answers and in-dialog requests).
            if (trunk_listed(realm, ip)) return true;
            const auto addresses = trunk_addresses(realm);
            if (std::find(addresses.begin(), addresses.end(), ip) != addresses.end()) return true;
        }
    }
    return false;
}

bool SipRouter::uses_flow(sip::TransportId id) const {
    if (layer_.uses(id)) return true;
    for (const auto& r : registrations_)
        if (r.flow == id) return true;
    for (const auto& e : calls_)
        if (e.trunk_flow == id || (e.call && e.call->trunk_transport() == id)) return true;
    for (const auto& [key, a] : agent_calls_)
        if (a.flow == id) return true;
    for (const auto& [key, f] : forks_) {   // issue 15: a proxied INVITE's flows
        if (f.upstream == id) return true;
        for (const auto& b : f.branches)
            if (b.flow == id) return true;
    }
    return false;
}

sip::LimitCounts SipRouter::limits() const {
    auto c = counts_;
    c[static_cast<std::size_t>(sip::Limit::Transactions)] += layer_.refused();
    for (const auto& e : calls_) {
        c[static_cast<std::size_t>(sip::Limit::NotifyDropped)] += e.call->notifies_dropped();
        c[static_cast<std::size_t>(sip::Limit::ReliableDropped)] += e.call->reliable_dropped();
    }
    // The registrar is shared: worker 0 reports its refusals (/metrics sums over workers).
    if (worker_ == 0)
        c[static_cast<std::size_t>(sip::Limit::Registrations)] += shared_->with_registrar([](sip::Registrar& reg) { return reg.refused(); });
    return c;
}

bool SipRouter::admit(sip::Time now, const IpAddress& source) {
    if (rate_.admit(now, source)) return true;
    count(sip::Limit::RequestRate);
    return false;
}

void SipRouter::answer_stranger(const SipFlow& flow, const sip::Message& m, std::size_t request_size,
                                std::vector<sip::Action>& out) {
    const auto method = m.method();
    if (method == "ACK") return;   // RFC 3261 §17.1.1.3: never answered
    if (cfg_->sip_hide_from_strangers || m.via_count() == 0) {
        count(sip::Limit::StrangerSilent);
        return;
    }
    int status = 405;
    std::string reason;
    if (auto err = m.validate()) status = sip::code(err->code), reason = err->what;
    else if (method == "OPTIONS") status = 200;
    else if (method == "INVITE") status = 403;   // only a configured trunk may call in
    else if (method == "REGISTER") status = 403, reason = "Register over WebSocket";
    else if (!m.to_tag().empty() || method == "BYE" || method == "CANCEL") status = 481;   // no dialog with it
    auto r = sip::Message::response(m, status, reason, sip::new_tag(random_));
    if (status == 405 || status == 200) r.add_header("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER");
    auto bytes = r.serialize();
    // Bytes out per byte in <= 1 toward a source that may be forged, and only well-formed answers.
    auto check = sip::Message::parse(bytes);
    if (bytes.empty() || bytes.size() > request_size || !check || check->validate()) {
        count(sip::Limit::StrangerSilent);
        return;
    }
    out.push_back(sip::Send{flow.id, std::move(bytes)});   // stateless: no transaction, no retransmission
}

bool SipRouter::over_rate(sip::Time now, const SipFlow& flow, const sip::Message& m, std::vector<sip::Action>& out) {
    // Out-of-dialog requests only: a call's BYE, ACK and re-INVITEs always pass.
    if (!m.is_request() || !m.to_tag().empty() || m.method() == "ACK") return false;
    auto& bucket = !flow.websocket && is_trunk(flow.peer) ? trunk_rate_ : rate_;
    if (bucket.admit(now, flow.peer)) return false;
    count(sip::Limit::RequestRate);
    // Over a connection the source is real: tell it to slow down (RFC 3261 §21.5.4); over UDP, silence.
    if (flow.reliable && m.via_count() > 0) {
        auto r = sip::Message::response(m, 503, "Too Many Requests", sip::new_tag(random_));
        r.add_header("Retry-After", "1");
        out.push_back(sip::Send{flow.id, r.serialize()});
    }
    return true;
}

std::pair<std::uint32_t, std::uint32_t> SipRouter::live_calls(const config::Realm& realm, std::string_view user) const {
    // Process-wide (GatewayShared): the calls of every worker.
    return shared_->live(realm.name, std::string(user));
}

bool SipRouter::user_at_limit(const config::Realm& realm, std::string_view user) const {
    const auto limit = realm.gateway.max_calls_per_user;
    return limit != 0 && live_calls(realm, user).second >= limit;
}

bool SipRouter::realm_at_limit(const config::Realm& realm) const {
    return live_calls(realm, {}).first >= cfg_->realm_max_calls(realm);
}

}  // namespace turnbridge::gateway
