// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <string>

#include "turnbridge/admin/usage_page.hpp"

using namespace turnbridge::admin;

namespace {
bool has(std::string_view page, std::string_view s) { return page.find(s) != std::string_view::npos; }
}  // namespace

TEST_CASE("the usage page is one self-contained document: no URL of another host") {
    const auto page = usage_page();
    CHECK(page.substr(0, 15) == "<!doctype html>");
    CHECK_FALSE(has(page, "http://"));
    CHECK_FALSE(has(page, "https://"));
    CHECK_FALSE(has(page, "//cdn"));
    CHECK_FALSE(has(page, "<script src"));
    CHECK_FALSE(has(page, "rel=\"stylesheet\""));
    CHECK_FALSE(has(page, "@import"));
    CHECK_FALSE(has(page, "url("));
    CHECK_FALSE(has(page, "@font-face"));
    CHECK(has(page, "<link rel=\"icon\" href=\"data:,\">"));  // no favicon request either
}

TEST_CASE("the usage page draws on a canvas and marks the body data-ready after the first draw") {
    const auto page = usage_page();
    CHECK(has(page, "<canvas id=\"chart\""));
    CHECK(has(page, "getContext('2d')"));
    CHECK(has(page, "setAttribute('data-ready', '1')"));
    // data-ready is set after drawChart() in the same function.
    const auto draw = page.find("drawChart();\n    drawLegend();");
    const auto ready = page.find("setAttribute('data-ready', '1')");
    REQUIRE(draw != std::string_view::npos);
    CHECK(draw < ready);
}

TEST_CASE("the usage page reads the API with the bearer token and can kick") {
    const auto page = usage_page();
    CHECK(has(page, "api/v1/usage?by=hour&since=7d"));
    CHECK(has(page, "api/v1/usage?by=user&since=7d"));
    CHECK(has(page, "api/v1/allocations"));
    CHECK(has(page, "'DELETE'"));
    CHECK(has(page, "Authorization: 'Bearer ' + TOKEN"));
    CHECK(has(page, "LIVE_EVERY_MS = 5000"));
    // Strings from the API go in as text: the script never assigns markup.
    CHECK_FALSE(has(page, "innerHTML"));
    CHECK_FALSE(has(page, "outerHTML"));
    CHECK_FALSE(has(page, "insertAdjacentHTML"));
    CHECK_FALSE(has(page, "document.write"));
}

TEST_CASE("the page's policy allows nothing from outside this server") {
    CHECK(has(kUsagePageCsp, "default-src 'none'"));
    CHECK(has(kUsagePageCsp, "connect-src 'self'"));
    CHECK_FALSE(has(kUsagePageCsp, "http"));
}

TEST_CASE("the page's script and style are allowed by SHA-256, never by 'unsafe-inline'") {
    CHECK_FALSE(has(kUsagePageCsp, "unsafe"));
    CHECK(has(kUsagePageCsp, "script-src 'sha256-"));
    CHECK(has(kUsagePageCsp, "style-src 'sha256-"));
    // Styles go through the CSSOM: a style attribute (markup or setAttribute) would be blocked.
    const auto page = usage_page();
    CHECK_FALSE(has(page, " style=\""));
    CHECK_FALSE(has(page, "style: '"));
    CHECK(has(page, "Object.assign(e.style, props[k])"));
}

TEST_CASE("the usage page's top users show gateway calls from the usage rows") {
    const auto page = usage_page();
    CHECK(has(page, "<th class=\"num\" title=\"Gateway calls started (answered)\">Calls</th>"));
    CHECK(has(page, "n(u.calls)"));
    CHECK(has(page, "n(u.answered_calls)"));
    CHECK(has(page, "fmtMinutes(n(u.call_minutes))"));
    // One cell per header in the loading row and the empty-table row.
    CHECK(has(page, "<td colspan=\"9\" class=\"empty\">"));
    CHECK(has(page, "fillBody($('users'), rows, 9,"));
}
