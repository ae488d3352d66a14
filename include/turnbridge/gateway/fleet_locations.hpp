// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fleet mode (issue 15): which other nodes hold browsers' registrations, as the workers see it.
// The fleet shipper's thread reads PostgreSQL once a second and publishes an immutable
// snapshot here; a worker's SipRouter takes the pointer (one atomic load) when a trunk INVITE
// finds no local binding, and proxies the INVITE to the owners (fleet_proxy.cpp). No lock, no
// I/O, no clock: validity is a steady-clock deadline computed by the publisher.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/sip/types.hpp"

namespace turnbridge::gateway {

struct FleetPeer {
    std::string node;
    Endpoint sip;            // its first SIP listener (UDP): where proxied INVITEs go
    sip::Time live_until{};  // its last heartbeat + 3 s (issue 15: older is dead)
};

struct RemoteLocations {
    std::vector<FleetPeer> peers;                                   // every other node with a SIP address
    std::map<std::string, std::vector<std::size_t>, std::less<>> aors;   // "user@realm" -> indexes into peers

    // The live nodes holding a registration of `aor` at `now`.
    std::vector<const FleetPeer*> owners(std::string_view aor, sip::Time now) const;
    // Is `ip` another node's SIP address (dead or alive)? Its INVITEs are trusted like a trunk's.
    bool is_peer(const IpAddress& ip) const;
    // ... and alive at `now`.
    bool is_live_peer(const IpAddress& ip, sip::Time now) const;
};

class FleetLocations {
public:
    FleetLocations();   // draws the branch key (random_bytes)
    void publish(std::shared_ptr<const RemoteLocations> s) { snapshot_.store(std::move(s), std::memory_order_release); }
    std::shared_ptr<const RemoteLocations> snapshot() const { return snapshot_.load(std::memory_order_acquire); }

    // The proxy's Via branches name the flow their responses go back on (fleet_proxy.cpp); this
    // MAC (HMAC-SHA256 under a key of this process, 64 bits) makes a branch that names a flow
    // unforgeable, so that a response with a made-up Via cannot be routed into any flow (a
    // browser's WebSocket, a trunk's). One key per process: any worker checks any worker's branch.
    std::uint64_t branch_tag(std::string_view text) const;

private:
    std::atomic<std::shared_ptr<const RemoteLocations>> snapshot_;
    std::array<std::uint8_t, 32> branch_key_{};
};

}  // namespace turnbridge::gateway
