// SPDX-License-Identifier: Apache-2.0
#pragma once
// One client connection over TCP or TLS (RFC 8656 §3.1, §12.5), on io::StreamConnection (accept,
// TLS on memory BIOs, the write queue, [streams] bounds, close): this class is its TURN stream
// framer. Bytes (decrypted, for TLS) go through a turn::StreamFramer and each whole STUN or
// ChannelData frame to turn::Server. Relayed data for the client waits in the connection's
// batch until the end of the worker's receive batch (one write per connection per batch).
#include <uv.h>

#include "turnbridge/base/address.hpp"
#include "turnbridge/io/stream_connection.hpp"
#include "turnbridge/stun/message.hpp"
#include "turnbridge/turn/channel_data.hpp"

typedef struct ssl_ctx_st SSL_CTX;

namespace turnbridge::server {

class Worker;

// Unflushed bytes beyond which relayed data for this client is dropped (responses still go).
// Reading stops and the connection closes at [streams] write_soft_limit / write_hard_limit
// (io::StreamGuard), the same bounds as every other stream.
constexpr std::size_t kMaxRelayBacklog = 1u << 20;

// Largest buffered partial frame: any STUN message (20 + 65532) or padded ChannelData.
constexpr std::size_t kMaxFrameBuffer = 65536 + 24;

class TcpConnection final : private io::Framer, private io::StreamEvents {
public:
    // Accepts the pending connection on `server` and registers it with the worker. `tls` is the
    // context for a TLS listener, nullptr for plain TCP. Freed when its handle is gone.
    static void accept(Worker& worker, uv_stream_t* server, const Endpoint& local, Transport transport, SSL_CTX* tls);
    ~TcpConnection() override;

    // head + body + pad zero bytes as one message on the stream. Relayed data (a body) waits
    // for flush_pending(), which the worker calls at the end of the receive batch; a response
    // goes at once, after anything pending.
    void send(stun::Bytes head, stun::Bytes body, std::uint8_t pad);
    void flush_pending();
    void close() { conn_.close(); }

    const FiveTuple& five_tuple() const { return five_tuple_; }
    bool closing() const { return conn_.closing(); }
    // The worker's sweep (about once a second): handshake, message and idle timeouts. An idle
    // connection is closed only while it has no allocation (`allocated`): RFC 8656 §3 lets a
    // client keep its control connection quiet between Refreshes.
    void sweep(std::uint64_t now_ms, bool allocated);

private:
    TcpConnection(Worker& worker, const Endpoint& local, Transport transport);
    bool on_bytes(std::string_view in) override;   // plaintext from the client
    std::size_t buffered() const override { return framer_.buffered(); }
    void on_tls_record(std::string_view plain, std::size_t record_bytes) override;
    void on_closed(io::StreamConnection&) override;

    Worker& worker_;
    FiveTuple five_tuple_;
    turn::StreamFramer framer_;
    bool registered_ = false;  // known to the worker (accept completed)
    bool listed_ = false;      // in the worker's pending_streams_
    io::StreamConnection conn_;
};

}  // namespace turnbridge::server
