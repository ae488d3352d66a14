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

// A queued copy of what the socket did not take at once: the request, then the bytes, in one malloc.
struct QueuedWrite {
    uv_write_t req;
    char* data() { return reinterpret_cast<char*>(this + 1); }
};

std::span<const std::uint8_t> bytes_of(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

constexpr std::size_t kMaxPieces = 4;

}  // namespace

void StreamEvents::on_eof(StreamConnection& c) { c.close(); }

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
    const std::optional<Endpoint> ep = tcp_peer(&tcp_);
    if (!ep) return close(), false;
    peer_ = *ep;
    peer_text_ = ep->to_string();
    if (gate != nullptr && !(ticket_ = gate->admit(ep->ip))) return close(), false;   // counted, not logged
    if (tls != nullptr) {
        tls_ = std::make_unique<TlsSession>(tls);
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
        tls_ = std::make_unique<TlsSession>(tls->ctx, tls->server_name);
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
                      error_text(status));
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
    if (c->read_ext_ != nullptr) {
        *buf = uv_buf_init(c->read_ext_, static_cast<unsigned>(c->read_ext_size_));
        return;
    }
    constexpr std::size_t kOwnRead = 16 * 1024;
    if (!c->read_own_) c->read_own_.reset(new char[kOwnRead]);
    *buf = uv_buf_init(c->read_own_.get(), kOwnRead);
}

void StreamConnection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<StreamConnection*>(s->data);
    if (nread == 0 || c->closing_) return;
    if (c->draining_) {
        // Lingering after our FIN: what the peer still sends is dropped; its EOF ends it.
        if (nread < 0) {
            c->peer_eof_ = true;
            if (c->shut_down_) c->close();
            else uv_read_stop(s);
        }
        return;
    }
    if (nread < 0) {
        if (c->tls_ && !c->ready_)
            c->problem("{} tls {}: the connection closed during the TLS handshake", to_string(c->guard_.kind()), c->name());
        if (nread == UV_EOF && c->ready_) {
            c->peer_eof_ = true;
            return c->events_.on_eof(*c);
        }
        return c->close();
    }
    const std::string_view bytes(buf->base, static_cast<std::size_t>(nread));
    if (c->tls_) return c->on_ciphertext(bytes);
    c->on_plain(bytes);
}

void StreamConnection::on_written(uv_stream_t* s, int status) {
    auto* c = static_cast<StreamConnection*>(s->data);
    if (c->closing_) return;
    if (status < 0) {
        c->problem("{} {} {}: write error: {}", to_string(c->guard_.kind()), c->what(), c->name(), error_text(status));
        return c->close();
    }
    c->after_queue();
}

// After a write that queued bytes, and after a queued write completed: StreamGuard's bounds.
void StreamConnection::after_queue() {
    if (closing_ || draining_) return;   // while draining, reading is off or lingering: no bounds
    const bool was_paused = guard_.paused();
    if (!apply_back_pressure(as_stream(&tcp_), guard_, on_alloc, on_read)) {
        log::debug("{} {} {}: peer is not reading ({} bytes unsent); closing", to_string(guard_.kind()), what(), name(),
                   uv_stream_get_write_queue_size(as_stream(&tcp_)));
        return close();
    }
    if (was_paused && !guard_.paused()) events_.on_resumed(*this);
}

void StreamConnection::on_ciphertext(std::string_view bytes) {
    tls_->feed(bytes_of(bytes));
    std::uint8_t plain[16 * 1024];
    const std::string_view kind = to_string(guard_.kind());
    while (!closing_ && !draining_) {
        std::size_t n = 0, record = 0;
        switch (tls_->read(plain, n, record)) {
            case TlsSession::ReadResult::Data:
                // The handshake may finish in the read that brings the first request.
                if (!ready_ && tls_->established()) became_ready();
                if (closing_) return;
                on_plain(std::string_view(reinterpret_cast<const char*>(plain), n));
                if (!closing_) framer_.on_tls_record(std::string_view(reinterpret_cast<const char*>(plain), n), record);
                continue;
            case TlsSession::ReadResult::NeedMore:
                flush_tls();
                if (!ready_ && tls_->established()) became_ready();
                return;
            case TlsSession::ReadResult::Closed:
                if (outbound_) log::info("{} tls {}: closed by the peer", kind, name());
                flush_tls();
                return close_after_write();
            case TlsSession::ReadResult::Error:
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
    for (const auto& m : queued) {
        const std::string_view v = m;
        write({&v, 1});
    }
    if (!closing_) events_.on_ready(*this);
}

void StreamConnection::send(std::span<const std::string_view> pieces) {
    if (closing_) return;
    if (!ready_) {
        std::string& m = pending_.emplace_back();
        for (auto p : pieces) m.append(p);
        return;
    }
    flush();   // what was batched before this message goes first
    write(pieces);
}

void StreamConnection::write(std::span<const std::string_view> pieces) {
    if (closing_) return;
    if (!tls_) return write_raw(pieces);
    if (seal(pieces)) flush_tls();
}

// One message as one TLS record (the pieces gathered into one SSL_write when they fit one).
bool StreamConnection::seal(std::span<const std::string_view> pieces) {
    char gathered[16 * 1024];
    std::size_t len = 0;
    for (auto p : pieces) len += p.size();
    bool ok = true;
    if (pieces.size() == 1 || len > sizeof gathered) {
        for (auto p : pieces) ok = ok && (p.empty() || tls_->write(bytes_of(p)));
    } else if (len > 0) {
        std::size_t at = 0;
        for (auto p : pieces) std::memcpy(gathered + at, p.data(), p.size()), at += p.size();
        ok = tls_->write(bytes_of({gathered, len}));
    }
    if (!ok) {
        problem("{} tls {}: TLS write failed: {}", to_string(guard_.kind()), name(), tls_->error());
        close();
    }
    return ok;
}

std::size_t StreamConnection::append(std::span<const std::string_view> pieces) {
    if (closing_ || draining_ || !ready_) return 0;
    std::size_t len = 0;
    for (auto p : pieces) len += p.size();
    if (tls_) {
        // Each message stays its own record; the records of a batch leave in one write.
        const std::size_t before = tls_->pending();
        if (!seal(pieces)) return 0;
        const std::size_t record = tls_->pending() - before;
        if (tls_->pending() >= kBatchBytes) flush_tls();
        return record > len ? record - len : 0;
    }
    if (batch_.size() + len > kBatchBytes) flush();
    if (len > kBatchBytes) {
        write_raw(pieces);
        return 0;
    }
    if (batch_.capacity() < kBatchBytes) batch_.reserve(kBatchBytes);   // once per connection
    for (auto p : pieces) batch_.append(p);
    return 0;
}

bool StreamConnection::has_batch() const { return tls_ ? tls_->pending() > 0 : !batch_.empty(); }

void StreamConnection::flush() {
    if (closing_) return;
    if (tls_) return flush_tls();
    if (batch_.empty()) return;
    const std::string_view b = batch_;
    write_raw({&b, 1});
    batch_.clear();   // keeps its capacity
}

std::size_t StreamConnection::unsent() const {
    if (!handle_open_) return 0;
    return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_)) + batch_.size() +
           (tls_ ? tls_->pending() : 0);
}

