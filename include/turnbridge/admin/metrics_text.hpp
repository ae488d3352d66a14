// SPDX-License-Identifier: Apache-2.0
#pragma once
// Metrics in the Prometheus text exposition format 0.0.4, for GET /metrics.
#include <string>
#include <string_view>

#include "turnbridge/admin/backend.hpp"

namespace turnbridge::admin {

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Direction labels, in accounting::Traffic order (client->relay, relay->peer, peer->relay,
// relay->client); the allocations JSON uses the same words.
inline constexpr std::string_view kDirectionNames[] = {"client_to_relay", "relay_to_peer", "peer_to_relay",
                                                       "relay_to_client"};

// Every family has its # HELP and # TYPE lines, even with no samples yet.
std::string format_metrics(const Metrics& m);

// A label value with \, " and newline escaped (and bytes that are not UTF-8 replaced).
void append_label_value(std::string& out, std::string_view v);

}  // namespace turnbridge::admin
