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
#include <span>
#include <string>
#include <string_view>
#include <uv.h>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/base/log.hpp"
#include "turnbridge/io/connection_gate.hpp"
#include "turnbridge/io/stream_guard.hpp"

typedef struct ssl_ctx_st SSL_CTX;

namespace turnbridge::io {
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
    // TLS only, after on_bytes() of one record's plaintext: the record took `record_bytes` on
    // the wire (header, body, tag), for wire-byte accounting.
    virtual void on_tls_record(std::string_view /*plain*/, std::size_t /*record_bytes*/) {}
};

class StreamConnection;

class StreamEvents {
public:
    virtual ~StreamEvents() = default;
    virtual void on_ready(StreamConnection&) {}           // connected, TLS handshake done
    virtual void on_closed(StreamConnection&) = 0;        // the handle is gone: destroy it now or later
    // The peer shut down its side (EOF). Default: close. An owner may keep the connection to
    // finish its answers (close_after_write()).
    virtual void on_eof(StreamConnection& c);
    // Reading was paused by back-pressure and has resumed (the write queue drained).
    virtual void on_resumed(StreamConnection&) {}
};

// The client side of TLS toward a server (a trunk): SNI and the name its certificate must carry.
struct TlsClient {
    SSL_CTX* ctx = nullptr;
    std::string server_name;
};

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

    // One message: queued until ready; TLS-sealed (one record) when TLS; after anything
    // append()ed. The socket takes what it can at once; only the rest is copied and queued.
    void send(std::string_view bytes) { send({&bytes, 1}); }
    void send(std::span<const std::string_view> pieces);
    // The batched path (relayed data, RFC 8656 §12): one message appended to a per-connection
    // buffer (plain) or sealed as its own record into the TLS session, written by flush() in one
    // go, or at once when kBatchBytes fill. No allocation per message. Dropped before ready.
    // Returns the TLS record overhead this message added on the wire (0 for plain TCP).
    std::size_t append(std::span<const std::string_view> pieces);
    void flush();
    bool has_batch() const;
    // Bytes not yet on the socket: the write queue and the batch.
    std::size_t unsent() const;
    // Reads go to `buf` (shared by the owner's connections, which it outlives) instead of a
    // buffer of this connection's own. Set before accept().
    void use_read_buffer(char* buf, std::size_t size) { read_ext_ = buf, read_ext_size_ = size; }

    void close();                        // now; on_closed() follows from the loop
    // Stops reading; what is queued leaves, then FIN and close. With `linger_ms` the connection
    // still reads (and drops) what the peer sends after the FIN, until its EOF or the time has
    // passed since the FIN left (checked by sweep()), so that unread input does not turn the close into a reset
    // that could destroy the last answer in flight.
    void close_after_write(std::uint64_t linger_ms = 0);
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
    void write(std::span<const std::string_view> pieces);
    void write_raw(std::span<const std::string_view> pieces);
    bool seal(std::span<const std::string_view> pieces);
    void flush_tls();
    void after_queue();
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
    std::unique_ptr<TlsSession> tls_;
    GateTicket ticket_;
    StreamGuard guard_;
    std::vector<std::string> pending_;   // sends before ready
    std::string batch_;                  // append()ed plaintext (plain TCP), capacity kBatchBytes
    std::uint64_t started_ms_ = 0;
    std::uint64_t linger_ms_ = 0;        // close_after_write(linger)
    std::uint64_t linger_until_ms_ = 0;  // set when the FIN has left; 0 = not lingering
    bool ready_ = false;
    bool closing_ = false;
    bool draining_ = false;          // close_after_write() was called
    bool outbound_ = false;          // connect(), not accept()
    bool establish_on_ready_ = false;
    bool shut_down_ = false;         // the FIN has left (lingering)
    bool peer_eof_ = false;
    char* read_ext_ = nullptr;
    std::size_t read_ext_size_ = 0;
    std::unique_ptr<char[]> read_own_;
};

// Batched bytes per connection before they are written without waiting for flush().
constexpr std::size_t kBatchBytes = 16384;

}  // namespace turnbridge::io
