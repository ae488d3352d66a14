// SPDX-License-Identifier: Apache-2.0
// The usage report's text: parsing --since/--until/--by/--format, and rows as an aligned table,
// JSON or CSV (turnbridge(8), report).
#include "turnbridge/accounting/usage.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <fmt/format.h>
#include <limits>

#include "calendar.hpp"
#include "counters.hpp"

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

// Names and user names come from clients: no control characters reach the terminal.
std::string printable(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
    return out;
}

std::size_t utf8_width(std::string_view s) {
    return static_cast<std::size_t>(
        std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string_view first_column(std::optional<GroupBy> by) {
    if (!by) return "KEY";
    switch (*by) {
        case GroupBy::User: return "USER";
        case GroupBy::Realm: return "REALM";
        case GroupBy::Day: return "DAY";
        case GroupBy::Hour: return "HOUR";
        case GroupBy::Allocation: return "ALLOCATION";
    }
    return "KEY";
}

// UP is the client's leg toward the relay, DOWN the relay's leg toward the client: there
// payload and wire differ by the TURN framing. TOTAL is the wire bytes of all four directions.
std::string table(const std::vector<UsageRow>& rows, std::optional<GroupBy> by) {
    const bool realm_column = by != GroupBy::Realm;
    std::vector<std::vector<std::string>> cells;
    std::vector<std::string> header = {std::string(first_column(by)), "REALM", "ALLOCATIONS", "MINUTES",
                                       "UP PAYLOAD", "UP WIRE", "DOWN PAYLOAD", "DOWN WIRE", "TOTAL", "COST"};
    cells.push_back(header);
    for (const auto& r : rows) {
        const Traffic& t = r.traffic;
        cells.push_back({printable(r.key), printable(r.realm), fmt::format("{}", r.allocations),
                         fmt::format("{:.1f} min", r.relayed_minutes), format_bytes(t.payload_bytes[0]),
                         format_bytes(t.wire_bytes[0]), format_bytes(t.payload_bytes[3]), format_bytes(t.wire_bytes[3]),
                         format_bytes(detail::total_bytes(t)), human_cost(r.cost, r.currency)});
    }
    std::vector<std::size_t> width(header.size(), 0);
    for (const auto& line : cells)
        for (std::size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], utf8_width(line[c]));
    std::string out;
    for (const auto& line : cells) {
        std::string text;
        for (std::size_t c = 0; c < line.size(); ++c) {
            if (c == 1 && !realm_column) continue;
            const std::string pad(width[c] - utf8_width(line[c]), ' ');
            if (!text.empty()) text += "  ";
            text += c < 2 ? line[c] + pad : pad + line[c];  // text left, numbers right
        }
        out += text + "\n";
    }
    return out;
}

// --- JSON and CSV -----------------------------------------------------------------------------

// To `decimals` places, so that JSON and CSV show 0.0167 rather than 0.016666666666666666.
double rounded(double v, int decimals) {
    const double scale = std::pow(10.0, decimals);
    return std::round(v * scale) / scale;
}

std::string number(double v) { return fmt::format("{}", v); }

struct Field {
    std::string name;
    bool text;
    std::string value;
};

std::vector<Field> fields(const UsageRow& r) {
    std::vector<Field> out = {
        {"key", true, r.key},
        {"realm", true, r.realm},
        {"allocations", false, fmt::format("{}", r.allocations)},
        {"relayed_minutes", false, number(rounded(r.relayed_minutes, 4))},
    };
    for (std::size_t i = 0; i < kCounters; ++i)
        out.push_back({detail::counter_name(i), false, fmt::format("{}", counter(r.traffic, i))});
    out.push_back({"total_bytes", false, fmt::format("{}", detail::total_bytes(r.traffic))});
    out.push_back({"egress_bytes", false, fmt::format("{}", r.traffic.egress_bytes())});
    out.push_back({"cost", false, number(rounded(r.cost, 6))});
    out.push_back({"currency", true, r.currency});
    return out;
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default: out += c < 0x20 ? fmt::format("\\u{:04x}", c) : std::string(1, ch);
        }
    }
    return out + "\"";
}

std::string json(const std::vector<UsageRow>& rows) {
    if (rows.empty()) return "[]\n";
    std::string out = "[\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        out += "  {";
        bool first = true;
        for (const auto& f : fields(rows[i])) {
            out += fmt::format("{}{}: {}", first ? "" : ", ", json_string(f.name), f.text ? json_string(f.value) : f.value);
            first = false;
        }
        out += i + 1 < rows.size() ? "},\n" : "}\n";
    }
    return out + "]\n";
}

// RFC 4180 §2: a field with a comma, quote or line break is quoted, its quotes doubled.
std::string csv_field(std::string_view s) {
    if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
    std::string out = "\"";
    for (const char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

// RFC 4180 §2: CRLF ends every record, the header included.
std::string csv(const std::vector<UsageRow>& rows) {
    std::string out;
    const auto line = [&](const std::vector<Field>& fs, bool names) {
        for (std::size_t i = 0; i < fs.size(); ++i) {
            if (i) out += ',';
            out += csv_field(names ? fs[i].name : fs[i].value);
        }
        out += "\r\n";
    };
    line(fields(UsageRow{}), true);
    for (const auto& r : rows) line(fields(r), false);
    return out;
}

std::string format(const std::vector<UsageRow>& rows, Format f, std::optional<GroupBy> by) {
    switch (f) {
        case Format::Json: return json(rows);
        case Format::Csv: return csv(rows);
        case Format::Table: break;
    }
    return table(rows, by);
}

}  // namespace

std::optional<std::int64_t> parse_time(std::string_view text, std::int64_t now_ms) {
    if (auto t = relative(text, now_ms)) return t;
    if (auto t = date_time(text)) return t;
    if (auto seconds = digits(text)) return times(*seconds, detail::kSecondMs);
    return std::nullopt;
}

std::optional<GroupBy> parse_group_by(std::string_view text) {
    for (const auto by : {GroupBy::User, GroupBy::Realm, GroupBy::Day, GroupBy::Hour, GroupBy::Allocation})
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
