// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/server/tcp_connection.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/stream_flow.hpp"
#include "turnbridge/io/stream_limits.hpp"
#include "turnbridge/io/loop_clock.hpp"
#include "turnbridge/io/socket_util.hpp"
#include "turnbridge/io/tls_session.hpp"
#include "turnbridge/io/udp_send.hpp"
#include "turnbridge/server/worker.hpp"

namespace turnbridge::net {
namespace {

// A queued copy of unsent bytes: the request, then the bytes, in one malloc.
struct QueuedWrite {
    uv_write_t req;
    char* data() { return reinterpret_cast<char*>(this + 1); }
};

uv_buf_t piece(stun::Bytes b) {
    return uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(b.data())), static_cast<unsigned>(b.size()));
}

uv_stream_t* as_stream(uv_tcp_t* t) { return reinterpret_cast<uv_stream_t*>(t); }

// Relayed data from a client: ChannelData (first byte 0x40-0x7F, RFC 8656 §12) or a Send
// indication (STUN type 0x0016). A record is judged by the frame it starts with; clients write
// one message per record.
bool carries_relayed_data(stun::Bytes plain) {
    if (plain.size() < 2) return false;
    if (plain[0] >= 0x40 && plain[0] <= 0x7F) return true;
    return plain[0] == 0x00 && plain[1] == 0x16;
}

}  // namespace

TcpConnection::TcpConnection(Worker& worker, const Endpoint& local, Transport transport)
    : worker_(worker), accepted_(read_clock().mono), framer_(kMaxFrameBuffer),
      guard_(io::StreamKind::Turn, io::guard_limits(worker.config().streams, io::StreamKind::Turn), worker.stream_stats(),
             uv_now(worker.loop())) {
    five_tuple_.transport = transport;
    five_tuple_.server = local;
}

TcpConnection::~TcpConnection() = default;

void TcpConnection::accept(Worker& worker, uv_stream_t* server, const Endpoint& local, Transport transport,
                           SSL_CTX* tls) {
    auto* c = new TcpConnection(worker, local, transport);
    if (uv_tcp_init(worker.loop(), &c->tcp_) != 0) {
        delete c;
        return;
    }
    c->tcp_.data = c;
    if (uv_accept(server, as_stream(&c->tcp_)) != 0) {
        c->close();
        return;
    }
    const std::optional<Endpoint> client = tcp_peer(&c->tcp_);
    if (!client) {
        c->close();
        return;
    }
    c->five_tuple_.client = *client;
    if (io::StreamGates* gates = worker.stream_gates()) {
        // Refused (counted in /metrics, no log line: the refusals are what an attack looks like).
        c->ticket_ = gates->gate(io::StreamKind::Turn).admit(client->ip);
        if (!c->ticket_) {
            c->close();
            return;
        }
    }
    if (transport == Transport::Tls) {
        if (tls != nullptr) c->tls_ = std::make_unique<TlsSession>(tls);
        if (!c->tls_ || !c->tls_->ok()) {
            log::warn("tls {}: no TLS context for a new connection; closing it", local.to_string());
            c->close();
            return;
        }
    }
    if (!c->tls_) c->guard_.established(uv_now(worker.loop()));  // plain TCP has no handshake
    // STUN transactions are small and latency-bound: no Nagle delay.
    uv_tcp_nodelay(&c->tcp_, 1);
    if (uv_read_start(as_stream(&c->tcp_), on_alloc, on_read) != 0) {
        c->close();
        return;
    }
    c->registered_ = true;
    worker.add_connection(c);
    log::debug("connection opened: {}", c->five_tuple_.to_string());
}

