// SPDX-License-Identifier: Apache-2.0
#pragma once
// Outbound AI agent calls on the admin API (issue 17), sans-I/O like router.cpp:
//   POST /api/v1/calls      {"realm", "to", "from", "agent"} -> 202 {"id", "status": "dialing", ...}
//                           with Location: /api/v1/calls/ID; the call goes on in the background
//   GET  /api/v1/calls/ID   its progress: dialing, ringing, answered, then completed (answered and
//                           ended), busy (486, 600, 603), no-answer (408, 480, 487, ring timeout)
//                           or failed (anything else), with sip_code and end_reason
// 400 names the bad field ("parameter"); 404 unknown realm; 409 a realm without gateway mode;
// 429 over gateway.agent_outbound_max_calls in progress.
#include <string>
#include <string_view>

#include "turnbridge/admin/backend.hpp"
#include "turnbridge/admin/http_request.hpp"
#include "turnbridge/admin/http_response.hpp"

namespace turnbridge::admin {

inline constexpr std::string_view kCallsPrefix = "/api/v1/calls/";

Response place_call(const Request& req, Backend& backend);
Response outbound_call(std::string_view id, Backend& backend);
std::string outbound_call_json(const OutboundCall& c);

// A number as the API takes it for `to` and `from`: an optional "+", then 1-32 digits, "*" or "#".
bool valid_api_number(std::string_view n);

}  // namespace turnbridge::admin
