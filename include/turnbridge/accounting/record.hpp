// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the store keeps of one allocation: identity, where it ran, and its counters. Workers
// build these from turn::Allocation off the hot path (at creation, each flush and at the end).
#include <array>
#include <cstdint>
#include <string>

namespace turnbridge::accounting {

// Directions as in turn::Direction: client->relay, relay->peer, peer->relay, relay->client.
constexpr std::size_t kDirections = 4;

struct Traffic {
    std::array<std::uint64_t, kDirections> packets{};
    std::array<std::uint64_t, kDirections> payload_bytes{};
    std::array<std::uint64_t, kDirections> wire_bytes{};
    // Egress of the server (what providers bill): relay->peer plus relay->client, on the wire.
    std::uint64_t egress_bytes() const { return wire_bytes[1] + wire_bytes[3]; }
};

struct AllocationRecord {
    std::string id;          // unique across restarts, e.g. "<instance hex>-<allocation id hex>"
    std::string account;     // who pays: static user or REST user id; "" = the realm alone
    std::string username;    // USERNAME as sent
    std::string realm;
    std::string client;      // client address "ip:port"
    std::string transport;   // "udp" | "tcp" | "tls"
    std::string relay;       // relayed address(es), comma-separated
    std::int64_t start_ms = 0;  // unix milliseconds
    std::int64_t end_ms = 0;    // 0 while open
    std::uint32_t peers = 0;    // distinct peer addresses that got a permission
    std::string end_reason;     // "" while open; expired, refreshed-to-0, client-gone, kicked,
                                // shutdown, quota, crashed
    Traffic traffic;            // totals since start (not deltas)
};

}  // namespace turnbridge::accounting
