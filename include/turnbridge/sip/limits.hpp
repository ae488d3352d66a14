// SPDX-License-Identifier: Apache-2.0
#pragma once
// The gateway's bounds on what outsiders can make it hold or send (issue 11), each counted when
// it bites; /metrics shows them as turnbridge_sip_limited_total{limit="<name>"}.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace turnbridge::sip {

enum class Limit : std::size_t {
    UdpFlowEvicted,    // server.sip_udp_flows: an idle flow made room for a new source
    UdpFlowFull,       // ... every flow looked at was in use: the datagram was dropped
    RequestRate,       // server.sip_requests_per_second: a source's request dropped unanswered
    StrangerSilent,    // a request over UDP from no trunk left unanswered (sip_hide_from_strangers,
                       // or its answer would have been larger than it)
    Transactions,      // server.sip_transactions: a new server transaction got 503
    Registrations,     // server.sip_registrations: a new binding got 503
    CallsPerUser,      // gateway.max_calls_per_user: an INVITE got 486
    CallsPerRealm,     // gateway.max_calls: an INVITE got 503
    FleetRefused,      // fleet mode: a response with a Via branch we did not make, or a request
                       // routed through us from no trunk or node, or toward neither: dropped; an
                       // INVITE from a node's address but no live node over UDP: 403
    NotifyDropped,     // a trunk's NOTIFY of a transfer not relayed to the browser (no news, or
                       // past the kTransferNotifies of one transfer)
    ReliableDropped,   // a trunk's reliable provisional past Call::kMaxPracks in one call: no PRACK
    kCount,
};

inline constexpr std::array<std::string_view, static_cast<std::size_t>(Limit::kCount)> kLimitNames = {
    "udp_flow_evicted", "udp_flow_full", "request_rate", "stranger_silent",
    "transactions",     "registrations", "calls_per_user", "calls_per_realm", "fleet_refused", "notify_dropped",
    "reliable_dropped"};

using LimitCounts = std::array<std::uint64_t, static_cast<std::size_t>(Limit::kCount)>;

}  // namespace turnbridge::sip
