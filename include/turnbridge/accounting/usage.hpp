// SPDX-License-Identifier: Apache-2.0
#pragma once
// Usage queries shared by `turnbridge report` and the admin API: the same rows either way.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "turnbridge/accounting/record.hpp"

namespace turnbridge::accounting {

// Node: per fleet node (issue 15), only from the fleet ledger. Trunk: the gateway calls per
// realm and trunk (issue 14), call figures only (relayed traffic has no trunk).
enum class GroupBy { User, Realm, Day, Hour, Allocation, Node, Trunk };

struct UsageQuery {
    std::optional<std::string> user;     // account
    std::optional<std::string> realm;
    std::optional<std::int64_t> since_ms;  // unix ms, inclusive
    std::optional<std::int64_t> until_ms;  // unix ms, exclusive
    GroupBy by = GroupBy::User;
};

// Gateway calls (CallRecord) that started in a usage row's window and bucket, whatever carried
// their media: a call is counted in the hour or day it started, all of its minutes with it.
struct CallTotals {
    std::uint64_t calls = 0;
    std::uint64_t answered = 0;        // calls with a 200 OK (answer_ms != 0)
    std::int64_t answered_ms = 0;      // their summed duration, answer to end
    std::uint64_t browser_bytes = 0;   // media datagrams on the browser leg, both ways
    std::uint64_t trunk_bytes = 0;     // the same on the trunk leg
    std::map<std::string, std::uint64_t> codecs;  // "opus/PCMU" -> calls; calls without codecs not counted
    double minutes() const { return static_cast<double>(answered_ms) / 60000.0; }
};

struct UsageRow {
    std::string key;            // user, realm, "YYYY-MM-DD", "YYYY-MM-DDTHH:00Z" or allocation id
    std::string realm;          // for by=user/allocation: the realm; else "" when mixed
    std::uint64_t allocations = 0;
    double relayed_minutes = 0;
    Traffic traffic;
    double cost = 0;            // egress GB x realm price_per_gb
    std::string currency;       // "" when rows mix currencies
    CallTotals calls;           // zero for by=allocation
};

// Parses "2026-11-01", "2026-11-01T12:00:00Z", a unix timestamp, or a relative "7d"/"12h"/"30m"
// (before `now_ms`). nullopt when it is none of these. Dates and times are UTC; unix timestamps
// are in seconds; relative units are d, h, m and s.
std::optional<std::int64_t> parse_time(std::string_view text, std::int64_t now_ms);
std::optional<GroupBy> parse_group_by(std::string_view text);
std::string_view to_string(GroupBy by);  // "user", "realm", "day", "hour", "allocation"

enum class Format { Table, Json, Csv };
std::optional<Format> parse_format(std::string_view text);
// Table: human units (decimal B/kB/MB/GB/TB, minutes, cost with 2 decimals); JSON and CSV:
// raw integers, and the fields key, realm, allocations, relayed_minutes, then
// {client_to_relay,relay_to_peer,peer_to_relay,relay_to_client}_{packets,payload_bytes,wire_bytes},
// total_bytes (wire, all four directions), egress_bytes, cost, currency, then the calls: calls,
// answered_calls, call_minutes, call_browser_bytes, call_trunk_bytes, call_codecs (JSON: an object
// codecs -> calls; CSV and table: "opus/PCMU=3 PCMU/PCMU=1"). The table shows the call columns only
// when a row has calls. CSV is RFC 4180 (CRLF, quoted where needed). The overload with `by` names the table's first column after it.
std::string format_usage(const std::vector<UsageRow>& rows, Format f);
std::string format_usage(const std::vector<UsageRow>& rows, Format f, GroupBy by);
// The table's byte figures: decimal units, three significant digits ("512 B", "1.21 MB").
std::string format_bytes(std::uint64_t bytes);

}  // namespace turnbridge::accounting
