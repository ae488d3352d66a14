// SPDX-License-Identifier: Apache-2.0
#pragma once
// The UTC time texts of the admin API. Its JSON comes from the one writer, base/json.hpp
// (turnbridge::JsonWriter, found by name from this namespace).
#include <cstdint>
#include <string>

#include "turnbridge/base/json.hpp"

namespace turnbridge::admin {

// "2026-11-01T12:34:56Z" (ISO 8601 / RFC 3339, UTC, whole seconds) for unix milliseconds.
std::string iso8601_utc(std::int64_t unix_ms);
// "Sun, 01 Nov 2026 12:34:56 GMT" (RFC 9110 §5.6.7 IMF-fixdate).
std::string http_date(std::int64_t unix_ms);

}  // namespace turnbridge::admin
