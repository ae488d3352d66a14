// SPDX-License-Identifier: Apache-2.0
// Fuzz target: libosip2's SDP parser as wrapped by the gateway, then both answerers on whatever
// parses (the trunk's also with SDES-SRTP, so a=crypto lines reach parse_crypto); every answer we
// produce must parse again, and its a=crypto too.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "turnbridge/gateway/browser_sdp.hpp"
#include "turnbridge/gateway/trunk_sdp.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto sdp = parse_sdp(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!sdp) return 0;
    LocalMedia local;
    local.ice = {"ufragabc", "passwordpasswordpassword"};
    local.fingerprint_sha256 = "00:11";
    local.address = Endpoint{IpAddress::v4(192, 0, 2, 1), 5000};
    if (auto a = answer_browser_offer(*sdp, local); a && !parse_sdp(a->sdp)) __builtin_trap();
    (void)accept_browser_answer(*sdp, local);
    TrunkLocal trunk;
    trunk.address = local.address;
    if (auto a = answer_trunk_offer(*sdp, trunk); a && !parse_sdp(a->sdp)) __builtin_trap();
    (void)accept_trunk_answer(*sdp, trunk);
    trunk.crypto = offer_crypto([](std::span<std::uint8_t> out) { for (auto& b : out) b = 0x5a; });
    for (auto mode : {SrtpMode::Optional, SrtpMode::Required}) {
        trunk.srtp = mode;
        if (auto a = answer_trunk_offer(*sdp, trunk)) {
            auto again = parse_sdp(a->sdp);
            if (!again) __builtin_trap();
            for (const auto& m : again->media)
                for (const auto& c : m.crypto)
                    if (!parse_crypto(c)) __builtin_trap();
        }
        (void)accept_trunk_answer(*sdp, trunk);
    }
    return 0;
}
