// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/net/sip_tcp.hpp"

#include <cstdlib>
#include <cstring>
#include <sys/socket.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/stream_flow.hpp"
#include "turnbridge/net/socket_util.hpp"
#include "turnbridge/net/tls_session.hpp"

namespace turnbridge::net {
namespace {

uv_stream_t* as_stream(uv_tcp_t* t) { return reinterpret_cast<uv_stream_t*>(t); }

struct QueuedWrite {
    uv_write_t req;
    void (*done)(uv_stream_t*, int);
    char* data() { return reinterpret_cast<char*>(this + 1); }
};

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

SipTcpConnection::SipTcpConnection(SipTcpOwner& owner, std::uint64_t id, const io::GuardLimits& limits,
                                   io::StreamStats* stats, std::uint64_t now_ms)
    : owner_(owner), id_(id), guard_(io::StreamKind::Sip, limits, stats, now_ms) {}
SipTcpConnection::~SipTcpConnection() = default;

SipTcpConnection* SipTcpConnection::accept(uv_loop_t* loop, uv_stream_t* server, SipTcpOwner& owner, std::uint64_t id,
                                           io::ConnectionGate* gate, const io::GuardLimits& limits) {
    auto* c = new SipTcpConnection(owner, id, limits, gate ? &gate->stats() : nullptr, uv_now(loop));
    if (uv_tcp_init(loop, &c->tcp_) != 0) {
        delete c;
        return nullptr;
    }
    c->tcp_.data = c;
    c->closing_ = true;   // failures below must not report to the owner
    auto fail = [c] {
        uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp_), [](uv_handle_t* h) { delete static_cast<SipTcpConnection*>(h->data); });
        return nullptr;
    };
    if (uv_accept(server, as_stream(&c->tcp_)) != 0) return fail();
    const std::optional<Endpoint> ep = tcp_peer(&c->tcp_);
    if (!ep) return fail();
    c->peer_ = *ep;
    if (gate != nullptr && !(c->ticket_ = gate->admit(ep->ip))) return fail();   // counted, not logged
    c->peer_text_ = ep->to_string();
    c->started_ms_ = uv_now(loop);
    c->guard_.established(c->started_ms_);   // plain TCP: no handshake
    c->closing_ = false;
    c->ready_ = true;
    c->start_reading();
    return c->closing_ ? nullptr : c;
}

SipTcpConnection* SipTcpConnection::connect(uv_loop_t* loop, const Endpoint& to, SipTcpOwner& owner, std::uint64_t id,
                                            const SipTlsClient* tls) {
    // Our own connection toward a trunk: no gate, no idle timeout (the trunk may send inbound
    // calls over it); its connect and handshake have kTrunkConnectTimeoutMs in the host.
    io::GuardLimits limits;
    limits.handshake_ms = 0;
    auto* c = new SipTcpConnection(owner, id, limits, nullptr, uv_now(loop));
    c->guard_.established(uv_now(loop));
    if (tls != nullptr) {
        c->tls_ = std::make_unique<TlsSession>(tls->ctx, tls->server_name);
        c->trunk_ = tls->trunk;
        if (!c->tls_->ok()) {
            log::warn("sip tls {}: cannot start a TLS session toward {}", tls->trunk, tls->server_name);
            delete c;
            return nullptr;
        }
    }
    if (uv_tcp_init(loop, &c->tcp_) != 0) {
        delete c;
        return nullptr;
    }
    c->tcp_.data = c;
    c->peer_ = to;
    c->peer_text_ = to.to_string();
    c->outbound_ = true;
    c->started_ms_ = uv_now(loop);
    sockaddr_storage sa{};
    to.to_sockaddr(sa);
    c->connect_.data = c;
    const int err = uv_tcp_connect(&c->connect_, &c->tcp_, reinterpret_cast<const sockaddr*>(&sa), [](uv_connect_t* req, int status) {
        auto* c = static_cast<SipTcpConnection*>(req->data);
        if (c->closing_) return;
        if (status < 0) {
            log::warn("sip {} {}: connect failed: {}", c->tls_ ? "tls" : "tcp", c->name(), error_text(status));
            return c->close();
        }
        c->start_reading();
        if (c->closing_) return;
        if (c->tls_) return c->on_ciphertext({});   // the ClientHello
        c->became_ready();
    });
    if (err != 0) {
        c->closing_ = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp_), [](uv_handle_t* h) { delete static_cast<SipTcpConnection*>(h->data); });
        return nullptr;
    }
    // connect(2) has bound the socket: our address on this connection is known already.
    sockaddr_storage local{};
    int len = sizeof local;
    if (uv_tcp_getsockname(&c->tcp_, reinterpret_cast<sockaddr*>(&local), &len) == 0)
        c->local_ = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&local));
    return c;
}

std::string_view SipTcpConnection::name() const { return trunk_.empty() ? peer_text_ : trunk_; }

