// SPDX-License-Identifier: Apache-2.0
#pragma once
// Which of a realm's trunks a call uses (issue 14, [[realm."X".gateway.trunks]]). A trunk is a
// config::Realm whose `gateway` holds that trunk's keys (config::Realm::trunks), so everything
// that sent a call toward "the realm's trunk" takes one of these instead. Outbound, the trunk
// with the longest prefix of the dialled number, else the first (the default); inbound, the
// trunk the INVITE came from (SipRouter::on_trunk_invite). Sans-I/O, no allocation.
#include <cstddef>
#include <span>
#include <string_view>

#include "turnbridge/config/config.hpp"

namespace turnbridge::gateway {

// Every trunk of `realm`: realm.trunks, or the realm itself when that list is empty (a realm
// built by hand, as in unit tests, is its own single trunk).
std::span<const config::Realm> trunks_of(const config::Realm& realm);
// The trunk an outbound call to `number` (as dialled: "+442071234567") takes.
const config::Realm& choose_trunk(const config::Realm& realm, std::string_view number);
// The trunk at `index` (config::Gateway::trunk_index), or nullptr (gone in a reload).
const config::Realm* trunk_at(const config::Realm& realm, std::size_t index);

}  // namespace turnbridge::gateway
