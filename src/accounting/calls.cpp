// SPDX-License-Identifier: Apache-2.0
// The call listing of `turnbridge report --calls` and GET /api/v1/calls (turnbridge(8)).
#include "turnbridge/accounting/calls.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <utility>

#include "calendar.hpp"
#include "row_text.hpp"

namespace turnbridge::accounting {
namespace {

using K = detail::Field::Kind;

std::string integer(std::int64_t v) { return fmt::format("{}", v); }
std::string integer(std::uint64_t v) { return fmt::format("{}", v); }

detail::Fields fields(const CallRecord& c) {
    detail::Fields out = {
        {"id", K::Text, c.id},
        {"realm", K::Text, c.realm},
        {"user", K::Text, c.account},
        {"direction", K::Text, c.direction},
        {"remote", K::Text, c.remote},
        {"start", K::Text, c.start_ms == 0 ? std::string() : detail::time_key(c.start_ms)},
        {"start_ms", K::Number, integer(c.start_ms)},
        {"answer_ms", K::Number, integer(c.answer_ms)},
        {"end_ms", K::Number, integer(c.end_ms)},
        {"duration_seconds", K::Number, detail::number(detail::rounded(static_cast<double>(c.duration_ms()) / 1000, 3))},
        {"status", K::Number, integer(std::int64_t{c.status})},
        {"result", K::Text, std::string(call_result(c))},
        {"codecs", K::Text, c.codecs},
        {"end_reason", K::Text, c.end_reason},
        // JSON true/false; CSV 1/0 like the other numbers.
        {"relayed", K::Object, c.relayed ? "1" : "0", c.relayed ? "true" : "false"},
    };
    const std::pair<const char*, std::uint64_t> counts[] = {
        {"browser_in_packets", c.browser_in_packets}, {"browser_in_bytes", c.browser_in_bytes},
        {"browser_out_packets", c.browser_out_packets}, {"browser_out_bytes", c.browser_out_bytes},
        {"trunk_in_packets", c.trunk_in_packets},     {"trunk_in_bytes", c.trunk_in_bytes},
        {"trunk_out_packets", c.trunk_out_packets},   {"trunk_out_bytes", c.trunk_out_bytes},
    };
    for (const auto& [name, v] : counts) out.push_back({name, K::Number, integer(v)});
    return out;
}

// "1:02:03" or "2:03"; "-" for a call never answered.
std::string human_duration(const CallRecord& c) {
    if (c.answer_ms == 0) return "-";
    const std::int64_t s = std::max<std::int64_t>(0, c.duration_ms()) / 1000;
    if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string table(const std::vector<CallRecord>& calls) {
    std::vector<std::vector<std::string>> cells = {{"START", "USER", "REALM", "DIRECTION", "REMOTE", "STATUS", "RESULT",
                                                    "DURATION", "CODECS", "BROWSER IN", "BROWSER OUT", "TRUNK IN",
                                                    "TRUNK OUT", "RELAYED", "END"}};
    for (const auto& c : calls)
        cells.push_back({c.start_ms == 0 ? "-" : detail::time_key(c.start_ms), detail::printable(c.account),
                         detail::printable(c.realm), detail::printable(c.direction), detail::printable(c.remote),
                         integer(std::int64_t{c.status}), std::string(call_result(c)), human_duration(c),
                         detail::printable(c.codecs), format_bytes(c.browser_in_bytes), format_bytes(c.browser_out_bytes),
                         format_bytes(c.trunk_in_bytes), format_bytes(c.trunk_out_bytes), c.relayed ? "yes" : "no",
                         detail::printable(c.end_reason)});
    //                               START USER  REALM DIR   REMOTE STATUS RESULT DUR    CODECS
    const std::vector<bool> left = {true, true, true, true, true, false, true, false, true,
                                    false, false, false, false, true, true};
    return detail::aligned(cells, left);
}

}  // namespace

std::string_view call_result(const CallRecord& r) {
    if (r.answer_ms != 0) return "answered";
    // RFC 3261 §9.2: a CANCELled INVITE ends with 487.
    if (r.status == 487 || r.end_reason == "cancel") return "cancelled";
    if (r.status == 486 || r.status == 600) return "busy";
    if (r.status == 603) return "declined";
    return "failed";
}

std::string format_codecs(const std::map<std::string, std::uint64_t>& codecs) {
    std::vector<std::pair<std::string, std::uint64_t>> order(codecs.begin(), codecs.end());
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string out;
    for (const auto& [name, n] : order) out += fmt::format("{}{}={}", out.empty() ? "" : " ", name, n);
    return out;
}

std::string format_calls(const std::vector<CallRecord>& calls, Format f) {
    if (f == Format::Table) return table(calls);
    std::vector<detail::Fields> rows;
    rows.reserve(calls.size());
    for (const auto& c : calls) rows.push_back(fields(c));
    return f == Format::Json ? detail::json_rows(rows) : detail::csv_rows(fields(CallRecord{}), rows);
}

}  // namespace turnbridge::accounting
