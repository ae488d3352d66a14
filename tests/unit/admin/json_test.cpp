// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <string>

#include "turnbridge/admin/json.hpp"

using namespace turnbridge::admin;

TEST_CASE("UTC time texts: ISO 8601 and IMF-fixdate, leap days and before 1970") {
    CHECK(iso8601_utc(0) == "1970-01-01T00:00:00Z");
    CHECK(iso8601_utc(1793535296000) == "2026-11-01T12:14:56Z");
    CHECK(iso8601_utc(1793535296999) == "2026-11-01T12:14:56Z");
    CHECK(iso8601_utc(951782400000) == "2000-02-29T00:00:00Z");
    CHECK(iso8601_utc(-1000) == "1969-12-31T23:59:59Z");
    CHECK(iso8601_utc(4102444799000) == "2099-12-31T23:59:59Z");
    CHECK(http_date(784111777000) == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(http_date(951782400000) == "Tue, 29 Feb 2000 00:00:00 GMT");
    CHECK(http_date(-1000) == "Wed, 31 Dec 1969 23:59:59 GMT");
}
