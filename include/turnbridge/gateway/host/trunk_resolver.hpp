// SPDX-License-Identifier: Apache-2.0
#pragma once
// Keeps the trunks' host names resolved (TrunkHosts) with uv_getaddrinfo: the lookups run on
// libuv's thread pool and report on the owning loop (worker 0's), so signaling never blocks.
// `changed` runs on the loop after each lookup, so that waiting calls can go on.
#include <functional>
#include <string>
#include <uv.h>
#include <vector>

#include "turnbridge/gateway/trunk_hosts.hpp"

namespace turnbridge::gateway::host {

class TrunkResolver {
public:
    TrunkResolver(uv_loop_t* loop, std::function<void()> changed);
    TrunkResolver(const TrunkResolver&) = delete;
    TrunkResolver& operator=(const TrunkResolver&) = delete;

    // The names to keep resolved (IP literals are skipped); starts what is due.
    void set_names(const std::vector<std::string>& names);
    const gateway::TrunkHosts& hosts() const { return hosts_; }
    // Stops the timer and abandons lookups under way (their results are dropped).
    void close();

private:
    struct Lookup;
    void kick();
    void on_result(const std::string& name, int status, const addrinfo* res);

    uv_loop_t* loop_;
    std::function<void()> changed_;
    gateway::TrunkHosts hosts_;
    uv_timer_t timer_{};
    bool open_ = false;
    std::vector<Lookup*> running_;
};

}  // namespace turnbridge::gateway::host
