// SPDX-License-Identifier: Apache-2.0
#pragma once
// The one seam through which the TURN core obtains relayed transport addresses. The net layer
// implements it with real UDP sockets; unit tests with a fake. Called only on Allocate/teardown.
#include <cstdint>

#include "turnbridge/base/address.hpp"
#include "turnbridge/base/result.hpp"

namespace turnbridge::turn {

using RelayHandle = std::uint32_t;  // opaque to the core; the net layer maps it to a socket

struct RelaySocket {
    RelayHandle handle = 0;
    Endpoint local;  // the address the socket is bound to (relay_ip:port)
    // One of a few sockets shared by many allocations (server.relay_sharing): datagrams on it
    // are told apart by the peer's exact address and port, not by the socket.
    bool shared = false;
};

class RelayBinder {
public:
    virtual ~RelayBinder() = default;
    // Binds a relay socket of family `f` in the relay port range. With `even_port` the port is
    // even; with `reserve_next` port+1 is also held and `token` set to an 8-byte reservation
    // token for it (RFC 8656 §7.2, §14.6 EVEN-PORT R bit). Fails with InsufficientCapacity.
    virtual Result<RelaySocket> bind(Family f, bool even_port, bool reserve_next,
                                     std::uint64_t& token) = 0;
    // Takes over the socket held for `token` (RFC 8656 §14.9). Fails with InsufficientCapacity
    // when the token is unknown or expired.
    virtual Result<RelaySocket> claim(std::uint64_t token) = 0;
    // A shared relay socket of family `f` (server.relay_sharing), with `shared` set. Releasing
    // its handle ends this allocation's use only; the socket stays open for the others. A binder
    // without shared sockets hands out a dedicated one. Fails with InsufficientCapacity.
    virtual Result<RelaySocket> bind_shared(Family f) {
        std::uint64_t unused = 0;
        return bind(f, false, false, unused);
    }
    virtual void release(RelayHandle handle) = 0;
};

}  // namespace turnbridge::turn
