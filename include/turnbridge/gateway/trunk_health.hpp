// SPDX-License-Identifier: Apache-2.0
#pragma once
// OPTIONS health checks of trunk targets (issue 14, as Kamailio's dispatcher probing): every
// gateway.options_interval one OPTIONS per target; a probe still unanswered when the next goes
// out is a miss, kMissesDown misses in a row mark the target down, any answer (even 404 or 405:
// the target is alive) marks it up again. Down targets are skipped by new calls (trunk_targets).
// Sans-I/O: times come in; the router sends the OPTIONS.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/base/address.hpp"

namespace turnbridge::gateway {

struct TargetHealth {
    using Time = std::chrono::steady_clock::time_point;
    std::string realm;
    std::string trunk;                     // its name in the realm (issue 14: several per realm)
    Endpoint to;
    bool up = true;                        // until kMissesDown probes in a row go unanswered
    unsigned misses = 0;
    int last_status = 0;                   // of the last answer; 0 = none yet
    std::optional<Time> last_response;
    std::optional<std::chrono::milliseconds> rtt;   // of the last answer
    std::optional<Time> sent;              // the probe in flight
};

class TrunkHealth {
public:
    using Time = TargetHealth::Time;
    static constexpr unsigned kMissesDown = 3;

    // Targets are kept per realm and trunk (two trunks may share an address, each with its own
    // state). The targets of that trunk now: new ones start up, gone ones are forgotten. An
    // empty list forgets the trunk (probing off, or no such trunk any more).
    void set_targets(const std::string& realm, const std::string& trunk, const std::vector<Endpoint>& targets);
    // A probe goes out now. If the last one is unanswered, that is a miss; returns true when
    // this miss marked the target down.
    bool probe_sent(Time now, const std::string& realm, const std::string& trunk, const Endpoint& to);
    // An answer to the probe in flight; returns true when it marked a down target up.
    bool on_response(Time now, const std::string& realm, const std::string& trunk, const Endpoint& to, int status);
    bool down(const std::string& realm, const std::string& trunk, const Endpoint& to) const;
    const std::vector<TargetHealth>& targets() const { return targets_; }

private:
    TargetHealth* find(const std::string& realm, const std::string& trunk, const Endpoint& to);
    std::vector<TargetHealth> targets_;   // a few per trunk: a list is the simplest map
};

}  // namespace turnbridge::gateway
