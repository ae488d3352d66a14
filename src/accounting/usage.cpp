// SPDX-License-Identifier: Apache-2.0
// The usage report's text: parsing --since/--until/--by/--format, and rows as an aligned table,
// JSON or CSV (turnbridge(8), report).
#include "turnbridge/accounting/usage.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <fmt/format.h>
#include <limits>

#include "calendar.hpp"
#include "counters.hpp"
#include "row_text.hpp"
#include "turnbridge/base/utf8.hpp"
#include "turnbridge/accounting/calls.hpp"

namespace turnbridge::accounting {
namespace {

using detail::counter;
using detail::kCounters;

// Digits only, no sign; nullopt when empty, not all digits or beyond int64.
std::optional<std::int64_t> digits(std::string_view s) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || s.front() == '-' || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

// a * b, or nullopt if it does not fit.
std::optional<std::int64_t> times(std::int64_t a, std::int64_t b) {
    std::int64_t out = 0;
    if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
    return out;
}

// "7d", "12h", "30m", "90s": that long before now.
std::optional<std::int64_t> relative(std::string_view text, std::int64_t now_ms) {
    if (text.size() < 2) return std::nullopt;
    std::int64_t unit = 0;
    switch (text.back()) {
        case 'd': unit = detail::kDayMs; break;
        case 'h': unit = detail::kHourMs; break;
        case 'm': unit = detail::kMinuteMs; break;
        case 's': unit = detail::kSecondMs; break;
        default: return std::nullopt;
    }
    const auto n = digits(text.substr(0, text.size() - 1));
    const auto span = n ? times(*n, unit) : std::nullopt;
    std::int64_t out = 0;
    if (!span || __builtin_sub_overflow(now_ms, *span, &out)) return std::nullopt;
    return out;
}

// "2026-11-01" or "2026-11-01T12:00:00Z", UTC.
std::optional<std::int64_t> date_time(std::string_view text) {
    const auto field = [&](std::size_t at, std::size_t len) { return digits(text.substr(at, len)); };
    if (text.size() != 10 && text.size() != 20) return std::nullopt;
    if (text[4] != '-' || text[7] != '-') return std::nullopt;
    const auto y = field(0, 4), mo = field(5, 2), d = field(8, 2);
    if (!y || !mo || !d || *mo < 1 || *mo > 12) return std::nullopt;
    const auto month = static_cast<unsigned>(*mo);
    if (*d < 1 || *d > static_cast<std::int64_t>(detail::days_in_month(*y, month))) return std::nullopt;
    std::int64_t ms = detail::days_from_civil({*y, month, static_cast<unsigned>(*d)}) * detail::kDayMs;
    if (text.size() == 10) return ms;
    if (text[10] != 'T' || text[13] != ':' || text[16] != ':' || text[19] != 'Z') return std::nullopt;
    const auto h = field(11, 2), mi = field(14, 2), s = field(17, 2);
    if (!h || !mi || !s || *h > 23 || *mi > 59 || *s > 59) return std::nullopt;
    return ms + *h * detail::kHourMs + *mi * detail::kMinuteMs + *s * detail::kSecondMs;
}

// --- table ------------------------------------------------------------------------------------

std::string human_cost(double cost, const std::string& currency) {
    const std::string suffix = currency.empty() ? "" : " " + currency;
    if (cost > 0 && cost < 0.005) return "<0.01" + suffix;
    return fmt::format("{:.2f}", cost) + suffix;
}

std::string_view first_column(std::optional<GroupBy> by) {
    if (!by) return "KEY";
    switch (*by) {
        case GroupBy::User: return "USER";
        case GroupBy::Realm: return "REALM";
        case GroupBy::Day: return "DAY";
        case GroupBy::Hour: return "HOUR";
        case GroupBy::Allocation: return "ALLOCATION";
        case GroupBy::Node: return "NODE";
        case GroupBy::Trunk: return "TRUNK";
    }
    return "KEY";
}

// UP is the client's leg toward the relay, DOWN the relay's leg toward the client: there
// payload and wire differ by the TURN framing. TOTAL is the wire bytes of all four directions.
// The call columns appear only when some row has calls, so a plain TURN server's table is as
// it always was.
std::string table(const std::vector<UsageRow>& rows, std::optional<GroupBy> by) {
    const bool realm_column = by != GroupBy::Realm;
    const bool call_columns =
        std::any_of(rows.begin(), rows.end(), [](const UsageRow& r) { return r.calls.calls != 0; });
    std::vector<std::vector<std::string>> cells;
    std::vector<bool> left;
    const auto add_row = [&](std::vector<std::string> line, std::vector<std::string> calls) {
        if (!realm_column) line.erase(line.begin() + 1);
        if (call_columns) line.insert(line.end(), calls.begin(), calls.end());
        cells.push_back(std::move(line));
    };
    add_row({std::string(first_column(by)), "REALM", "ALLOCATIONS", "MINUTES", "UP PAYLOAD", "UP WIRE", "DOWN PAYLOAD",
             "DOWN WIRE", "TOTAL", "COST"},
            {"CALLS", "ANSWERED", "CALL MINUTES", "CODECS"});
    for (const auto& r : rows) {
        const Traffic& t = r.traffic;
        add_row({printable(r.key), printable(r.realm), fmt::format("{}", r.allocations),
                 fmt::format("{:.1f} min", r.relayed_minutes), format_bytes(t.payload_bytes[0]),
                 format_bytes(t.wire_bytes[0]), format_bytes(t.payload_bytes[3]), format_bytes(t.wire_bytes[3]),
                 format_bytes(detail::total_bytes(t)), human_cost(r.cost, r.currency)},
                {fmt::format("{}", r.calls.calls), fmt::format("{}", r.calls.answered),
                 fmt::format("{:.1f} min", r.calls.minutes()), printable(format_codecs(r.calls.codecs))});
    }
    for (std::size_t c = 0; c < cells.front().size(); ++c)
        left.push_back(c < (realm_column ? 2u : 1u) || (call_columns && c + 1 == cells.front().size()));
    return detail::aligned(cells, left);
}

// --- JSON and CSV -----------------------------------------------------------------------------

detail::Fields fields(const UsageRow& r) {
    using namespace detail;
    Fields out = {
        text_field("key", r.key),
        text_field("realm", r.realm),
        int_field("allocations", r.allocations),
        real_field("relayed_minutes", rounded(r.relayed_minutes, 4)),
    };
    for (std::size_t i = 0; i < kCounters; ++i) out.push_back(int_field(counter_name(i), counter(r.traffic, i)));
    out.push_back(int_field("total_bytes", total_bytes(r.traffic)));
    out.push_back(int_field("egress_bytes", r.traffic.egress_bytes()));
    out.push_back(real_field("cost", rounded(r.cost, 6)));
    out.push_back(text_field("currency", r.currency));
    const CallTotals& c = r.calls;
    out.push_back(int_field("calls", c.calls));
    out.push_back(int_field("answered_calls", c.answered));
    out.push_back(real_field("call_minutes", rounded(c.minutes(), 4)));
    out.push_back(int_field("call_browser_bytes", c.browser_bytes));
    out.push_back(int_field("call_trunk_bytes", c.trunk_bytes));
    out.push_back(map_field("call_codecs", c.codecs, format_codecs(c.codecs)));
    return out;
}

std::string format(const std::vector<UsageRow>& rows, Format f, std::optional<GroupBy> by) {
    if (f == Format::Table) return table(rows, by);
    std::vector<detail::Fields> all;
    all.reserve(rows.size());
    for (const auto& r : rows) all.push_back(fields(r));
    return f == Format::Json ? detail::json_rows(all) : detail::csv_rows(fields(UsageRow{}), all);
}

}  // namespace

std::optional<std::int64_t> parse_time(std::string_view text, std::int64_t now_ms) {
    if (auto t = relative(text, now_ms)) return t;
    if (auto t = date_time(text)) return t;
    if (auto seconds = digits(text)) return times(*seconds, detail::kSecondMs);
    return std::nullopt;
}

std::optional<GroupBy> parse_group_by(std::string_view text) {
    for (const auto by : {GroupBy::User, GroupBy::Realm, GroupBy::Day, GroupBy::Hour, GroupBy::Allocation, GroupBy::Node,
                          GroupBy::Trunk})
        if (text == to_string(by)) return by;
    return std::nullopt;
}

std::string_view to_string(GroupBy by) {
    switch (by) {
        case GroupBy::User: return "user";
        case GroupBy::Realm: return "realm";
        case GroupBy::Day: return "day";
        case GroupBy::Hour: return "hour";
        case GroupBy::Allocation: return "allocation";
        case GroupBy::Node: return "node";
        case GroupBy::Trunk: return "trunk";
    }
    return "user";
}

std::optional<Format> parse_format(std::string_view text) {
    if (text == "table") return Format::Table;
    if (text == "json") return Format::Json;
    if (text == "csv") return Format::Csv;
    return std::nullopt;
}

// Decimal units (prices are per 10^9 bytes), three significant digits: "1.21 MB", "12.1 GB".
std::string format_bytes(std::uint64_t b) {
    if (b < 1000) return fmt::format("{} B", b);
    static constexpr std::array<const char*, 6> kUnits = {"kB", "MB", "GB", "TB", "PB", "EB"};
    double v = static_cast<double>(b) / 1000;
    std::size_t u = 0;
    while (v >= 999.5 && u + 1 < kUnits.size()) v /= 1000, ++u;
    if (v < 9.995) return fmt::format("{:.2f} {}", v, kUnits[u]);
    if (v < 99.95) return fmt::format("{:.1f} {}", v, kUnits[u]);
    return fmt::format("{:.0f} {}", v, kUnits[u]);
}

std::string format_usage(const std::vector<UsageRow>& rows, Format f) { return format(rows, f, std::nullopt); }

std::string format_usage(const std::vector<UsageRow>& rows, Format f, GroupBy by) { return format(rows, f, by); }

}  // namespace turnbridge::accounting
