// SPDX-License-Identifier: Apache-2.0
#pragma once
// Trunk host names and their addresses (sans-I/O: names and results in, "look these up now"
// out; TrunkResolver does the lookups with uv_getaddrinfo). A name is looked up when it first
// appears in the config, again every kTtl in the background (the old addresses serve
// meanwhile, and keep serving if a later lookup fails), and kRetry after a failure.
// Plain A/AAAA (getaddrinfo) only: no RFC 3263 NAPTR/SRV, the URI's port or its default is used.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/base/address.hpp"

namespace turnbridge::gateway {

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
    void set_names(const std::vector<std::string>& names);
    State state(const std::string& name) const;
    // The addresses of a Ready name in the resolver's order; empty otherwise.
    const std::vector<IpAddress>& addresses(const std::string& name) const;
    // Why the last lookup of `name` failed ("" if it did not).
    const std::string& error(const std::string& name) const;

    // Appends the names whose lookup should start now and marks them under way.
    void due(Time now, std::vector<std::string>& out);
    // A lookup's result: addresses (duplicates dropped), or none and why.
    void on_resolved(Time now, const std::string& name, std::vector<IpAddress> found, std::string error = {});
    // When due() will next have something (nullopt: nothing to do until a result comes).
    std::optional<Time> next_wake() const;

private:
    struct Entry {
        std::vector<IpAddress> addresses;
        std::optional<Time> next_lookup = Time::min();   // nullopt while a lookup is under way
        bool failed = false;
        std::string error;
    };
    std::map<std::string, Entry, std::less<>> names_;
};

}  // namespace turnbridge::gateway
