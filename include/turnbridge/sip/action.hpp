// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the SIP cores hand back to the net layer and the call layer (sans-I/O): bytes to send,
// when to call on_timer next, and SIP events.
#include <cstdint>
#include <string>
#include <variant>

#include "turnbridge/sip/message.hpp"

namespace turnbridge::sip {

// The net layer's name for a flow: one WebSocket connection, one TCP/TLS connection, or one
// (UDP socket, remote address) pair toward the trunk. Opaque here.
using TransportId = std::uint64_t;

struct Send {
    TransportId transport = 0;
    std::string bytes;             // one SIP message (the net layer frames it for WebSocket)
};
struct WakeAt {
    Time when;                     // call on_timer(now >= when); replaces any earlier WakeAt
};
// A new request for the TU. `tx` names its server transaction (respond() with it); empty for
// an ACK to a 2xx, which has no transaction of its own (RFC 3261 §17.1.1.3).
struct RequestIn {
    std::string tx;
    TransportId transport = 0;
    Message request;
};
// A response for the TU. `tx` names the client transaction; empty when none matches, e.g. a
// retransmitted or forked 2xx after the INVITE transaction ended (RFC 3261 §18.1.2).
struct ResponseIn {
    std::string tx;
    Message response;
};
// RFC 3261 §9.2: a CANCEL matched a pending INVITE; the transaction layer already sent 200 to
// the CANCEL; the TU now answers the INVITE with 487.
struct CancelIn {
    std::string invite_tx;
};
// Timer B/F (client: no final response in time), H (server: no ACK for a final error) or L
// with no ACK for a 2xx (RFC 3261 §13.3.1.4: the TU should send BYE).
struct TransactionTimeout {
    std::string tx;
    bool client = true;
};

using Action = std::variant<Send, WakeAt, RequestIn, ResponseIn, CancelIn, TransactionTimeout>;

}  // namespace turnbridge::sip
