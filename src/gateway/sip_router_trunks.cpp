// SPDX-License-Identifier: Apache-2.0
// SipRouter and a realm's trunk targets (issue 14): the order a call tries them in, failover to
// the next, and who may call in as the trunk.
#include <algorithm>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/gateway/trunk_targets.hpp"

namespace turnbridge::gateway {

std::vector<Endpoint> SipRouter::trunk_targets(const config::Realm& realm) const {
    const auto& t = realm.gateway.trunk;
    if (auto ip = IpAddress::parse(t.host)) return {Endpoint{*ip, t.port}};
    if (hosts_ == nullptr) return {};
    // A name with A and AAAA records (localhost: 127.0.0.1 and ::1): the family of our
    // sip_listen address, which UDP requests must leave from, unless it has none of that family.
    const auto ours = Endpoint::parse(local_.sent_by);
    std::vector<TrunkTarget> targets;
    for (const auto& target : hosts_->targets(t.host))
        if (ours && target.to.ip.family == ours->ip.family) targets.push_back(target);
    if (targets.empty()) targets = hosts_->targets(t.host);
    return order_targets(targets, random_);
}

std::optional<Endpoint> SipRouter::trunk_endpoint(const config::Realm& realm) const {
    auto targets = trunk_targets(realm);
    if (targets.empty()) return std::nullopt;
    return targets.front();
}

bool SipRouter::trunk_allowed(const config::Realm& realm, const IpAddress& ip) const {
    const auto& allow = realm.gateway.trunk_allow;
    if (!allow.empty()) return std::any_of(allow.begin(), allow.end(), [&](const Cidr& c) { return c.contains(ip); });
    const auto addresses = trunk_addresses(realm);
    return std::find(addresses.begin(), addresses.end(), ip) != addresses.end();
}

void SipRouter::arm_failover(sip::Time now, CallEntry& e, const config::Realm& realm, const Endpoint& first) {
    auto order = trunk_targets(realm);
    std::erase(order, first);
    if (order.empty()) return;   // one target: nothing to fail over to
    auto rest = std::make_shared<std::vector<Endpoint>>(std::move(order));
    // The CallEntry lives in a std::list (stable) for as long as its Call; the realm is looked
    // up again at failover time, as a reload may have replaced the config meanwhile.
    e.call->set_failover(now, [this, &e, rest, name = realm.name]() -> std::optional<sip::LegAddress> {
        const auto* realm = gateway_realm(name);
        while (realm != nullptr && !rest->empty()) {
            const Endpoint to = rest->front();
            rest->erase(rest->begin());
            auto leg = trunk_leg(*realm, to);
            if (!leg) continue;   // logged: no flow toward it; the next one then
            log::info("call: realm {}: trunk target failed; trying {}", name, to.to_string());
            e.trunk_flow = leg->leg.transport;
            return leg->leg;
        }
        return std::nullopt;
    });
}

}  // namespace turnbridge::gateway
