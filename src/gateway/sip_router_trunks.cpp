// SPDX-License-Identifier: Apache-2.0
// SipRouter and a trunk's targets (issue 14): the order a call tries them in, failover to the
// next, OPTIONS health per trunk, and who may call in as the trunk. `realm` here is one trunk of
// a realm (trunk_choice.hpp).
#include <algorithm>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/gateway/trunk_choice.hpp"
#include "turnbridge/gateway/trunk_identity.hpp"
#include "turnbridge/gateway/trunk_targets.hpp"

namespace turnbridge::gateway {

std::vector<TrunkTarget> SipRouter::usable_targets(const config::Realm& realm) const {
    auto targets = uri_targets(realm);
    // gateway.trunk_targets after the URI's own: the last SRV priority, weight 0 each, which
    // order_targets keeps in list order.
    for (const auto& to : realm.gateway.trunk_targets) targets.push_back(TrunkTarget{0xffff, 0, to});
    return targets;
}

std::vector<TrunkTarget> SipRouter::uri_targets(const config::Realm& realm) const {
    const auto& t = realm.gateway.trunk;
    if (auto ip = IpAddress::parse(t.host)) return {TrunkTarget{0, 0, Endpoint{*ip, t.port}}};
    if (hosts_ == nullptr) return {};
    // A name with A and AAAA records (localhost: 127.0.0.1 and ::1): the family of our
    // sip_listen address, which UDP requests must leave from, unless it has none of that family.
    const auto ours = Endpoint::parse(local_.sent_by);
    std::vector<TrunkTarget> targets;
    for (const auto& target : hosts_->targets(t.host))
        if (ours && target.to.ip.family == ours->ip.family) targets.push_back(target);
    if (targets.empty()) targets = hosts_->targets(t.host);
    return targets;
}

std::vector<Endpoint> SipRouter::trunk_targets(const config::Realm& realm) const {
    const auto targets = usable_targets(realm);
    if (realm.gateway.options_interval == 0) return order_targets(targets, random_);
    // Targets that OPTIONS found down are skipped (all of them down: all tried, trunk_targets.hpp).
    return shared_->with_health([&](TrunkHealth& health) {
        return order_targets(targets, random_,
                             [&](const Endpoint& to) { return health.down(realm.name, realm.gateway.trunk_name, to); });
    });
}

std::optional<Endpoint> SipRouter::trunk_endpoint(const config::Realm& realm) const {
    auto targets = trunk_targets(realm);
    if (targets.empty()) return std::nullopt;
    return targets.front();
}

bool SipRouter::trunk_allowed(const config::Realm& realm, const IpAddress& ip) const {
    return fleet_node(ip) || trunk_listed(realm, ip);   // issue 15: a node (maybe this one) proxying its trunk's INVITE
}

bool SipRouter::trunk_listed(const config::Realm& realm, const IpAddress& ip) const {
    const auto& allow = realm.gateway.trunk_allow;
    if (!allow.empty()) return std::any_of(allow.begin(), allow.end(), [&](const Cidr& c) { return c.contains(ip); });
    const auto addresses = trunk_addresses(realm);
    return std::find(addresses.begin(), addresses.end(), ip) != addresses.end();
}

void SipRouter::arm_failover(sip::Time now, CallEntry& e, const config::Realm& realm, const Endpoint& first) {
    if (auto next = next_targets(e, realm, first)) e.call->set_failover(now, std::move(next));
}

void SipRouter::arm_trunk_router(CallEntry& e, const std::string& realm_name, const std::string& did) {
    // The realm is looked up when the browser transfers, as a reload may have replaced it.
    e.call->set_trunk_router([this, &e, realm_name, did](std::string_view number) -> std::optional<sip::Call::TrunkRoute> {
        const auto base = cfg_->realms.find(realm_name);
        if (base == cfg_->realms.end() || !base->second.gateway.enabled) return std::nullopt;
        const config::Realm& chosen = choose_trunk(base->second, number);   // trunk_choice.hpp
        auto trunk = trunk_leg(chosen);   // logged when it cannot be reached
        if (!trunk) return std::nullopt;
        const auto& gw = chosen.gateway;
        // The fallback calls as the DID the browser answered, or the trunk's caller_id unless
        // caller_ids lists the DID (as an outbound call keeps its browser user's number).
        sip::Call::TrunkRoute route{trunk->leg, with_identity(gw, did, trunk_account(gw, *trunk)),
                                    next_targets(e, chosen, trunk->to)};
        log::info("call {}: transfer fallback to {} via trunk {} ({}) at {}", e.call_id, number, gw.trunk_name,
                  gw.trunk.uri, trunk->to.to_string());
        return route;
    });
}

sip::Call::NextTarget SipRouter::next_targets(CallEntry& e, const config::Realm& realm, const Endpoint& first) {
    auto order = trunk_targets(realm);
    std::erase(order, first);
    if (order.empty()) return {};   // one target: nothing to fail over to
    auto rest = std::make_shared<std::vector<Endpoint>>(std::move(order));
    // The CallEntry lives in a std::list (stable) for as long as its Call; the trunk is looked
    // up again at failover time, as a reload may have replaced the config meanwhile.
    return [this, &e, rest, name = realm.name, index = realm.gateway.trunk_index]() -> std::optional<sip::LegAddress> {
        const auto* realm = gateway_trunk(name, index);
        while (realm != nullptr && !rest->empty()) {
            const Endpoint to = rest->front();
            rest->erase(rest->begin());
            auto leg = trunk_leg(*realm, to);
            if (!leg) continue;   // logged: no flow toward it; the next one then
            log::info("call: realm {}: trunk target failed; trying {}", name, to.to_string());
            // An inbound call's fallback: the trunk leg moves only if the target answers.
            if (e.summary.outbound) e.trunk_flow = leg->leg.transport;
            return leg->leg;
        }
        return std::nullopt;
    };
}

void SipRouter::probe_trunks(sip::Time now, std::vector<sip::Action>& out) {
    // Trunks gone by a reload (their realm, or their name in it): forgotten.
    for (auto it = next_probe_.begin(); it != next_probe_.end();) {
        const auto realm = cfg_->realms.find(it->first.first);
        const auto trunks = realm == cfg_->realms.end() ? std::span<const config::Realm>() : trunks_of(realm->second);
        if (std::any_of(trunks.begin(), trunks.end(),
                        [&](const config::Realm& t) { return t.gateway.trunk_name == it->first.second; })) {
            ++it;
            continue;
        }
        shared_->with_health([&](TrunkHealth& h) { h.set_targets(it->first.first, it->first.second, {}); });
        it = next_probe_.erase(it);
    }
    std::vector<sip::Action> in;
    for (const auto& [name, realm] : cfg_->realms)
        for (const config::Realm& trunk : trunks_of(realm)) probe_trunk(now, trunk, in);
    for (auto& a : in)
        if (auto* s = std::get_if<sip::Send>(&a)) out.push_back(std::move(*s));
}

void SipRouter::probe_trunk(sip::Time now, const config::Realm& realm, std::vector<sip::Action>& in) {
    const std::string& name = realm.name;
    const std::string& trunk = realm.gateway.trunk_name;
    const auto interval = std::chrono::seconds(realm.gateway.options_interval);
    bool probing = realm.gateway.enabled && interval.count() > 0 && trunk_state(realm) == TrunkHosts::State::Ready;
    std::vector<Endpoint> targets;
    if (probing)
        for (const auto& t : usable_targets(realm)) targets.push_back(t.to);
    // One target and no options_interval of its own: nothing to fail over to, left alone.
    if (targets.size() < 2 && !realm.gateway.options_interval_set) targets.clear();
    probing = probing && !targets.empty();
    shared_->with_health([&](TrunkHealth& h) { h.set_targets(name, trunk, targets); });
    const TrunkKey key{name, trunk};
    if (!probing) {
        next_probe_.erase(key);
        return;
    }
    auto [due, fresh] = next_probe_.try_emplace(key, now);
    if (!fresh && due->second > now) return;
    due->second = now + interval;
    for (const auto& to : targets) {
        // The last probe of this target still unanswered: a miss; its transaction is dropped
        // (one probe in flight per target bounds probes_).
        for (auto it = probes_.begin(); it != probes_.end();) {
            if (it->second.realm == name && it->second.trunk == trunk && it->second.to == to) {
                layer_.abandon(it->first);
                it = probes_.erase(it);
            } else {
                ++it;
            }
        }
        if (shared_->with_health([&](TrunkHealth& h) { return h.probe_sent(now, name, trunk, to); }))
            log::warn("realm {}: trunk {} target {} is down ({} OPTIONS unanswered); calls skip it", name, trunk,
                      to.to_string(), TrunkHealth::kMissesDown);
        auto leg = trunk_leg(realm, to);
        if (!leg) continue;   // logged; counts as a miss at the next round
        const std::string uri = leg->scheme + ":" + to.to_string() + leg->uri_params;
        auto request = sip::Message::request("OPTIONS", uri);
        if (!request) continue;
        auto& m = *request;
        m.push_via(leg->leg.local.transport, leg->leg.local.sent_by, sip::new_branch(random_));
        m.set_from("<sip:turnbridge@" + leg->leg.local.sent_by + ">;tag=" + sip::new_tag(random_));
        m.set_to("<" + uri + ">");
        m.set_call_id(leg->leg.local.call_id_prefix + sip::new_call_id(random_, "turnbridge"));
        m.set_cseq(1, "OPTIONS");
        m.set_max_forwards(70);
        const auto tx = layer_.send_request(now, leg->leg.transport, leg->leg.reliable, std::move(m), in);
        probes_[tx] = Probe{name, trunk, to};
    }
}

bool SipRouter::on_probe_response(sip::Time now, const sip::ResponseIn& r) {
    auto it = probes_.find(r.tx);
    if (it == probes_.end()) return false;
    if (r.response.status() < 200) return true;
    // Any final answer, even 404 or 405, says the target is alive (Kamailio's dispatcher default).
    const Probe p = it->second;
    probes_.erase(it);
    if (shared_->with_health(
            [&](TrunkHealth& h) { return h.on_response(now, p.realm, p.trunk, p.to, r.response.status()); }))
        log::info("realm {}: trunk {} target {} is up again (OPTIONS answered {})", p.realm, p.trunk, p.to.to_string(),
                  r.response.status());
    return true;
}

}  // namespace turnbridge::gateway
