// SPDX-License-Identifier: Apache-2.0
#pragma once
// The order in which one call tries a trunk's targets (issue 14, RFC 3263 §4.4 after RFC 2782):
// lowest SRV priority first; within a priority, a weighted random order (each pick among the
// rest with probability weight/sum, weight-0 records first in the running sums, so they are
// picked only rarely unless all are 0). Targets marked down by health checks are left out,
// unless every target is down (then the call tries them all: a health check may be wrong, a
// refusal is certain). Sans-I/O: the randomness is passed in.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "turnbridge/gateway/trunk_hosts.hpp"

namespace turnbridge::gateway {

// `random` returns uniformly distributed 64-bit values (sip::Random). `down(endpoint)`: skip it.
std::vector<Endpoint> order_targets(std::span<const TrunkTarget> targets, const std::function<std::uint64_t()>& random,
                                    const std::function<bool(const Endpoint&)>& down = {});

}  // namespace turnbridge::gateway
