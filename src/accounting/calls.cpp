// SPDX-License-Identifier: Apache-2.0
// The call listing of `turnbridge report --calls` and GET /api/v1/calls (turnbridge(8)).
#include "turnbridge/accounting/calls.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <utility>

#include "calendar.hpp"
#include "row_text.hpp"
#include "turnbridge/base/utf8.hpp"

namespace turnbridge::accounting {
namespace {

std::string integer(std::int64_t v) { return fmt::format("{}", v); }

detail::Fields fields(const CallRecord& c) {
    using namespace detail;
    Fields out = {
        text_field("id", c.id),
        text_field("realm", c.realm),
        text_field("user", c.account),
        text_field("direction", c.direction),
        text_field("remote", c.remote),
        text_field("start", c.start_ms == 0 ? std::string() : time_key(c.start_ms)),
        int_field("start_ms", c.start_ms),
        int_field("answer_ms", c.answer_ms),
        int_field("end_ms", c.end_ms),
        real_field("duration_seconds", rounded(static_cast<double>(c.duration_ms()) / 1000, 3)),
        int_field("status", std::int64_t{c.status}),
        text_field("result", std::string(call_result(c))),
        text_field("codecs", c.codecs),
        text_field("end_reason", c.end_reason),
        flag_field("relayed", c.relayed),
    };
    const std::pair<const char*, std::uint64_t> counts[] = {
        {"browser_in_packets", c.browser_in_packets}, {"browser_in_bytes", c.browser_in_bytes},
        {"browser_out_packets", c.browser_out_packets}, {"browser_out_bytes", c.browser_out_bytes},
        {"trunk_in_packets", c.trunk_in_packets},     {"trunk_in_bytes", c.trunk_in_bytes},
        {"trunk_out_packets", c.trunk_out_packets},   {"trunk_out_bytes", c.trunk_out_bytes},
    };
    for (const auto& [name, v] : counts) out.push_back(int_field(name, v));
    // Issue 14: per leg and direction, null when not measured.
    for (std::size_t i = 0; i < c.quality.size(); ++i) {
        const CallQuality& q = c.quality[i];
        const std::string p = kCallQualityPrefixes[i];
        out.push_back(maybe_real_field(p + "_lost", static_cast<double>(q.lost), q.measured));
        out.push_back(maybe_real_field(p + "_loss_pct", rounded(q.loss_pct, 2), q.measured));
        out.push_back(maybe_real_field(p + "_jitter_ms", rounded(q.jitter_ms, 2), q.measured));
        out.push_back(maybe_real_field(p + "_mos", rounded(q.mos, 2), q.measured));
    }
    // Issue 14: the trunk's name; null for a call with no trunk leg (last: CSV columns stay put).
    out.push_back(maybe_text_field("trunk", c.trunk, !c.trunk.empty()));
    return out;
}

// "1:02:03" or "2:03"; "-" for a call never answered.
std::string human_duration(const CallRecord& c) {
    if (c.answer_ms == 0) return "-";
    const std::int64_t s = std::max<std::int64_t>(0, c.duration_ms()) / 1000;
    if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    return fmt::format("{}:{:02}", s / 60, s % 60);
}

// The table's quality columns: the two directions toward the trunk's far end, as the audio flows:
// browser in (what the browser sent us) then trunk in (what the trunk sent us), "-" unmeasured.
template <class F>
std::string quality_cell(const CallRecord& c, F show) {
    const auto one = [&](const CallQuality& q) { return q.measured ? show(q) : std::string("-"); };
    return one(c.quality[0]) + " " + one(c.quality[2]);
}

std::string table(const std::vector<CallRecord>& calls) {
    std::vector<std::vector<std::string>> cells = {{"START", "USER", "REALM", "DIRECTION", "REMOTE", "TRUNK", "STATUS", "RESULT",
                                                    "DURATION", "CODECS", "BROWSER IN", "BROWSER OUT", "TRUNK IN",
                                                    "TRUNK OUT", "RELAYED", "LOSS IN B/T", "MOS IN B/T", "END"}};
    for (const auto& c : calls)
        cells.push_back({c.start_ms == 0 ? "-" : detail::time_key(c.start_ms), printable(c.account),
                         printable(c.realm), printable(c.direction), printable(c.remote),
                         c.trunk.empty() ? "-" : printable(c.trunk), integer(std::int64_t{c.status}), std::string(call_result(c)), human_duration(c),
                         printable(c.codecs), format_bytes(c.browser_in_bytes), format_bytes(c.browser_out_bytes),
                         format_bytes(c.trunk_in_bytes), format_bytes(c.trunk_out_bytes), c.relayed ? "yes" : "no",
                         quality_cell(c, [](const CallQuality& q) { return fmt::format("{:.1f}%", q.loss_pct); }),
                         quality_cell(c, [](const CallQuality& q) { return fmt::format("{:.2f}", q.mos); }),
                         printable(c.end_reason)});
    //                               START USER  REALM DIR   REMOTE TRUNK STATUS RESULT DUR    CODECS
    const std::vector<bool> left = {true, true, true, true, true, true, false, true, false, true,
                                    false, false, false, false, true, false, false, true};
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
