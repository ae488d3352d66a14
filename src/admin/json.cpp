// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/admin/json.hpp"

#include <fmt/format.h>

namespace turnbridge::admin {
namespace {

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
