// SPDX-License-Identifier: Apache-2.0
#pragma once
// The usage page served at GET /: one self-contained HTML document (inline CSS and script, no
// external resources) that reads the JSON API and draws its chart on a canvas by hand. Its
// source is src/admin/usage_page.html; scripts/embed_page.py turns it into a .cpp at build time.
#include <string_view>

namespace turnbridge::admin {

extern const std::string_view kUsagePage;
// Response field for the page: default-src 'none', the page's own inline script and style by
// SHA-256 (no 'unsafe-inline'), and requests back to this server; nothing from anywhere else.
extern const std::string_view kUsagePageCsp;

inline std::string_view usage_page() { return kUsagePage; }

}  // namespace turnbridge::admin
