// SPDX-License-Identifier: Apache-2.0
#pragma once
// The gateway's SIP-over-UDP flows (issue 11), without I/O: remote address -> TransportId, for
// the sip_listen sockets. UDP sources can be forged, so the table is bounded and evicts: when
// it is full, a new source takes the place of the least recently used flow that nobody needs
// (the host's `busy` says which are needed: a trunk's, a live call's, a live transaction's).
// The host also closes a flow right after the datagram that made it when nothing came of it,
// so garbage leaves no lasting state, and sweeps flows idle for longer than `idle`.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <unordered_map>

#include "turnbridge/base/address.hpp"
#include "turnbridge/sip/action.hpp"

namespace turnbridge::sip {

class UdpFlows {
public:
    static constexpr std::size_t kDefaultCapacity = 4096;
    // At most this many of the oldest flows are looked at to make room: bounded work per datagram.
    static constexpr std::size_t kEvictScan = 16;

    struct Flow {
        TransportId id = 0;
        Endpoint remote;
        std::uint32_t socket = 0;   // which local socket it came on (the host's index)
        Time last_used{};
    };
    // Is this flow needed (never evicted while true)?
    using Busy = std::function<bool(const Flow&)>;
    struct Opened {
        TransportId id = 0;
        bool created = false;   // a new flow (`new_id` was taken)
    };

    explicit UdpFlows(std::size_t capacity = kDefaultCapacity) : capacity_(capacity == 0 ? 1 : capacity) {}
    void set_capacity(std::size_t n) { capacity_ = n == 0 ? 1 : n; }

    // The flow of `remote`, marked used now; or a new one with id `new_id` on `socket`. When the
    // table is full the least recently used flow that is not busy goes first (counted in
    // evicted()); nullopt if the kEvictScan oldest are all busy (counted in refused()).
    std::optional<Opened> open(Time now, const Endpoint& remote, std::uint32_t socket, TransportId new_id, const Busy& busy);
    const Flow* find(TransportId id) const;
    std::optional<TransportId> find(const Endpoint& remote) const;
    void close(TransportId id);
    // Closes flows unused for `idle` or longer that are not busy; returns how many.
    std::size_t expire(Time now, Duration idle, const Busy& busy);

    std::size_t size() const { return lru_.size(); }
    std::uint64_t evicted() const { return evicted_; }
    std::uint64_t refused() const { return refused_; }

private:
    using List = std::list<Flow>;   // most recently used first
    void erase(List::iterator it);

    std::size_t capacity_;
    List lru_;
    std::unordered_map<Endpoint, List::iterator> by_remote_;
    std::unordered_map<TransportId, List::iterator> by_id_;
    std::uint64_t evicted_ = 0;
    std::uint64_t refused_ = 0;
};

}  // namespace turnbridge::sip