void TcpConnection::send(stun::Bytes head, stun::Bytes body, std::uint8_t pad) {
    if (closing_) return;
    const std::size_t backlog = uv_stream_get_write_queue_size(as_stream(&tcp_));
    // Relayed data (it has a body) may be lost like on UDP; responses (no body) are always sent.
    if (!body.empty() && backlog + pending_.size() > kMaxRelayBacklog) return;
    if (body.empty()) {
        flush_pending();  // what was relayed before this response goes first
        if (closing_) return;
    }
    uv_buf_t bufs[3];
    unsigned n = 0;
    bufs[n++] = piece(head);
    if (!body.empty()) bufs[n++] = piece(body);
    if (pad != 0) bufs[n++] = uv_buf_init(const_cast<char*>(kZeroPad), pad & 3u);
    if (!tls_) {
        if (body.empty()) {
            write_raw(bufs, n);
            return;
        }
        std::size_t len = 0;
        for (unsigned i = 0; i < n; ++i) len += bufs[i].len;
        if (pending_.size() + len > kMaxPending) flush_pending();
        if (len > kMaxPending) {
            write_raw(bufs, n);
            return;
        }
        if (pending_.capacity() == 0) pending_.reserve(kMaxPending);  // once per connection
        for (unsigned i = 0; i < n; ++i)
            pending_.insert(pending_.end(), bufs[i].base, bufs[i].base + bufs[i].len);
        list_pending();
        return;
    }
    if (!tls_->established()) return;
    // One SSL_write, so that a message is one TLS record rather than three.
    auto out = worker_.tls_plain_out();
    std::size_t len = 0;
    for (unsigned i = 0; i < n; ++i) {
        if (len + bufs[i].len > out.size()) return;  // cannot happen: frames are < 64 KiB + header
        std::memcpy(out.data() + len, bufs[i].base, bufs[i].len);
        len += bufs[i].len;
    }
    const std::size_t queued = tls_->pending();
    if (!tls_->write(out.first(len))) {
        log::debug("connection {}: TLS write failed: {}", five_tuple_.to_string(), tls_->error());
        close();
        return;
    }
    // The record's header and tag are wire bytes of relayed data too (responses have no body).
    const std::size_t record = tls_->pending() - queued;
    if (!body.empty() && record > len) worker_.add_wire_overhead(five_tuple_, turn::Direction::RelayToClient, record - len);
    // Each message stays its own record; the records of a batch leave in one write.
    if (!body.empty() && tls_->pending() < kMaxPending) {
        list_pending();
        return;
    }
    flush_tls();
}

void TcpConnection::list_pending() {
    if (listed_) return;
    listed_ = true;
    worker_.stream_pending(this);
}

void TcpConnection::flush_pending() {
    listed_ = false;
    if (closing_) return;
    if (tls_) {
        flush_tls();
        return;
    }
    if (pending_.empty()) return;
    const uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(pending_.data()), static_cast<unsigned>(pending_.size()));
    write_raw(&b, 1);
    pending_.clear();  // keeps its capacity
}

void TcpConnection::sweep(std::uint64_t now_ms, bool allocated) {
    if (closing_) return;
    guard_.set_idle_exempt(allocated);
    if (const auto why = guard_.expired(now_ms)) {
        log::debug("connection {}: {}; closing", five_tuple_.to_string(), io::to_string(*why));
        close();
    }
}

void TcpConnection::check_queue() {
    if (closing_ || io::apply_back_pressure(as_stream(&tcp_), guard_, on_alloc, on_read)) return;
    log::debug("connection {}: client is not reading ({} bytes unsent); closing", five_tuple_.to_string(),
               uv_stream_get_write_queue_size(as_stream(&tcp_)));
    close();
}

void TcpConnection::close() {
    if (closing_) return;
    if (listed_) worker_.stream_gone(this), listed_ = false;
    closing_ = true;
    if (registered_) worker_.remove_connection(this);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
}

void TcpConnection::on_bytes(stun::Bytes data) {
    while (!data.empty() && !closing_) {
        // Feed no more than the framer holds, so a burst of small frames never looks like overflow.
        const std::size_t chunk = std::min(data.size(), kMaxFrameBuffer - framer_.buffered());
        if (chunk == 0 || !framer_.feed(data.first(chunk))) {
            log::debug("connection {}: frame too large; closing", five_tuple_.to_string());
            close();
            return;
        }
        data = data.subspan(chunk);
        for (;;) {
            stun::Bytes frame;
            const auto status = framer_.next(frame);
            if (status == turn::StreamFramer::Status::NeedMore) break;
            if (status == turn::StreamFramer::Status::Error) {
                // RFC 8656 §12.5: neither STUN nor ChannelData; the stream cannot be resynchronised.
                log::debug("connection {}: framing error; closing", five_tuple_.to_string());
                worker_.flush_sends();  // earlier frames' payloads point into the framer
                close();
                return;
            }
            guard_.on_message(uv_now(worker_.loop()));
            // The frames of one read share a batch: what they relay leaves together below.
            worker_.on_client_data(five_tuple_, frame, true);
            if (closing_) break;
        }
        // Queued payloads point into this read or the framer, which the next feed may move.
        worker_.flush_sends();
        if (closing_) return;
    }
    guard_.on_read(uv_now(worker_.loop()), framer_.buffered() > 0);  // RFC 8656 §12.5 framing: a slowloris
}

