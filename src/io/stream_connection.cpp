// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/io/stream_connection.hpp"

#include <cstdlib>
#include <cstring>
#include <sys/socket.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/stream_flow.hpp"
#include "turnbridge/io/socket_util.hpp"
#include "turnbridge/io/tls_session.hpp"

namespace turnbridge::io {
namespace {

uv_stream_t* as_stream(uv_tcp_t* t) { return reinterpret_cast<uv_stream_t*>(t); }

struct QueuedWrite {
    uv_write_t req;
    void (*done)(uv_stream_t*, int);
    char* data() { return reinterpret_cast<char*>(this + 1); }
};

std::span<const std::uint8_t> bytes_of(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

int write_copy(uv_stream_t* stream, std::string_view bytes, void (*done)(uv_stream_t*, int status)) {
    auto* q = static_cast<QueuedWrite*>(std::malloc(sizeof(QueuedWrite) + bytes.size()));
    if (q == nullptr) return UV_ENOMEM;
    q->done = done;
    std::memcpy(q->data(), bytes.data(), bytes.size());
    const uv_buf_t b = uv_buf_init(q->data(), static_cast<unsigned>(bytes.size()));
    const int err = uv_write(&q->req, stream, &b, 1, [](uv_write_t* req, int status) {
        auto* q = reinterpret_cast<QueuedWrite*>(req);
        auto* done = q->done;
        uv_stream_t* s = req->handle;
        std::free(q);
        if (status != UV_ECANCELED) done(s, status);
    });
    if (err != 0) std::free(q);
    return err;
}

StreamConnection::StreamConnection(uv_loop_t* loop, StreamKind kind, const GuardLimits& limits, StreamStats* stats,
                                   StreamEvents& events, Framer& framer)
    : loop_(loop), events_(events), framer_(framer), guard_(kind, limits, stats, uv_now(loop)) {}

StreamConnection::~StreamConnection() = default;

bool StreamConnection::open_handle() {
    if (uv_tcp_init(loop_, &tcp_) != 0) return false;   // close() then reports at once
    tcp_.data = this;
    handle_open_ = true;
    return true;
}

bool StreamConnection::accept(uv_stream_t* server, ConnectionGate* gate, SSL_CTX* tls, bool owner_establishes) {
    started_ms_ = uv_now(loop_);
    if (!open_handle()) return close(), false;
    if (uv_accept(server, as_stream(&tcp_)) != 0) return close(), false;
    const std::optional<Endpoint> ep = net::tcp_peer(&tcp_);
    if (!ep) return close(), false;
    peer_ = *ep;
    peer_text_ = ep->to_string();
    if (gate != nullptr && !(ticket_ = gate->admit(ep->ip))) return close(), false;   // counted, not logged
    if (tls != nullptr) {
        tls_ = std::make_unique<net::TlsSession>(tls);
        if (!tls_->ok()) return close(), false;
        establish_on_ready_ = !owner_establishes;   // sends wait for the handshake
    } else {
        if (!owner_establishes) guard_.established(started_ms_);   // plain TCP: no handshake
        ready_ = true;
    }
    start_reading();
    return !closing_;
}

bool StreamConnection::connect(const Endpoint& to, const TlsClient* tls) {
    started_ms_ = uv_now(loop_);
    peer_ = to;
    peer_text_ = to.to_string();
    outbound_ = true;
    guard_.established(started_ms_);   // the host bounds connect + handshake itself
    if (tls != nullptr) {
        tls_ = std::make_unique<net::TlsSession>(tls->ctx, tls->server_name);
        if (!tls_->ok()) {
            log::warn("{} tls {}: cannot start a TLS session toward {}", to_string(guard_.kind()), name(), tls->server_name);
            tls_.reset();
            return close(), false;
        }
    }
    if (!open_handle()) return close(), false;
    sockaddr_storage sa{};
    to.to_sockaddr(sa);
    connect_.data = this;
    const int err = uv_tcp_connect(&connect_, &tcp_, reinterpret_cast<const sockaddr*>(&sa), [](uv_connect_t* req, int status) {
        auto* c = static_cast<StreamConnection*>(req->data);
        if (c->closing_) return;
        if (status < 0) {
            log::warn("{} {} {}: connect failed: {}", to_string(c->guard_.kind()), c->what(), c->name(),
                      net::error_text(status));
            return c->close();
        }
        c->start_reading();
        if (c->closing_) return;
        if (c->tls_) return c->on_ciphertext({});   // the ClientHello
        c->became_ready();
    });
    if (err != 0) return close(), false;
    // connect(2) has bound the socket: our address on this connection is known already.
    sockaddr_storage local{};
    int len = sizeof local;
    if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&local), &len) == 0)
        local_ = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&local));
    return true;
}

void StreamConnection::start_reading() {
    uv_tcp_nodelay(&tcp_, 1);
    if (uv_read_start(as_stream(&tcp_), on_alloc, on_read) != 0) close();
}

void StreamConnection::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    auto* c = static_cast<StreamConnection*>(h->data);
    *buf = uv_buf_init(c->read_buf_, sizeof c->read_buf_);
}

