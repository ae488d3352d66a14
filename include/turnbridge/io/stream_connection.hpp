// SPDX-License-Identifier: Apache-2.0
#pragma once
// One stream connection (issue 12's io::StreamConnection, first user: SIP over TCP/TLS): TCP
// accepted or connected, optional TLS on memory BIOs (TlsSession, server or client side), a
// write queue of copies, sends held until the connection (and its handshake) is up, and the
// bounds every stream shares (issue 11): its slot in a ConnectionGate, a StreamGuard's timeouts
// and back-pressure. The protocol is a Framer that gets the plaintext; the owner hears when the
// connection is ready and when its handle is gone. The StreamConnection never deletes itself:
// its owner holds it and may destroy it from on_closed() or later.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <uv.h>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/base/log.hpp"
#include "turnbridge/io/connection_gate.hpp"
#include "turnbridge/io/stream_guard.hpp"

typedef struct ssl_ctx_st SSL_CTX;

namespace turnbridge::net {
class TlsSession;
}

namespace turnbridge::io {

// Cuts the plaintext into messages: one implementation per protocol.
class Framer {
public:
    virtual ~Framer() = default;
    // Consumes what it can; false when the peer must be disconnected (unframeable input).
    virtual bool on_bytes(std::string_view in) = 0;
    // Bytes held for an unfinished message: the message_timeout clock runs while this is > 0.
    virtual std::size_t buffered() const = 0;
};

class StreamConnection;

class StreamEvents {
public:
    virtual ~StreamEvents() = default;
    virtual void on_ready(StreamConnection&) {}           // connected, TLS handshake done
    virtual void on_closed(StreamConnection&) = 0;        // the handle is gone: destroy it now or later
};

// The client side of TLS toward a server (a trunk): SNI and the name its certificate must carry.
struct TlsClient {
    SSL_CTX* ctx = nullptr;
    std::string server_name;
};

// Queues a copy of `bytes` on `stream` (request and bytes in one malloc); `done` runs when the
// write completes (status 0) or fails (status < 0), never when cancelled by a close. Returns 0
// or the libuv error.
int write_copy(uv_stream_t* stream, std::string_view bytes, void (*done)(uv_stream_t*, int status));

class StreamConnection {
public:
    StreamConnection(uv_loop_t* loop, StreamKind kind, const GuardLimits& limits, StreamStats* stats,
                     StreamEvents& events, Framer& framer);
    ~StreamConnection();
    StreamConnection(const StreamConnection&) = delete;
    StreamConnection& operator=(const StreamConnection&) = delete;

    // Accepts the pending connection on `server`, admitted by `gate` (null: no cap), with server
    // TLS when `tls` (wss, TURN over TLS). The handshake phase (handshake_timeout) ends when TLS
    // is up, unless `owner_establishes`: then the owner calls guard().established() itself (the
    // WebSocket upgrade). False when it failed or was refused: on_closed() follows.
    bool accept(uv_stream_t* server, ConnectionGate* gate, SSL_CTX* tls = nullptr, bool owner_establishes = false);
    // Starts connecting to `to` (TLS when `tls`); false on immediate failure (on_closed follows).
    bool connect(const Endpoint& to, const TlsClient* tls);

    void send(std::string_view bytes);   // queued until ready; TLS-sealed when TLS
    void close();                        // now; on_closed() follows from the loop
    void close_after_write();            // stops reading; what is queued leaves, then FIN and close
    bool draining() const { return draining_; }
    void sweep(std::uint64_t now_ms);    // the host's, about once a second: guard timeouts

    const Endpoint& peer() const { return peer_; }
    const std::string& peer_text() const { return peer_text_; }
    const std::optional<Endpoint>& local() const { return local_; }   // bound end of a connect()
    bool secure() const { return tls_ != nullptr; }
    bool ready() const { return ready_; }
    bool closing() const { return closing_; }
    std::uint64_t started_ms() const { return started_ms_; }
    StreamGuard& guard() { return guard_; }
    // For log lines; e.g. the trunk URI (default: the peer address).
    void set_name(std::string name) { name_ = std::move(name); }
    std::string_view name() const { return name_.empty() ? std::string_view(peer_text_) : std::string_view(name_); }

private:
    static void on_alloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf);
    static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
    static void on_written(uv_stream_t* s, int status);
    bool open_handle();
    void start_reading();
    void on_ciphertext(std::string_view bytes);
    void on_plain(std::string_view bytes);
    void became_ready();
    void write(std::string_view bytes);
    void write_raw(std::string_view bytes);
    void flush_tls();
    std::string_view what() const { return tls_ ? "tls" : "tcp"; }
    // Trouble on a connection we opened (a trunk) is a warning; on one an outsider opened it is
    // a debug line, so that attacks cannot grow the log.
    template <class... A>
    void problem(fmt::format_string<A...> f, A&&... a) const {
        if (outbound_) log::warn(f, std::forward<A>(a)...);
        else log::debug(f, std::forward<A>(a)...);
    }

    uv_loop_t* loop_;
    StreamEvents& events_;
    Framer& framer_;
    uv_tcp_t tcp_{};
    uv_connect_t connect_{};
    uv_shutdown_t shutdown_{};
    bool handle_open_ = false;
    Endpoint peer_;
    std::string peer_text_;
    std::string name_;
    std::optional<Endpoint> local_;
    std::unique_ptr<net::TlsSession> tls_;
    GateTicket ticket_;
    StreamGuard guard_;
    std::vector<std::string> pending_;   // sends before ready
    std::uint64_t started_ms_ = 0;
    bool ready_ = false;
    bool closing_ = false;
    bool draining_ = false;          // close_after_write() was called
    bool outbound_ = false;          // connect(), not accept()
    bool establish_on_ready_ = false;
    char read_buf_[16 * 1024];
};

}  // namespace turnbridge::io