void TcpConnection::on_ciphertext(stun::Bytes data) {
    tls_->feed(data);
    const auto plain = worker_.tls_plain_in();
    while (!closing_) {
        std::size_t n = 0;
        std::size_t record = 0;
        switch (tls_->read(plain, n, record)) {
            case TlsSession::ReadResult::Data:
                on_bytes(stun::Bytes(plain.data(), n));
                // Wire bytes include TLS framing (the "TCP/TLS framing"): a record that
                // carried relayed data adds its header and tag to the allocation's client leg.
                if (record > n && !closing_ && carries_relayed_data(stun::Bytes(plain.data(), n)))
                    worker_.add_wire_overhead(five_tuple_, turn::Direction::ClientToRelay, record - n);
                continue;
            case TlsSession::ReadResult::NeedMore:
                if (!guard_.is_established() && tls_->established()) guard_.established(uv_now(worker_.loop()));
                flush_tls();  // handshake messages, session tickets
                return;
            case TlsSession::ReadResult::Closed:
                flush_tls();
                close();
                return;
            case TlsSession::ReadResult::Error:
                log::debug("connection {}: TLS {} failed: {}", five_tuple_.to_string(),
                           tls_->established() ? "read" : "handshake", tls_->error());
                flush_tls();  // the alert, if any
                close();
                return;
        }
    }
}

void TcpConnection::flush_tls() {
    const auto out = worker_.tls_cipher_out();
    while (!closing_ && tls_->pending() > 0) {
        const std::size_t n = tls_->take(out);
        if (n == 0) break;
        const uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(out.data()), static_cast<unsigned>(n));
        write_raw(&b, 1);
    }
}

void TcpConnection::write_raw(const uv_buf_t* bufs, unsigned n) {
    std::size_t total = 0;
    for (unsigned i = 0; i < n; ++i) total += bufs[i].len;
    // uv_try_write refuses (EAGAIN) while earlier writes are queued, so order is kept.
    int r = uv_try_write(as_stream(&tcp_), bufs, n);
    if (r == UV_EAGAIN) r = 0;
    if (r < 0) {
        log::debug("connection {}: write error: {}", five_tuple_.to_string(), error_text(r));
        close();
        return;
    }
    if (static_cast<std::size_t>(r) < total) {
        queue_copy(bufs, n, static_cast<std::size_t>(r));
        check_queue();
    }
}

void TcpConnection::queue_copy(const uv_buf_t* bufs, unsigned n, std::size_t skip) {
    std::size_t len = 0;
    for (unsigned i = 0; i < n; ++i) len += bufs[i].len;
    len -= skip;
    auto* q = static_cast<QueuedWrite*>(std::malloc(sizeof(QueuedWrite) + len));
    if (q == nullptr) {
        close();
        return;
    }
    std::size_t off = 0;
    for (unsigned i = 0; i < n; ++i) {
        std::size_t from = 0;
        if (skip >= bufs[i].len) {
            skip -= bufs[i].len;
            continue;
        }
        from = skip;
        skip = 0;
        std::memcpy(q->data() + off, bufs[i].base + from, bufs[i].len - from);
        off += bufs[i].len - from;
    }
    const uv_buf_t b = uv_buf_init(q->data(), static_cast<unsigned>(len));
    if (uv_write(&q->req, as_stream(&tcp_), &b, 1, on_written) != 0) {
        std::free(q);
        close();
    }
}

void TcpConnection::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    *buf = static_cast<TcpConnection*>(h->data)->worker_.stream_buffer();
}

void TcpConnection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<TcpConnection*>(s->data);
    if (nread == 0 || c->closing_) return;
    if (nread < 0) {
        if (nread != UV_EOF)
            log::debug("connection {}: read error: {}", c->five_tuple_.to_string(), error_text(static_cast<int>(nread)));
        c->close();  // RFC 8656 §5: the allocation of a stream 5-tuple ends with the connection
        return;
    }
    const stun::Bytes bytes(reinterpret_cast<const std::uint8_t*>(buf->base), static_cast<std::size_t>(nread));
    if (c->tls_)
        c->on_ciphertext(bytes);
    else
        c->on_bytes(bytes);
}

void TcpConnection::on_written(uv_write_t* req, int status) {
    auto* c = static_cast<TcpConnection*>(req->handle->data);
    std::free(reinterpret_cast<QueuedWrite*>(req));
    // ECANCELED: the connection is closing and libuv drops what it had queued.
    if (status < 0 && status != UV_ECANCELED && !c->closing_) {
        log::debug("connection {}: write error: {}", c->five_tuple_.to_string(), error_text(status));
        c->close();
        return;
    }
    c->check_queue();
}

void TcpConnection::on_closed(uv_handle_t* h) {
    auto* c = static_cast<TcpConnection*>(h->data);
    if (c->registered_) c->worker_.connection_closed(c->five_tuple_);
    delete c;
}

}  // namespace turnbridge::net
