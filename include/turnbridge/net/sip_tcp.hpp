// SPDX-License-Identifier: Apache-2.0
#pragma once
// SIP over TCP on the trunk side (RFC 3261 §18.3): a connection a trunk opened to sip_listen, or
// one we opened toward a TCP trunk, or toward a TLS trunk (RFC 3261 §26.2.1; a client
// TlsSession on memory BIOs between the socket and the same framing). Messages are cut by
// SipStreamFramer; sends before the connection (and its handshake) is up wait in a queue.
// Signaling only: plain copies.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <uv.h>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/io/connection_gate.hpp"
#include "turnbridge/io/stream_guard.hpp"
#include "turnbridge/net/sip_stream.hpp"

typedef struct ssl_ctx_st SSL_CTX;

namespace turnbridge::net {

class SipTcpConnection;
class TlsSession;

// What a connection toward a TLS trunk needs.
struct SipTlsClient {
    SSL_CTX* ctx = nullptr;      // load_trunk_tls_context(); the session keeps its own reference
    std::string server_name;     // the trunk URI's host: SNI and the name its certificate must carry
    std::string trunk;           // the trunk URI, for log lines
};

// Queues a copy of `bytes` on `stream` (request and bytes in one malloc); `done` runs when the
// write completes (status 0: time to look at back-pressure again) or fails (status < 0), never
// when cancelled by a close. Returns 0 or the libuv error. Shared by the signaling streams (SIP
// over TCP, WebSocket), where a copy per message is cheap enough.
int write_copy(uv_stream_t* stream, std::string_view bytes, void (*done)(uv_stream_t*, int status));

class SipTcpOwner {
public:
    virtual ~SipTcpOwner() = default;
    virtual void on_sip_tcp_message(SipTcpConnection& c, std::string_view sip) = 0;
    virtual void on_sip_tcp_closed(SipTcpConnection& c) = 0;   // the object is freed after this returns
};

class SipTcpConnection {
public:
    // Accepts the pending connection on `server`; nullptr on failure or when `gate` refuses it
    // ([streams] sip_max_connections, sip_max_connections_per_ip).
    static SipTcpConnection* accept(uv_loop_t* loop, uv_stream_t* server, SipTcpOwner& owner, std::uint64_t id,
                                    io::ConnectionGate* gate, const io::GuardLimits& limits);
    // Starts connecting to `to` (over TLS when `tls` is given); nullptr on immediate failure.
    static SipTcpConnection* connect(uv_loop_t* loop, const Endpoint& to, SipTcpOwner& owner, std::uint64_t id,
                                     const SipTlsClient* tls = nullptr);
    ~SipTcpConnection();

    void send(std::string_view message);
    void close();
    // The host's sweep (about once a second): [streams] message_timeout (a SIP message started
    // and not finished: slowloris), sip_idle_timeout on inbound connections, write_timeout.
    void sweep(std::uint64_t now_ms);
    std::uint64_t id() const { return id_; }
    const Endpoint& peer() const { return peer_; }
    // Our end of an outbound connection (bound when connecting starts): the Via sent-by and
    // Contact a TLS trunk can reach us at over this connection.
    const std::optional<Endpoint>& local() const { return local_; }
    bool outbound() const { return outbound_; }
    bool secure() const { return tls_ != nullptr; }
    // Connected, and for TLS the handshake done: what was queued has left.
    bool ready() const { return ready_; }
    std::uint64_t started_ms() const { return started_ms_; }   // uv_now() at connect/accept

private:
    SipTcpConnection(SipTcpOwner& owner, std::uint64_t id, const io::GuardLimits& limits, io::StreamStats* stats,
                     std::uint64_t now_ms);
    static void on_alloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf);
    static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
    static void on_written(uv_stream_t* s, int status);
    void write(std::string_view bytes);
    void write_raw(std::string_view bytes);
    void start_reading();
    void on_ciphertext(std::string_view bytes);
    void on_plain(std::string_view bytes);
    void flush_tls();
    void became_ready();
    std::string_view name() const;   // for log lines: the trunk URI or the peer address

    uv_tcp_t tcp_{};
    uv_connect_t connect_{};
    SipTcpOwner& owner_;
    std::uint64_t id_;
    Endpoint peer_;
    std::optional<Endpoint> local_;
    std::unique_ptr<TlsSession> tls_;
    std::string trunk_;   // SipTlsClient::trunk
    std::string peer_text_;
    SipStreamFramer framer_;
    io::GateTicket ticket_;   // inbound only
    io::StreamGuard guard_;
    std::vector<std::string> pending_;   // sends before the connection is ready
    std::uint64_t started_ms_ = 0;
    bool ready_ = false;
    bool outbound_ = false;
    bool closing_ = false;
    char read_buf_[16 * 1024];
};

}  // namespace turnbridge::net
