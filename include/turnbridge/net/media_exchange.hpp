// SPDX-License-Identifier: Apache-2.0
#pragma once
// Gateway media between threads (issue 4). A browser's TURN allocation lives on whichever worker
// its client reached; the gateway's calls live on worker 0. What an allocation sends to the
// gateway's media address is handed over here instead of leaving through a socket, and the
// gateway's answers come back the same way, to re-enter the allocation as peer data (so they are
// relayed and accounted like any peer's). One inbox per worker and one for the gateway, each a
// short-locked vector swapped out by its owner after a uv_async wake-up: no socket round trip,
// and no heap allocation per packet once the vectors have grown.
#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <uv.h>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/config/config.hpp"
#include "turnbridge/turn/relay_binder.hpp"
#include "turnbridge/turn/server.hpp"

namespace turnbridge::net {

struct MediaHandoff {
    unsigned worker = 0;           // the allocation's worker
    turn::RelayHandle relay = 0;   // the allocation's relay socket on that worker
    Endpoint relayed;              // the allocation's relayed address (the browser's relay candidate)
    Endpoint media;                // the gateway's media address (a call's browser-leg address)
    std::uint16_t size = 0;
    std::array<std::uint8_t, 1500> buf;
    std::span<const std::uint8_t> bytes() const { return {buf.data(), size}; }
};

class MediaExchange final : public turn::LocalPeers {
public:
    // Beyond this many waiting datagrams an inbox drops (a stalled thread must not grow memory).
    static constexpr std::size_t kMaxWaiting = 4096;

    // Media addresses: server.media_ip and server.media_ports (fixed until restart).
    MediaExchange(const config::Config& cfg, unsigned workers);

    bool is_local_ip(const IpAddress& ip) const override { return ip_ && ip == *ip_; }
    bool is_local(const Endpoint& peer) const override {
        return is_local_ip(peer.ip) && peer.port >= port_min_ && peer.port <= port_max_;
    }

    unsigned gateway_box() const { return static_cast<unsigned>(boxes_.size() - 1); }
    // The owner of inbox `box` (a worker index, or gateway_box()) wakes on `wake`; detach before
    // closing it. Posts to a detached inbox are dropped.
    void attach(unsigned box, uv_async_t* wake);
    void detach(unsigned box);
    // Copies the datagram into inbox `box`; false when it was dropped (detached, full, too big:
    // like a full socket buffer, the media's own loss concealment covers it).
    bool post(unsigned box, unsigned worker, turn::RelayHandle relay, const Endpoint& relayed, const Endpoint& media,
              std::span<const std::uint8_t> bytes);
    // Swaps inbox `box` with `into` (cleared first): the owner then reads `into` unlocked.
    void take(unsigned box, std::vector<MediaHandoff>& into);

private:
    struct Box {
        std::mutex mu;
        uv_async_t* wake = nullptr;
        std::vector<MediaHandoff> waiting;
    };
    std::optional<IpAddress> ip_;
    std::uint16_t port_min_ = 0, port_max_ = 0;
    std::vector<Box> boxes_;
};

}  // namespace turnbridge::net
