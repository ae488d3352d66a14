// SPDX-License-Identifier: Apache-2.0
#pragma once
// One browser connection on a ws_listen / wss_listen address: HTTP first (RFC 6455 §4.2
// upgrade on /sip with subprotocol "sip", RFC 7118; a plain GET / gets the placeholder page),
// then WebSocket frames, each text/binary message one SIP message (RFC 7118 §5). TLS on memory
// BIOs (TlsSession) for wss. Signaling only: simple copies, no per-packet budget to keep.
#include <memory>
#include <string>
#include <string_view>
#include <uv.h>

#include "turnbridge/base/address.hpp"
#include "turnbridge/io/connection_gate.hpp"
#include "turnbridge/io/stream_guard.hpp"
#include "turnbridge/sip/websocket_frame.hpp"

typedef struct ssl_ctx_st SSL_CTX;

namespace turnbridge::net {

class TlsSession;
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

class WsConnection {
public:
    // Accepts the pending connection on `server`; `tls` non-null for wss. Frees itself when closed.
    static void accept(uv_loop_t* loop, uv_stream_t* server, SSL_CTX* tls, WsOwner& owner, std::uint64_t id,
                       const WsLimits& limits);

    void send_text(std::string_view payload);   // one SIP message as one text frame
    void close();                               // now, without a Close frame
    // The host's sweep (about once a second): [streams] handshake_timeout (TLS and the HTTP
    // upgrade), message_timeout (a frame or fragmented message left unfinished), ws_idle_timeout,
    // write_timeout.
    void sweep(std::uint64_t now_ms);
    std::uint64_t id() const { return id_; }
    const Endpoint& peer() const { return peer_; }
    bool secure() const { return tls_ != nullptr; }
    bool upgraded() const { return upgraded_; }
    std::uint64_t accepted_ms() const { return accepted_ms_; }   // uv_now() at accept

private:
    WsConnection(WsOwner& owner, std::uint64_t id, const WsLimits& limits, std::uint64_t now_ms);
    ~WsConnection();
    void on_plain(std::string_view bytes);
    void on_http();
    void write_plain(std::string_view bytes);
    void write_raw(std::string_view bytes);
    void flush_tls();
    void close_after_write();   // the response leaves, then the connection closes

    static void on_alloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf);
    static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
    static void on_written(uv_stream_t* s, int status);

    uv_tcp_t tcp_{};
    uv_shutdown_t shutdown_{};
    WsOwner& owner_;
    std::uint64_t id_;
    Endpoint peer_;
    std::unique_ptr<TlsSession> tls_;
    std::string http_;            // request bytes before the upgrade
    sip::WebSocketDecoder decoder_;
    io::GateTicket ticket_;
    io::StreamGuard guard_;
    std::uint64_t accepted_ms_ = 0;
    bool upgraded_ = false;
    bool closing_ = false;
    bool draining_ = false;       // close_after_write() was called
    char read_buf_[16 * 1024];
};

}  // namespace turnbridge::net
