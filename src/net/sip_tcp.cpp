// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/net/sip_tcp.hpp"

#include <cstdlib>
#include <cstring>
#include <sys/socket.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/net/socket_util.hpp"

namespace turnbridge::net {
namespace {

uv_stream_t* as_stream(uv_tcp_t* t) { return reinterpret_cast<uv_stream_t*>(t); }

struct QueuedWrite {
    uv_write_t req;
    void (*failed)(uv_stream_t*);
    char* data() { return reinterpret_cast<char*>(this + 1); }
};

}  // namespace

int write_copy(uv_stream_t* stream, std::string_view bytes, void (*failed)(uv_stream_t*)) {
    auto* q = static_cast<QueuedWrite*>(std::malloc(sizeof(QueuedWrite) + bytes.size()));
    if (q == nullptr) return UV_ENOMEM;
    q->failed = failed;
    std::memcpy(q->data(), bytes.data(), bytes.size());
    const uv_buf_t b = uv_buf_init(q->data(), static_cast<unsigned>(bytes.size()));
    const int err = uv_write(&q->req, stream, &b, 1, [](uv_write_t* req, int status) {
        auto* q = reinterpret_cast<QueuedWrite*>(req);
        auto* failed = q->failed;
        uv_stream_t* s = req->handle;
        std::free(q);
        if (status < 0 && status != UV_ECANCELED) failed(s);
    });
    if (err != 0) std::free(q);
    return err;
}

SipTcpConnection* SipTcpConnection::accept(uv_loop_t* loop, uv_stream_t* server, SipTcpOwner& owner, std::uint64_t id) {
    auto* c = new SipTcpConnection(owner, id);
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
    c->closing_ = false;
    c->connected_ = true;
    c->start_reading();
    return c->closing_ ? nullptr : c;
}

SipTcpConnection* SipTcpConnection::connect(uv_loop_t* loop, const Endpoint& to, SipTcpOwner& owner, std::uint64_t id) {
    auto* c = new SipTcpConnection(owner, id);
    if (uv_tcp_init(loop, &c->tcp_) != 0) {
        delete c;
        return nullptr;
    }
    c->tcp_.data = c;
    c->peer_ = to;
    c->outbound_ = true;
    sockaddr_storage sa{};
    to.to_sockaddr(sa);
    c->connect_.data = c;
    const int err = uv_tcp_connect(&c->connect_, &c->tcp_, reinterpret_cast<const sockaddr*>(&sa), [](uv_connect_t* req, int status) {
        auto* c = static_cast<SipTcpConnection*>(req->data);
        if (c->closing_) return;
        if (status < 0) {
            log::info("sip tcp {}: connect failed: {}", c->peer_.to_string(), error_text(status));
            return c->close();
        }
        c->connected_ = true;
        c->start_reading();
        auto queued = std::move(c->pending_);
        for (const auto& m : queued) c->write(m);
    });
    if (err != 0) {
        c->closing_ = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp_), [](uv_handle_t* h) { delete static_cast<SipTcpConnection*>(h->data); });
        return nullptr;
    }
    return c;
}

void SipTcpConnection::start_reading() {
    uv_tcp_nodelay(&tcp_, 1);
    const int err = uv_read_start(
        as_stream(&tcp_),
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
            auto* c = static_cast<SipTcpConnection*>(h->data);
            *buf = uv_buf_init(c->read_buf_, sizeof c->read_buf_);
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
            auto* c = static_cast<SipTcpConnection*>(s->data);
            if (nread == 0 || c->closing_) return;
            if (nread < 0) return c->close();
            c->framer_.feed(std::string_view(buf->base, static_cast<std::size_t>(nread)));
            std::string message;
            for (;;) {
                const auto st = c->framer_.next(message);
                if (st == SipStreamFramer::Status::NeedMore) return;
                if (st == SipStreamFramer::Status::Error) {
                    log::debug("sip tcp {}: unframeable stream (Content-Length); closing", c->peer_.to_string());
                    return c->close();
                }
                c->owner_.on_sip_tcp_message(*c, message);
                if (c->closing_) return;
            }
        });
    if (err != 0) close();
}

void SipTcpConnection::send(std::string_view message) {
    if (closing_) return;
    if (!connected_) {
        pending_.emplace_back(message);
        return;
    }
    write(message);
}

void SipTcpConnection::write(std::string_view bytes) {
    if (closing_ || bytes.empty()) return;
    if (write_copy(as_stream(&tcp_), bytes, [](uv_stream_t* s) { static_cast<SipTcpConnection*>(s->data)->close(); }) != 0)
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
