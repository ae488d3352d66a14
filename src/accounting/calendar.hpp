// SPDX-License-Identifier: Apache-2.0
#pragma once
// UTC calendar arithmetic on unix milliseconds (proleptic Gregorian, no time zones, no libc),
// after Howard Hinnant's days_from_civil / civil_from_days. Private to src/accounting.
#include <cstdint>
#include <fmt/format.h>
#include <string>

namespace turnbridge::accounting::detail {

constexpr std::int64_t kSecondMs = 1000;
constexpr std::int64_t kMinuteMs = 60 * kSecondMs;
constexpr std::int64_t kHourMs = 60 * kMinuteMs;
constexpr std::int64_t kDayMs = 24 * kHourMs;

// Rounds toward minus infinity, so times before 1970 land in the right hour too.
constexpr std::int64_t floor_to(std::int64_t ms, std::int64_t unit) {
    const std::int64_t q = ms / unit;
    return (q * unit > ms ? q - 1 : q) * unit;
}

struct CivilDate {
    std::int64_t year;
    unsigned month;  // 1..12
    unsigned day;    // 1..31
};

constexpr bool is_leap(std::int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

constexpr unsigned days_in_month(std::int64_t y, unsigned m) {
    constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// Days since 1970-01-01.
constexpr std::int64_t days_from_civil(CivilDate c) {
    const std::int64_t y = c.year - (c.month <= 2 ? 1 : 0);
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (c.month > 2 ? c.month - 3 : c.month + 9) + 2) / 5 + c.day - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

constexpr CivilDate civil_from_days(std::int64_t z) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return CivilDate{static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

// "2026-11-01" for the UTC day containing `ms`.
inline std::string day_key(std::int64_t ms) {
    const CivilDate c = civil_from_days(floor_to(ms, kDayMs) / kDayMs);
    return fmt::format("{:04}-{:02}-{:02}", c.year, c.month, c.day);
}

// "2026-11-01T13:00Z" for the UTC hour containing `ms`.
inline std::string hour_key(std::int64_t ms) {
    const std::int64_t hour = floor_to(ms, kHourMs);
    return fmt::format("{}T{:02}:00Z", day_key(hour), (hour - floor_to(hour, kDayMs)) / kHourMs);
}

// "2026-11-01T13:04:05Z" (RFC 3339, UTC, whole seconds) for `ms`.
inline std::string time_key(std::int64_t ms) {
    const std::int64_t s = (ms - floor_to(ms, kDayMs)) / kSecondMs;
    return fmt::format("{}T{:02}:{:02}:{:02}Z", day_key(ms), s / 3600, s / 60 % 60, s % 60);
}

}  // namespace turnbridge::accounting::detail
