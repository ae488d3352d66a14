// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/admin/json.hpp"

#include <cmath>
#include <fmt/format.h>

namespace turnbridge::admin {
namespace {

bool continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

struct Civil {
    std::int64_t year;
    unsigned month, day, hour, minute, second, weekday;  // weekday 0 = Sunday
};

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Proleptic Gregorian calendar from days since 1970-01-01 (H. Hinnant's civil_from_days).
Civil civil(std::int64_t unix_ms) {
    const std::int64_t secs = floor_div(unix_ms, 1000);
    std::int64_t z = floor_div(secs, 86400);
    const std::int64_t sod = secs - z * 86400;
    Civil c{};
    c.weekday = static_cast<unsigned>(((z % 7) + 11) % 7);  // 1970-01-01 was a Thursday
    c.hour = static_cast<unsigned>(sod / 3600);
    c.minute = static_cast<unsigned>(sod % 3600 / 60);
    c.second = static_cast<unsigned>(sod % 60);
    z += 719468;
    const std::int64_t era = floor_div(z, 146097);
    const std::int64_t doe = z - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    c.day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
    c.month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
    c.year = yoe + era * 400 + (c.month <= 2 ? 1 : 0);
    return c;
}

}  // namespace

std::size_t utf8_char_length(std::string_view s) {
    if (s.empty()) return 0;
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char c = b(0);
    if (c < 0x80) return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (RFC 3629 §4)
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;   // no overlong forms
        if (c == 0xED) hi = 0x9F;   // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;   // nothing above U+10FFFF
    } else {
        return 0;
    }
    if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
    for (std::size_t i = 2; i < n; ++i)
        if (!continuation(b(i))) return 0;
    return n;
}

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    while (!s.empty()) {
        const auto c = static_cast<unsigned char>(s[0]);
        std::size_t n = 1;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '<': case '>': case '&': out += fmt::format("\\u{:04x}", c); break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    out += fmt::format("\\u{:04x}", c);
                } else if (c < 0x80) {
                    out.push_back(static_cast<char>(c));
                } else if ((n = utf8_char_length(s)) != 0) {
                    out.append(s.substr(0, n));
                } else {
                    out += "\\ufffd";
                    n = 1;
                }
        }
        s.remove_prefix(n);
    }
    out.push_back('"');
}

void JsonWriter::separate() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (first_.empty()) return;
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
}

JsonWriter& JsonWriter::begin_object() {
    separate();
    out_.push_back('{');
    first_.push_back(true);
    return *this;
}

JsonWriter& JsonWriter::end_object() {
    out_.push_back('}');
    first_.pop_back();
    return *this;
}

JsonWriter& JsonWriter::begin_array() {
    separate();
    out_.push_back('[');
    first_.push_back(true);
    return *this;
}

JsonWriter& JsonWriter::end_array() {
    out_.push_back(']');
    first_.pop_back();
    return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
    separate();
    append_json_string(out_, k);
    out_.push_back(':');
    after_key_ = true;
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
    separate();
    append_json_string(out_, s);
    return *this;
}

JsonWriter& JsonWriter::value(std::uint64_t n) {
    separate();
    fmt::format_to(std::back_inserter(out_), "{}", n);
    return *this;
}

JsonWriter& JsonWriter::value(std::int64_t n) {
    separate();
    fmt::format_to(std::back_inserter(out_), "{}", n);
    return *this;
}

JsonWriter& JsonWriter::value(double d) {
    if (!std::isfinite(d)) return null();
    separate();
    // Shortest text that reads back as the same double; fmt never writes a bare "." or "inf".
    fmt::format_to(std::back_inserter(out_), "{}", d);
    return *this;
}

JsonWriter& JsonWriter::value(bool b) {
    separate();
    out_ += b ? "true" : "false";
    return *this;
}

JsonWriter& JsonWriter::null() {
    separate();
    out_ += "null";
    return *this;
}

std::string iso8601_utc(std::int64_t unix_ms) {
    const Civil c = civil(unix_ms);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", c.year, c.month, c.day, c.hour, c.minute, c.second);
}

std::string http_date(std::int64_t unix_ms) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const Civil c = civil(unix_ms);
    return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT", kDays[c.weekday], c.day, kMonths[c.month - 1],
                       c.year, c.hour, c.minute, c.second);
}

}  // namespace turnbridge::admin
