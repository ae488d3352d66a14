// SPDX-License-Identifier: Apache-2.0
#pragma once
// %XX escapes (RFC 3986 §2.1), as URLs (the admin API's targets) and SIP URIs (RFC 3261 §19.1.2:
// a Refer-To's ?Replaces= header) carry them.
#include <optional>
#include <string>
#include <string_view>

namespace turnbridge {

// Decodes %XX escapes (and '+' as a space when `plus_is_space`); nullopt on a bad escape or a
// decoded NUL.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

}  // namespace turnbridge
