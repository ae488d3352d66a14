// SPDX-License-Identifier: Apache-2.0
#pragma once
// The usage page served at GET /: one self-contained HTML document (inline CSS and script, no
// external resources) that reads the JSON API and draws its chart on a canvas by hand.
#include <string_view>

namespace turnbridge::admin {

std::string_view usage_page();

// Response fields for the page: it may load nothing from anywhere but this server.
inline constexpr std::string_view kUsagePageCsp =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace turnbridge::admin
