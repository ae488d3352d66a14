// SPDX-License-Identifier: Apache-2.0
#pragma once
// Trunk host names and their addresses (sans-I/O: names and results in, "look these up now"
// out; TrunkResolver does the lookups with uv_getaddrinfo). A name is looked up when it first
// appears in the config, again every kTtl in the background (the old addresses serve
// meanwhile, and keep serving if a later lookup fails), and kRetry after a failure.
// RFC 3263 §4.2 (issue 14): a name given a service ("_sip._udp") is an SRV name first; its
// records' targets and ports, with their priority and weight, become the name's targets (ordered
// per call by trunk_targets.hpp). Without SRV records, or without a service (the URI named a
// port), the name's A/AAAA addresses are the targets, at the URI's port. No NAPTR (optional).
// A name is kept once, under its host: two realms naming one host with different transports
// share the first one's lookup.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/base/address.hpp"

namespace turnbridge::gateway {

// One place a trunk name leads to: an address and port, and the SRV record's priority and
// weight it came from (0, 0 without SRV).
struct TrunkTarget {
    std::uint16_t priority = 0;
    std::uint16_t weight = 0;
    Endpoint to;
    bool operator==(const TrunkTarget&) const = default;
};

// A name to keep resolved: its SRV service ("_sip._udp", "_sip._tcp", "_sips._tcp"; "" = A/AAAA
// only) and the port of its A/AAAA addresses.
struct TrunkName {
    std::string host;
    std::string service;
    std::uint16_t port = 5060;
};

class TrunkHosts {
public:
    using Time = std::chrono::steady_clock::time_point;
    static constexpr std::chrono::seconds kTtl{300};
    static constexpr std::chrono::seconds kRetry{10};

    enum class State {
        Unknown,    // not a name we keep
        Resolving,  // no addresses yet, a lookup is due or under way
        Ready,      // addresses known (perhaps being refreshed)
        Failed,     // no addresses: the last lookup failed (retried after kRetry)
    };

    // The names to keep resolved; IP literals are ignored, names no longer listed forgotten.
    void set_names(const std::vector<std::string>& names);   // A/AAAA only, port 5060
    void set_lookups(const std::vector<TrunkName>& names);
    // How `name` is to be looked up (nullptr: not a name we keep).
    const TrunkName* lookup(const std::string& name) const;
    State state(const std::string& name) const;
    // The addresses of a Ready name in the resolver's order; empty otherwise.
    const std::vector<IpAddress>& addresses(const std::string& name) const;
    // The targets of a Ready name (SRV records expanded to their addresses, in record order).
    const std::vector<TrunkTarget>& targets(const std::string& name) const;
    // Why the last lookup of `name` failed ("" if it did not).
    const std::string& error(const std::string& name) const;

    // Appends the names whose lookup should start now and marks them under way.
    void due(Time now, std::vector<std::string>& out);
    // A lookup's result: addresses (duplicates dropped), or none and why.
    void on_resolved(Time now, const std::string& name, std::vector<IpAddress> found, std::string error = {});
    // The same with targets (an SRV answer, or addresses at the name's port).
    void on_targets(Time now, const std::string& name, std::vector<TrunkTarget> found, std::string error = {});
    // When due() will next have something (nullopt: nothing to do until a result comes).
    std::optional<Time> next_wake() const;

private:
    struct Entry {
        TrunkName lookup;
        std::vector<TrunkTarget> targets;
        std::vector<IpAddress> addresses;   // of `targets`, each once
        std::optional<Time> next_lookup = Time::min();   // nullopt while a lookup is under way
        bool failed = false;
        std::string error;
    };
    std::map<std::string, Entry, std::less<>> names_;
};

}  // namespace turnbridge::gateway
