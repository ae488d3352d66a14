// SPDX-License-Identifier: Apache-2.0
// SipRouter's one routing decision for the built-in test line (issue 16): in a realm with
// gateway.test_numbers, a browser's call to echo, 9196, tone or dtmf leaves over UDP toward the
// test line's address instead of the realm's trunk, and is otherwise an ordinary trunk call.
#include <fmt/format.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/gateway/test_line.hpp"

namespace turnbridge::gateway {

bool SipRouter::to_test_line(const config::Realm& realm, std::string_view dialled) const {
    return realm.gateway.test_numbers && test_line_ && test_number(dialled).has_value();
}

std::optional<SipRouter::TrunkLeg> SipRouter::test_line_leg() {
    const Endpoint to = *test_line_;
    auto flow = test_line_flow_ ? test_line_flow_(to) : std::nullopt;
    if (!flow) {
        log::warn("gateway: no UDP flow toward the test line at {} (is a sip_listen address of its family set?)",
                  to.to_string());
        return std::nullopt;
    }
    return TrunkLeg{to,
                    sip::LegAddress{*flow, false, marked(trunk_local(config::SipTrunk::Transport::Udp, false, std::nullopt, "turnbridge"))},
                    "sip",
                    to.to_string(),
                    ";transport=udp",
                    std::nullopt};
}

}  // namespace turnbridge::gateway
