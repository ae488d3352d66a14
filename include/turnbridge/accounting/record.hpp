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

namespace turnbridge::accounting {

// Quality of one leg and direction of a call (issue 14): RTP packets lost (RFC 3550 §6.4.1),
// loss %, interarrival jitter (§A.8) and the MOS estimate (gateway/call_quality.hpp). Not
// measured: no RTP heard, or (out) no RTCP report from the peer; stored as NULL.
struct CallQuality {
    bool measured = false;
    std::int64_t lost = 0;
    double loss_pct = 0, jitter_ms = 0, mos = 0;
};

// CallRecord::quality slots, as the packet counters: (leg, direction).
constexpr const char* kCallQualityPrefixes[] = {"browser_in", "browser_out", "trunk_in", "trunk_out"};

// One gateway call (issue 4), written when it ends: who made or took it, how long it lasted,
// its codecs and the media bytes of both legs. The browser leg's bytes are also in the TURN
// allocation that carried them, when the call was relayed; `relayed` says so.
struct CallRecord {
    std::string id;           // unique across restarts, like AllocationRecord::id
    std::string realm;
    std::string account;      // the browser user (static user or REST user id)
    std::string direction;    // "outbound" (browser -> trunk) | "inbound" (trunk -> browser)
    std::string remote;       // the number called (outbound) or the caller (inbound)
    std::int64_t start_ms = 0;   // INVITE received, unix milliseconds
    std::int64_t answer_ms = 0;  // 200 OK; 0 = never answered
    std::int64_t end_ms = 0;
    int status = 0;              // final status of the call's INVITE (200, 486, 487, 503...)
    std::string codecs;          // "opus/PCMU": browser leg / trunk leg
    std::string end_reason;      // "bye-browser", "bye-trunk", "cancel", "failed: <why>", "shutdown"...
    bool relayed = false;        // the browser leg came through one of our TURN allocations
    // Datagrams on the wire, per leg and direction (in = toward turnbridge).
    std::uint64_t browser_in_packets = 0, browser_in_bytes = 0, browser_out_packets = 0, browser_out_bytes = 0;
    std::uint64_t trunk_in_packets = 0, trunk_in_bytes = 0, trunk_out_packets = 0, trunk_out_bytes = 0;
    std::array<CallQuality, 4> quality{};  // kCallQualityPrefixes order
    // The trunk's name (issue 14: [[realm.X.gateway.trunks]] name, "default" for the single-trunk
    // form); "" for a call with no trunk leg (a browser's call to an agent, the test line) and
    // for calls recorded before schema version 6.
    std::string trunk;
    std::int64_t duration_ms() const { return answer_ms == 0 ? 0 : end_ms - answer_ms; }
};

}  // namespace turnbridge::accounting