void StreamConnection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<StreamConnection*>(s->data);
    if (nread == 0 || c->closing_ || c->draining_) return;
    if (nread < 0) {
        if (c->tls_ && !c->ready_)
            c->problem("{} tls {}: the connection closed during the TLS handshake", to_string(c->guard_.kind()), c->name());
        return c->close();
    }
    const std::string_view bytes(buf->base, static_cast<std::size_t>(nread));
    if (c->tls_) return c->on_ciphertext(bytes);
    c->on_plain(bytes);
}

void StreamConnection::on_written(uv_stream_t* s, int status) {
    auto* c = static_cast<StreamConnection*>(s->data);
    if (c->closing_) return;
    // While draining, reading is off for good: only the write error matters.
    if (status < 0 || (!c->draining_ && !apply_back_pressure(s, c->guard_, on_alloc, on_read))) c->close();
}

void StreamConnection::on_ciphertext(std::string_view bytes) {
    tls_->feed(bytes_of(bytes));
    std::uint8_t plain[16 * 1024];
    const std::string_view kind = to_string(guard_.kind());
    while (!closing_ && !draining_) {
        std::size_t n = 0, record = 0;
        switch (tls_->read(plain, n, record)) {
            case net::TlsSession::ReadResult::Data:
                // The handshake may finish in the read that brings the first request.
                if (!ready_ && tls_->established()) became_ready();
                if (closing_) return;
                on_plain(std::string_view(reinterpret_cast<const char*>(plain), n));
                continue;
            case net::TlsSession::ReadResult::NeedMore:
                flush_tls();
                if (!ready_ && tls_->established()) became_ready();
                return;
            case net::TlsSession::ReadResult::Closed:
                if (outbound_) log::info("{} tls {}: closed by the peer", kind, name());
                flush_tls();
                return close_after_write();
            case net::TlsSession::ReadResult::Error:
                // RFC 3261 §26.3.1: a certificate that does not match the trunk ends the connection.
                problem("{} tls {}: {}: {}", kind, name(), ready_ ? "TLS error" : "TLS handshake failed", tls_->error());
                flush_tls();   // the alert
                return close_after_write();
        }
    }
}

void StreamConnection::on_plain(std::string_view bytes) {
    if (!framer_.on_bytes(bytes)) return close();
    if (!closing_) guard_.on_read(uv_now(loop_), framer_.buffered() > 0);   // an unfinished message: the slowloris clock
}

void StreamConnection::became_ready() {
    ready_ = true;
    if (establish_on_ready_) guard_.established(uv_now(loop_));
    if (tls_) log::debug("{} tls {}: TLS established with {}", to_string(guard_.kind()), name(), peer_text_);
    auto queued = std::move(pending_);
    for (const auto& m : queued) write(m);
    if (!closing_) events_.on_ready(*this);
}

void StreamConnection::send(std::string_view bytes) {
    if (closing_) return;
    if (!ready_) {
        pending_.emplace_back(bytes);
        return;
    }
    write(bytes);
}

void StreamConnection::write(std::string_view bytes) {
    if (closing_ || bytes.empty()) return;
    if (!tls_) return write_raw(bytes);
    if (!tls_->write(bytes_of(bytes))) {
        problem("{} tls {}: TLS write failed: {}", to_string(guard_.kind()), name(), tls_->error());
        return close();
    }
    flush_tls();
}

void StreamConnection::flush_tls() {
    std::uint8_t out[16 * 1024];
    while (!closing_ && tls_->pending() > 0) {
        const std::size_t n = tls_->take(out);
        if (n == 0) break;
        write_raw(std::string_view(reinterpret_cast<const char*>(out), n));
    }
}

void StreamConnection::write_raw(std::string_view bytes) {
    if (closing_ || bytes.empty()) return;
    if (write_copy(as_stream(&tcp_), bytes, on_written) != 0 ||
        (!draining_ && !apply_back_pressure(as_stream(&tcp_), guard_, on_alloc, on_read)))
        close();
}

void StreamConnection::sweep(std::uint64_t now_ms) {
    if (closing_) return;
    if (const auto why = guard_.expired(now_ms)) {
        log::debug("{} {} {}: {}; closing", to_string(guard_.kind()), what(), name(), to_string(*why));
        close();
    }
}

void StreamConnection::close_after_write() {
    if (closing_ || draining_) return;
    if (!handle_open_) return close();
    draining_ = true;
    uv_read_stop(as_stream(&tcp_));
    shutdown_.data = this;
    // uv_shutdown waits for the queued writes, so they leave before the FIN.
    if (uv_shutdown(&shutdown_, as_stream(&tcp_), [](uv_shutdown_t* s, int) {
            static_cast<StreamConnection*>(s->data)->close();
        }) != 0)
        close();
}

void StreamConnection::close() {
    if (closing_) return;
    closing_ = true;
    ticket_.reset();   // the slot is free now, not when the loop has closed the handle
    if (!handle_open_) {
        events_.on_closed(*this);
        return;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
        auto* c = static_cast<StreamConnection*>(h->data);
        c->events_.on_closed(*c);   // may destroy c: nothing after this
    });
}

}  // namespace turnbridge::io