void StreamConnection::flush_tls() {
    std::uint8_t out[32 * 1024];
    while (!closing_ && tls_->pending() > 0) {
        const std::size_t n = tls_->take(out);
        if (n == 0) break;
        const std::string_view b(reinterpret_cast<const char*>(out), n);
        write_raw({&b, 1});
    }
}

// The socket takes what it can now (uv_try_write refuses while earlier writes are queued, so
// order is kept); only the rest is copied into one malloc and queued.
void StreamConnection::write_raw(std::span<const std::string_view> pieces) {
    if (closing_ || !handle_open_) return;
    uv_buf_t bufs[kMaxPieces];
    unsigned n = 0;
    std::size_t total = 0;
    for (auto p : pieces) {
        if (p.empty()) continue;
        if (n == kMaxPieces) {   // not used so: the callers give at most kMaxPieces
            log::warn("{} {} {}: more than {} pieces in one write", to_string(guard_.kind()), what(), name(), kMaxPieces);
            return close();
        }
        bufs[n++] = uv_buf_init(const_cast<char*>(p.data()), static_cast<unsigned>(p.size()));
        total += p.size();
    }
    if (total == 0) return;
    uv_stream_t* s = as_stream(&tcp_);
    int r = uv_try_write(s, bufs, n);
    if (r == UV_EAGAIN) r = 0;
    if (r < 0) {
        problem("{} {} {}: write error: {}", to_string(guard_.kind()), what(), name(), error_text(r));
        return close();
    }
    std::size_t skip = static_cast<std::size_t>(r);
    if (skip == total) return;
    auto* q = static_cast<QueuedWrite*>(std::malloc(sizeof(QueuedWrite) + total - skip));
    if (q == nullptr) return close();
    std::size_t at = 0;
    for (unsigned i = 0; i < n; ++i) {
        if (skip >= bufs[i].len) {
            skip -= bufs[i].len;
            continue;
        }
        std::memcpy(q->data() + at, bufs[i].base + skip, bufs[i].len - skip);
        at += bufs[i].len - skip;
        skip = 0;
    }
    const uv_buf_t b = uv_buf_init(q->data(), static_cast<unsigned>(at));
    if (uv_write(&q->req, s, &b, 1, [](uv_write_t* req, int status) {
            uv_stream_t* s = req->handle;
            std::free(reinterpret_cast<QueuedWrite*>(req));
            if (status != UV_ECANCELED) on_written(s, status);   // cancelled: closing
        }) != 0) {
        std::free(q);
        return close();
    }
    after_queue();
}

void StreamConnection::sweep(std::uint64_t now_ms) {
    if (closing_) return;
    if (linger_until_ms_ != 0) {
        if (now_ms >= linger_until_ms_) close();
        return;
    }
    if (const auto why = guard_.expired(now_ms)) {
        log::debug("{} {} {}: {}; closing", to_string(guard_.kind()), what(), name(), to_string(*why));
        close();
    }
}

void StreamConnection::close_after_write(std::uint64_t linger_ms) {
    if (closing_ || draining_) return;
    if (!handle_open_) return close();
    flush();
    if (closing_) return;
    draining_ = true;
    const bool linger = linger_ms > 0 && !peer_eof_;
    if (linger) {
        linger_ms_ = linger_ms;
        const int err = uv_read_start(as_stream(&tcp_), on_alloc, on_read);   // paused by back-pressure
        if (err != 0 && err != UV_EALREADY) return close();
    } else {
        uv_read_stop(as_stream(&tcp_));
    }
    shutdown_.data = this;
    // uv_shutdown waits for the queued writes, so they leave before the FIN.
    if (uv_shutdown(&shutdown_, as_stream(&tcp_), [](uv_shutdown_t* s, int status) {
            auto* c = static_cast<StreamConnection*>(s->data);
            if (c->closing_) return;
            c->shut_down_ = true;
            // Lingering: the peer's EOF (or sweep()'s deadline) closes.
            if (status < 0 || c->linger_ms_ == 0 || c->peer_eof_) return c->close();
            c->linger_until_ms_ = uv_now(c->loop_) + c->linger_ms_;
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
