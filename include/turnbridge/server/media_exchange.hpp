// SPDX-License-Identifier: Apache-2.0
#pragma once
// Gateway media between threads (issue 4, issue 12). A browser's TURN allocation lives on whichever
// worker its client reached; the call it reaches lives on the worker its SIP was placed on (every
// worker hosts a gateway). What an allocation sends to a gateway media address is handed over
// here to the worker owning that media port (a port -> worker table of atomics, written when a
// call opens and closes its sockets) instead of leaving through a socket, and the gateway's
// answers come back the same way to the allocation's worker, to re-enter the allocation as peer
// data (so they are relayed and accounted like any peer's). Two inboxes per worker: one for its
// allocations, one for its gateway; each inbox has one preallocated single-producer/single-
// consumer ring per worker that posts to it, itself included (N x N: no ring has two producers),
// drained by its owner after a uv_async wake-up: no socket round trip, no lock and no heap
// allocation per packet.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <uv.h>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/base/spsc_ring.hpp"
#include "turnbridge/config/config.hpp"
#include "turnbridge/turn/relay_binder.hpp"
#include "turnbridge/turn/server.hpp"

namespace turnbridge::server {

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
    // Beyond this many waiting datagrams from one thread an inbox drops (a stalled thread must
    // not grow memory): 1,024 datagrams are 20 ms of media for 1,024 calls. With many workers each
    // ring holds less (2 * N * N rings), at least kMinWaiting.
    static constexpr std::size_t kMaxWaiting = 1024;
    static constexpr std::size_t kMinWaiting = 256;
    static constexpr unsigned kNoWorker = 0xFFFF;

    // Media addresses: server.media_ip and server.media_ports (fixed until restart).
    MediaExchange(const config::Config& cfg, unsigned workers);

    bool is_local_ip(const IpAddress& ip) const override { return ip_ && ip == *ip_; }
    bool is_local(const Endpoint& peer) const override {
        return is_local_ip(peer.ip) && peer.port >= port_min_ && peer.port <= port_max_;
    }

    unsigned workers() const { return workers_; }
    // Inboxes: worker w's allocations are box w, its gateway's calls gateway_box(w).
    unsigned gateway_box(unsigned worker) const { return workers_ + worker; }
    // The worker whose call owns media port `port` (kNoWorker: none). Any thread.
    unsigned port_owner(std::uint16_t port) const {
        if (port < port_min_ || port > port_max_) return kNoWorker;
        return owners_[port - port_min_].load(std::memory_order_acquire);
    }
    // A call of `worker` bound / released media port `port` (the worker's own thread).
    void set_port_owner(std::uint16_t port, unsigned worker);
    void clear_port_owner(std::uint16_t port, unsigned worker);
    // The next media port to try, a cursor shared by every worker's calls (a port another
    // worker holds fails to bind and is skipped).
    std::uint32_t next_port() { return cursor_.fetch_add(1, std::memory_order_relaxed); }
    // The owner of inbox `box` wakes on `wake`; detach (on
    // the owner's thread) before closing it: it waits for a post in progress to finish, so no
    // thread wakes a closed handle. Posts to a detached inbox are dropped.
    void attach(unsigned box, uv_async_t* wake);
    void detach(unsigned box);
    // Copies the datagram into inbox `box`; false when it was dropped (detached, full, too big:
    // like a full socket buffer, the media's own loss concealment covers it). `poster`: the
    // calling thread's worker (each (poster, inbox) pair has its own ring, so each ring has one
    // producer); `worker` and `relay`: the allocation's.
    bool post(unsigned box, unsigned poster, unsigned worker, turn::RelayHandle relay, const Endpoint& relayed,
              const Endpoint& media, std::span<const std::uint8_t> bytes);
    // Moves what waits in inbox `box` into `into` (cleared first; it keeps its capacity, so
    // after the first batches this allocates nothing). Owner's thread only.
    void take(unsigned box, std::vector<MediaHandoff>& into);

private:
    struct Box {
        std::atomic<uv_async_t*> wake{nullptr};
        std::atomic<unsigned> posting{0};     // posts in progress (detach waits for them)
        std::atomic<bool> signalled{false};   // a wake-up is on its way: later posts need not send one
        std::vector<std::unique_ptr<base::SpscRing<MediaHandoff>>> from;   // by poster worker
    };
    std::optional<IpAddress> ip_;
    std::uint16_t port_min_ = 0, port_max_ = 0;
    unsigned workers_ = 0;
    std::unique_ptr<std::atomic<std::uint16_t>[]> owners_;   // by port - port_min_
    std::atomic<std::uint32_t> cursor_{0};
    std::unique_ptr<Box[]> boxes_;
    unsigned count_ = 0;   // boxes: one per worker's allocations, then one per worker's gateway
};

}  // namespace turnbridge::server
