// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/trunk_hosts.hpp"

#include <algorithm>

namespace turnbridge::gateway {
namespace {

const std::vector<IpAddress> kNone;
const std::vector<TrunkTarget> kNoTargets;
const std::string kNoError;

}  // namespace

void TrunkHosts::set_names(const std::vector<std::string>& names) {
    std::vector<TrunkName> plain;
    for (const auto& n : names) plain.push_back(TrunkName{n, {}, 5060});
    set_lookups(plain);
}

void TrunkHosts::set_lookups(const std::vector<TrunkName>& names) {
    std::map<std::string, Entry, std::less<>> kept;
    for (const auto& n : names) {
        if (n.host.empty() || IpAddress::parse(n.host) || kept.contains(n.host)) continue;
        auto it = names_.find(n.host);
        if (it != names_.end() && it->second.lookup.service == n.service && it->second.lookup.port == n.port) {
            kept.insert(names_.extract(it));
        } else {
            kept.try_emplace(n.host).first->second.lookup = n;   // new, or looked up differently now
        }
    }
    names_ = std::move(kept);
}

const TrunkName* TrunkHosts::lookup(const std::string& name) const {
    auto it = names_.find(name);
    return it == names_.end() ? nullptr : &it->second.lookup;
}

const std::vector<TrunkTarget>& TrunkHosts::targets(const std::string& name) const {
    auto it = names_.find(name);
    return it == names_.end() ? kNoTargets : it->second.targets;
}

TrunkHosts::State TrunkHosts::state(const std::string& name) const {
    auto it = names_.find(name);
    if (it == names_.end()) return State::Unknown;
    if (!it->second.addresses.empty()) return State::Ready;
    return it->second.failed ? State::Failed : State::Resolving;
}

const std::vector<IpAddress>& TrunkHosts::addresses(const std::string& name) const {
    auto it = names_.find(name);
    return it == names_.end() ? kNone : it->second.addresses;
}

const std::string& TrunkHosts::error(const std::string& name) const {
    auto it = names_.find(name);
    return it == names_.end() ? kNoError : it->second.error;
}

void TrunkHosts::due(Time now, std::vector<std::string>& out) {
    for (auto& [name, e] : names_) {
        if (!e.next_lookup || *e.next_lookup > now) continue;
        e.next_lookup.reset();
        out.push_back(name);
    }
}

void TrunkHosts::on_resolved(Time now, const std::string& name, std::vector<IpAddress> found, std::string error) {
    auto it = names_.find(name);
    if (it == names_.end()) return;   // forgotten by a reload meanwhile
    std::vector<TrunkTarget> targets;
    for (const auto& ip : found) targets.push_back(TrunkTarget{0, 0, Endpoint{ip, it->second.lookup.port}});
    on_targets(now, name, std::move(targets), std::move(error));
}

void TrunkHosts::on_targets(Time now, const std::string& name, std::vector<TrunkTarget> found, std::string error) {
    auto it = names_.find(name);
    if (it == names_.end()) return;   // forgotten by a reload meanwhile
    Entry& e = it->second;
    std::vector<TrunkTarget> targets;
    std::vector<IpAddress> unique;
    for (const auto& t : found) {
        if (std::find(targets.begin(), targets.end(), t) == targets.end()) targets.push_back(t);
        if (std::find(unique.begin(), unique.end(), t.to.ip) == unique.end()) unique.push_back(t.to.ip);
    }
    if (unique.empty()) {
        // Stale beats nothing: a resolver outage must not take a working trunk down.
        e.failed = true;
        e.error = error.empty() ? "no addresses" : std::move(error);
        e.next_lookup = now + kRetry;
        return;
    }
    e.addresses = std::move(unique);
    e.targets = std::move(targets);
    e.failed = false;
    e.error.clear();
    e.next_lookup = now + kTtl;
}

std::optional<TrunkHosts::Time> TrunkHosts::next_wake() const {
    std::optional<Time> t;
    for (const auto& [name, e] : names_)
        if (e.next_lookup && (!t || *e.next_lookup < *t)) t = e.next_lookup;
    return t;
}

}  // namespace turnbridge::gateway
