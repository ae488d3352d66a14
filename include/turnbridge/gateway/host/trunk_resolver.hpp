// SPDX-License-Identifier: Apache-2.0
#pragma once
// Keeps the trunks' host names resolved (TrunkHosts) through io::DnsResolver (c-ares on the
// owning loop, issue 14): a name with an SRV service is looked up as SRV first (RFC 3263 §4.2),
// each record's target then as A/AAAA; without records, or without a service, the name's own
// A/AAAA at the URI's port. `changed` runs on the loop after each name's lookup, so that waiting
// calls can go on. server.dns_servers is read once (a change needs a restart).
#include <functional>
#include <memory>
#include <string>
#include <uv.h>
#include <vector>

#include "turnbridge/gateway/trunk_hosts.hpp"
#include "turnbridge/io/dns_resolver.hpp"

namespace turnbridge::gateway::host {

class TrunkResolver {
public:
    TrunkResolver(uv_loop_t* loop, const std::vector<Endpoint>& dns_servers, std::function<void()> changed);
    TrunkResolver(const TrunkResolver&) = delete;
    TrunkResolver& operator=(const TrunkResolver&) = delete;

    // The names to keep resolved (IP literals are skipped); starts what is due.
    void set_names(const std::vector<gateway::TrunkName>& names);
    const gateway::TrunkHosts& hosts() const { return hosts_; }
    // Stops the timer and abandons lookups under way (their results are dropped).
    void close();

private:
    struct Lookup;
    void kick();
    void start(const std::string& name);
    void resolve_targets(const std::shared_ptr<Lookup>& l, std::vector<io::SrvRecord> records);
    void on_result(const std::string& name, std::vector<gateway::TrunkTarget> found, const std::string& error);

    uv_loop_t* loop_;
    std::function<void()> changed_;
    gateway::TrunkHosts hosts_;
    std::unique_ptr<io::DnsResolver> dns_;   // nullptr: c-ares could not start (logged)
    uv_timer_t timer_{};
    bool open_ = false;
};

}  // namespace turnbridge::gateway::host
