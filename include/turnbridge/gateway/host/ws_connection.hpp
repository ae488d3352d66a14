// SPDX-License-Identifier: Apache-2.0
#pragma once
// One browser connection on a ws_listen / wss_listen address: HTTP first (RFC 6455 §4.2
// upgrade on /sip with subprotocol "sip", RFC 7118; a plain GET / gets the placeholder page),
// then WebSocket frames, each text/binary message one SIP message (RFC 7118 §5). The connection
// (TCP, TLS on memory BIOs for wss, writes, the [streams] bounds) is an io::StreamConnection;
// this class is its framer. Signaling only: simple copies, no per-packet budget to keep.
#include <memory>
#include <string>
#include <string_view>
#include <uv.h>

#include "turnbridge/base/address.hpp"
#include "turnbridge/io/connection_gate.hpp"
#include "turnbridge/io/stream_connection.hpp"
#include "turnbridge/io/stream_guard.hpp"
#include "turnbridge/sip/websocket_frame.hpp"

typedef struct ssl_ctx_st SSL_CTX;

namespace turnbridge::gateway::host {

class WsConnection;

class WsOwner {
public:
    virtual ~WsOwner() = default;
    virtual void on_ws_opened(WsConnection& c) = 0;     // accepted; close() reports on_ws_closed
    virtual void on_ws_message(WsConnection& c, std::string_view sip) = 0;
    virtual void on_ws_closed(WsConnection& c) = 0;   // the handle is gone after this returns
};

// What a new connection is held to ([streams]): its gate (ws_max_connections, per IP), its
// timeouts and write bounds, and the WebSocket message caps.
struct WsLimits {
    io::ConnectionGate* gate = nullptr;   // null: no cap
    io::GuardLimits guard;
    std::size_t max_message = 64 * 1024;
    std::size_t max_fragments = 64;
};

class WsConnection final : private io::Framer, private io::StreamEvents {
public:
    // Accepts the pending connection on `server`; `tls` non-null for wss. Frees itself when closed.
    static void accept(uv_loop_t* loop, uv_stream_t* server, SSL_CTX* tls, WsOwner& owner, std::uint64_t id,
                       const WsLimits& limits);

    void send_text(std::string_view payload);   // one SIP message as one text frame
    void close() { conn_.close(); }             // now, without a Close frame
    // The host's sweep (about once a second): [streams] handshake_timeout (TLS and the HTTP
    // upgrade), message_timeout (a frame or fragmented message left unfinished), ws_idle_timeout,
    // write_timeout.
    void sweep(std::uint64_t now_ms) { conn_.sweep(now_ms); }
    std::uint64_t id() const { return id_; }
    const Endpoint& peer() const { return conn_.peer(); }
    bool secure() const { return conn_.secure(); }
    bool upgraded() const { return upgraded_; }
    std::uint64_t accepted_ms() const { return conn_.started_ms(); }   // uv_now() at accept

private:
    WsConnection(uv_loop_t* loop, WsOwner& owner, std::uint64_t id, const WsLimits& limits);
    ~WsConnection() override;
    // The connection's framer: the HTTP request, then WebSocket frames.
    bool on_bytes(std::string_view in) override;
    // Before the upgrade the handshake timeout bounds the request; after it, an unfinished frame
    // or message starts the message clock.
    std::size_t buffered() const override { return upgraded_ ? decoder_.buffered() : 0; }
    void on_closed(io::StreamConnection&) override;
    void on_http();

    uv_loop_t* loop_;
    WsOwner& owner_;
    std::uint64_t id_;
    std::string http_;            // request bytes before the upgrade
    sip::WebSocketDecoder decoder_;
    bool upgraded_ = false;
    bool reported_ = false;       // on_ws_opened() was called: report the close too
    io::StreamConnection conn_;
};

}  // namespace turnbridge::gateway::host
