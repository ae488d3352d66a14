// SPDX-License-Identifier: Apache-2.0
#pragma once
// One client connection over TCP or TLS (RFC 8656 §3.1, §12.5): bytes (decrypted, for TLS) go
// through a StreamFramer and each whole STUN or ChannelData frame to turn::Server. Writes try
// the socket first and queue a copy only for what the kernel did not take.
#include <chrono>
#include <memory>
#include <uv.h>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/io/connection_gate.hpp"
#include "turnbridge/io/stream_guard.hpp"
#include "turnbridge/stun/message.hpp"
#include "turnbridge/turn/channel_data.hpp"
#include "turnbridge/turn/clock.hpp"

typedef struct ssl_ctx_st SSL_CTX;

namespace turnbridge::net {

class TlsSession;
class Worker;

// Unflushed bytes beyond which relayed data for this client is dropped (responses still go).
// Reading stops and the connection closes at [streams] write_soft_limit / write_hard_limit
// (io::StreamGuard), the same bounds as every other stream.
constexpr std::size_t kMaxRelayBacklog = 1u << 20;

// Relayed bytes held per connection until the end of a receive batch (then one write).
constexpr std::size_t kMaxPending = 16384;

// Largest buffered partial frame: any STUN message (20 + 65532) or padded ChannelData.
constexpr std::size_t kMaxFrameBuffer = 65536 + 24;

class TcpConnection {
public:
    // Accepts the pending connection on `server` and registers it with the worker. `tls` is the
    // context for a TLS listener, nullptr for plain TCP. Frees itself when closed.
    static void accept(Worker& worker, uv_stream_t* server, const Endpoint& local, Transport transport, SSL_CTX* tls);
    ~TcpConnection();

    // head + body + pad zero bytes as one message on the stream. Relayed data (a body) waits
    // for flush_pending(), which the worker calls at the end of the receive batch; a response
    // goes at once, after anything pending.
    void send(stun::Bytes head, stun::Bytes body, std::uint8_t pad);
    void flush_pending();
    void close();

    const FiveTuple& five_tuple() const { return five_tuple_; }
    turn::Time accepted() const { return accepted_; }
    bool closing() const { return closing_; }
    // The worker's sweep (about once a second): handshake, message and idle timeouts. An idle
    // connection is closed only while it has no allocation (`allocated`): RFC 8656 §3 lets a
    // client keep its control connection quiet between Refreshes.
    void sweep(std::uint64_t now_ms, bool allocated);

private:
    TcpConnection(Worker& worker, const Endpoint& local, Transport transport);
    void on_bytes(stun::Bytes data);  // plaintext from the client
    void on_ciphertext(stun::Bytes data);
    void flush_tls();
    void list_pending();  // asks the worker for a flush_pending() at the end of the batch
    void write_raw(const uv_buf_t* bufs, unsigned n);
    void queue_copy(const uv_buf_t* bufs, unsigned n, std::size_t skip);
    void check_queue();  // back-pressure after a write or a completed one

    static void on_alloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf);
    static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
    static void on_written(uv_write_t* req, int status);
    static void on_closed(uv_handle_t* h);

    uv_tcp_t tcp_{};
    Worker& worker_;
    FiveTuple five_tuple_;
    turn::Time accepted_;
    turn::StreamFramer framer_;
    io::GateTicket ticket_;  // this connection's slot in [streams] turn_max_connections
    io::StreamGuard guard_;
    std::unique_ptr<TlsSession> tls_;
    bool registered_ = false;  // known to the worker (accept completed)
    // Relayed data not yet written: plaintext for TCP; for TLS the records wait in the session.
    std::vector<std::uint8_t> pending_;
    bool listed_ = false;  // in the worker's pending_streams_
    bool closing_ = false;
};

}  // namespace turnbridge::net
