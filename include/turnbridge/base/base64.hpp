// SPDX-License-Identifier: Apache-2.0
#pragma once
// Base64 (RFC 4648 §4, with padding): the one encoder of TURN REST passwords, SIP digest
// REST passwords and Sec-WebSocket-Accept.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace turnbridge {

std::string base64_encode(std::span<const std::uint8_t> bytes);
// The bytes of padded base64 `text`; nullopt when it is not (a character outside the alphabet,
// a length that is not a multiple of 4, padding anywhere but at the end).
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text);

}  // namespace turnbridge
