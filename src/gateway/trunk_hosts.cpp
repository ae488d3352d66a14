// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/trunk_hosts.hpp"

#include <algorithm>

namespace turnbridge::gateway {
namespace {

const std::vector<IpAddress> kNone;
const std::string kNoError;

}  // namespace

void TrunkHosts::set_names(const std::vector<std::string>& names) {
    std::map<std::string, Entry, std::less<>> kept;
    for (const auto& n : names) {
        if (n.empty() || IpAddress::parse(n)) continue;
        if (auto it = names_.find(n); it != names_.end()) kept.insert(names_.extract(it));
        else kept.try_emplace(n);
    }
    names_ = std::move(kept);
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
    Entry& e = it->second;
    std::vector<IpAddress> unique;
    for (const auto& ip : found)
        if (std::find(unique.begin(), unique.end(), ip) == unique.end()) unique.push_back(ip);
    if (unique.empty()) {
        // Stale beats nothing: a resolver outage must not take a working trunk down.
        e.failed = true;
        e.error = error.empty() ? "no addresses" : std::move(error);
        e.next_lookup = now + kRetry;
        return;
    }
    e.addresses = std::move(unique);
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
