// SPDX-License-Identifier: Apache-2.0
#pragma once
// The admin API, sans-I/O: one request and a Backend in, one response out.
//   GET /                         the usage page (token also accepted as ?token=)
//   GET /metrics                  Prometheus text
//   GET /api/v1/usage             ?user=&realm=&since=&until=&by=  (as `turnbridge report`)
//   GET /api/v1/calls             ?user=&realm=&since=&until=&limit=  gateway calls (report --calls)
//   GET /api/v1/allocations       live allocations with bit rates
//   DELETE /api/v1/allocations/ID kick one
// HEAD works wherever GET does.
#include <cstdint>
#include <string_view>

#include "turnbridge/admin/backend.hpp"
#include "turnbridge/admin/http_request.hpp"
#include "turnbridge/admin/http_response.hpp"
#include "turnbridge/base/auth_throttle.hpp"

namespace turnbridge::admin {

struct RouterConfig {
    std::string_view token;    // bearer token; "" = no authentication (loopback listener only)
    std::int64_t now_ms = 0;   // wall clock, unix ms: the base of relative times such as since=7d
    // security.auth_failures_per_minute: wrong tokens from `peer` are counted, and while it is
    // over the limit its requests get 429 without a token check. No throttle: not counted.
    struct Auth {
        AuthThrottle* throttle = nullptr;
        IpAddress peer;
        AuthThrottle::Time now{};
    } auth;
};

Response handle(const Request& req, Backend& backend, const RouterConfig& cfg);

// True when `presented` equals `token`, in time that depends on neither (both are hashed first,
// then compared with CRYPTO_memcmp).
bool token_matches(std::string_view presented, std::string_view token);

// Host header values that name this machine: localhost, 127.0.0.0/8, [::1], with any port.
bool is_loopback_host(std::string_view host);

std::string allocations_json(const std::vector<LiveAllocation>& live);
// GET /api/v1/trunks: each trunk target's OPTIONS health (issue 14).
std::string trunks_json(const std::vector<TrunkTargetStatus>& targets);

}  // namespace turnbridge::admin
