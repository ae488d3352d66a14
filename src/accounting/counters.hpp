// SPDX-License-Identifier: Apache-2.0
#pragma once
// The 12 traffic counters in one order and under one set of names, shared by the store's
// columns and the report's JSON/CSV fields. Private to src/accounting.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "turnbridge/accounting/record.hpp"

namespace turnbridge::accounting::detail {

constexpr std::size_t kCounterKinds = 3;  // packets, payload bytes, wire bytes
constexpr std::size_t kCounters = kDirections * kCounterKinds;

// As in record.hpp: client->relay, relay->peer, peer->relay, relay->client.
constexpr std::array<std::string_view, kDirections> kDirectionNames = {"client_to_relay", "relay_to_peer",
                                                                       "peer_to_relay", "relay_to_client"};
constexpr std::array<std::string_view, kCounterKinds> kKindNames = {"packets", "payload_bytes", "wire_bytes"};

// Counter i is direction i / 3 and kind i % 3, e.g. 4 = relay_to_peer_payload_bytes.
inline std::string counter_name(std::size_t i) {
    return std::string(kDirectionNames[i / kCounterKinds]) + "_" + std::string(kKindNames[i % kCounterKinds]);
}

inline std::uint64_t& counter(Traffic& t, std::size_t i) {
    const std::size_t d = i / kCounterKinds;
    switch (i % kCounterKinds) {
        case 0: return t.packets[d];
        case 1: return t.payload_bytes[d];
        default: return t.wire_bytes[d];
    }
}

inline std::uint64_t counter(const Traffic& t, std::size_t i) { return counter(const_cast<Traffic&>(t), i); }

// Everything on the wire, in and out: what the server's interfaces carried for the relay.
inline std::uint64_t total_bytes(const Traffic& t) {
    std::uint64_t sum = 0;
    for (const auto w : t.wire_bytes) sum += w;
    return sum;
}

}  // namespace turnbridge::accounting::detail