void SipTcpConnection::start_reading() {
    uv_tcp_nodelay(&tcp_, 1);
    if (uv_read_start(as_stream(&tcp_), on_alloc, on_read) != 0) close();
}

void SipTcpConnection::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    auto* c = static_cast<SipTcpConnection*>(h->data);
    *buf = uv_buf_init(c->read_buf_, sizeof c->read_buf_);
}

void SipTcpConnection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<SipTcpConnection*>(s->data);
    if (nread == 0 || c->closing_) return;
    if (nread < 0) {
        if (c->tls_ && !c->ready_) log::warn("sip tls {}: the connection closed during the TLS handshake", c->name());
        return c->close();
    }
    const std::string_view bytes(buf->base, static_cast<std::size_t>(nread));
    if (c->tls_) return c->on_ciphertext(bytes);
    c->on_plain(bytes);
}

void SipTcpConnection::on_written(uv_stream_t* s, int status) {
    auto* c = static_cast<SipTcpConnection*>(s->data);
    if (c->closing_) return;
    if (status < 0 || !io::apply_back_pressure(s, c->guard_, on_alloc, on_read)) c->close();
}

void SipTcpConnection::sweep(std::uint64_t now_ms) {
    if (closing_) return;
    if (const auto why = guard_.expired(now_ms)) {
        log::debug("sip {} {}: {}; closing", tls_ ? "tls" : "tcp", name(), io::to_string(*why));
        close();
    }
}

void SipTcpConnection::on_ciphertext(std::string_view bytes) {
    tls_->feed(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    std::uint8_t plain[16 * 1024];
    while (!closing_) {
        std::size_t n = 0, record = 0;
        switch (tls_->read(plain, n, record)) {
            case TlsSession::ReadResult::Data:
                on_plain(std::string_view(reinterpret_cast<const char*>(plain), n));
                continue;
            case TlsSession::ReadResult::NeedMore:
                flush_tls();
                if (!ready_ && tls_->established()) became_ready();
                return;
            case TlsSession::ReadResult::Closed:
                log::info("sip tls {}: closed by the peer", name());
                flush_tls();
                return close();
            case TlsSession::ReadResult::Error:
                // RFC 3261 §26.3.1: a certificate that does not match the trunk ends the connection.
                log::warn("sip tls {}: {}: {}", name(), ready_ ? "TLS error" : "TLS handshake failed", tls_->error());
                flush_tls();   // the alert
                return close();
        }
    }
}

void SipTcpConnection::on_plain(std::string_view bytes) {
    framer_.feed(bytes);
    std::string message;
    const std::uint64_t now = io::now_ms(as_stream(&tcp_));
    while (!closing_) {
        const auto st = framer_.next(message);
        if (st == SipStreamFramer::Status::NeedMore) {
            guard_.on_read(now, framer_.buffered() > 0);   // an unfinished message: the slowloris clock
            return;
        }
        if (st == SipStreamFramer::Status::Error) {
            log::debug("sip {} {}: unframeable stream (Content-Length); closing", tls_ ? "tls" : "tcp", name());
            return close();
        }
        guard_.on_message(now);
        owner_.on_sip_tcp_message(*this, message);
    }
}

void SipTcpConnection::became_ready() {
    ready_ = true;
    if (tls_) log::debug("sip tls {}: TLS established with {}", name(), peer_text_);
    auto queued = std::move(pending_);
    for (const auto& m : queued) write(m);
}

void SipTcpConnection::send(std::string_view message) {
    if (closing_) return;
    if (!ready_) {
        pending_.emplace_back(message);
        return;
    }
    write(message);
}

void SipTcpConnection::write(std::string_view bytes) {
    if (closing_ || bytes.empty()) return;
    if (!tls_) return write_raw(bytes);
    if (!tls_->write(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()))) {
        log::warn("sip tls {}: TLS write failed: {}", name(), tls_->error());
        return close();
    }
    flush_tls();
}

void SipTcpConnection::flush_tls() {
    std::uint8_t out[16 * 1024];
    while (!closing_ && tls_->pending() > 0) {
        const std::size_t n = tls_->take(out);
        if (n == 0) break;
        write_raw(std::string_view(reinterpret_cast<const char*>(out), n));
    }
}

void SipTcpConnection::write_raw(std::string_view bytes) {
    if (closing_ || bytes.empty()) return;
    if (write_copy(as_stream(&tcp_), bytes, on_written) != 0 || !io::apply_back_pressure(as_stream(&tcp_), guard_, on_alloc, on_read))
        close();
}

void SipTcpConnection::close() {
    if (closing_) return;
    closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
        auto* c = static_cast<SipTcpConnection*>(h->data);
        c->owner_.on_sip_tcp_closed(*c);
        delete c;
    });
}

}  // namespace turnbridge::net
