// SPDX-License-Identifier: Apache-2.0
#pragma once
// Gateway call records (issue 4) as `turnbridge report --calls` and GET /api/v1/calls show them:
// the query, the result a call is counted under, and the listing as a table, JSON or CSV.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "turnbridge/accounting/record.hpp"
#include "turnbridge/accounting/usage.hpp"

namespace turnbridge::accounting {

struct CallQuery {
    std::optional<std::string> user;        // account (the browser user)
    std::optional<std::string> realm;
    std::optional<std::int64_t> since_ms;   // start_ms >= since (unix ms)
    std::optional<std::int64_t> until_ms;   // start_ms < until
    std::optional<std::size_t> limit;       // at most this many, the earliest first
};

// How a call ended, for metrics and listings: "answered" (it had a 200 OK), "cancelled" (487 or
// a CANCEL), "busy" (486, 600), "declined" (603) or "failed" (anything else).
std::string_view call_result(const CallRecord& r);

// "opus/PCMU=3 PCMU/PCMU=1": most calls first, then by name.
std::string format_codecs(const std::map<std::string, std::uint64_t>& codecs);

// One call per row in the order given. JSON and CSV fields: id, realm, user, direction, remote,
// start (ISO 8601 UTC), start_ms, answer_ms, end_ms, duration_seconds (answer to end, 0 when never
// answered), status, result, codecs, end_reason, relayed, then browser_in_packets, browser_in_bytes,
// browser_out_packets, browser_out_bytes and the same four for trunk_. The table: human units.
std::string format_calls(const std::vector<CallRecord>& calls, Format f);

}  // namespace turnbridge::accounting
