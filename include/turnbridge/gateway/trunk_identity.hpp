// SPDX-License-Identifier: Apache-2.0
#pragma once
// A gateway realm's identity and number settings applied to one call (issue 13): which route an
// inbound DID takes, however the carrier spells it, and what an outbound call says about its
// caller toward the trunk. The string work itself is sip/numbers.hpp.
#include <string>
#include <vector>

#include "turnbridge/config/config.hpp"
#include "turnbridge/sip/call.hpp"

namespace turnbridge::gateway {

sip::NumberPlan number_plan(const config::Gateway& gw);

// The users an inbound `did` rings: its routes key spelled the same, else any key that is the
// same number (sip::same_number under the realm's plan); nullptr when none.
const std::vector<std::string>* find_route(const config::Gateway& gw, const std::string& did);

// `account` with the realm's identity settings, and the caller for this call: the browser's
// From user when caller_ids lists it (in any spelling), else account.caller_id as it was.
sip::TrunkAccount with_identity(const config::Gateway& gw, const sip::Message& invite, sip::TrunkAccount account);
// As above with the caller's number itself (an inbound call's transfer fallback calls as its DID).
sip::TrunkAccount with_identity(const config::Gateway& gw, std::string_view caller, sip::TrunkAccount account);

}  // namespace turnbridge::gateway
