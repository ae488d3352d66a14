// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/net/ws_connection.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/stream_connection.hpp"
#include "turnbridge/io/stream_flow.hpp"
#include "turnbridge/net/click_to_call_page.hpp"
#include "turnbridge/net/socket_util.hpp"
#include "turnbridge/net/tls_session.hpp"
#include "turnbridge/sip/websocket_handshake.hpp"

namespace turnbridge::net {
namespace {

uv_stream_t* as_stream(uv_tcp_t* t) { return reinterpret_cast<uv_stream_t*>(t); }

std::string http_response(int status, std::string_view reason, std::string_view type, std::string_view cache,
                          std::string_view extra_headers, std::string_view body, bool head_only) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
    r += "Content-Type: " + std::string(type) + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    r += "Cache-Control: " + std::string(cache) + "\r\n";
    r += extra_headers;
    r += "Connection: close\r\n\r\n";
    if (!head_only) r.append(body);
    return r;
}

// The request's Host value when it is a plain host[:port] (RFC 9110 §7.2), else empty: it is
// echoed into the CSP, so nothing but name, address and port characters may pass.
std::string host_of(std::string_view request) {
    for (std::size_t at = request.find("\r\n"); at != std::string_view::npos; at = request.find("\r\n", at + 2)) {
        std::string_view line = request.substr(at + 2);
        line = line.substr(0, line.find("\r\n"));
        if (line.empty()) break;
        if (line.size() < 5 || !std::equal(line.begin(), line.begin() + 5, "host:", [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) == b;
            }))
            continue;
        line.remove_prefix(5);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
        const bool plain = !line.empty() && line.size() <= 255 && std::all_of(line.begin(), line.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
        });
        return plain ? std::string(line) : std::string();
    }
    return {};
}

// GET / and /index.html: the click-to-call page (issue 4). Its script talks SIP over a
// WebSocket back to this same host, so the policy allows that and the page's own inline blocks.
std::string page_response(std::string_view request, bool head_only) {
    std::string csp(kClickToCallCsp);
    csp += "; connect-src 'self'";
    // CSP3 lets 'self' match ws:/wss: to the same host; older engines need them spelled out.
    if (const std::string host = host_of(request); !host.empty()) csp += " ws://" + host + " wss://" + host;
    const std::string headers = "Content-Security-Policy: " + csp +
                                "\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n";
    return http_response(200, "OK", "text/html; charset=utf-8", "no-cache", headers, kClickToCallPage, head_only);
}

}  // namespace

WsConnection::WsConnection(WsOwner& owner, std::uint64_t id, const WsLimits& limits, std::uint64_t now_ms)
    : owner_(owner), id_(id), decoder_(limits.max_message, limits.max_fragments),
      guard_(io::StreamKind::WebSocket, limits.guard, limits.gate ? &limits.gate->stats() : nullptr, now_ms) {}
WsConnection::~WsConnection() = default;

void WsConnection::accept(uv_loop_t* loop, uv_stream_t* server, SSL_CTX* tls, WsOwner& owner, std::uint64_t id,
                          const WsLimits& limits) {
    auto* c = new WsConnection(owner, id, limits, uv_now(loop));
    if (uv_tcp_init(loop, &c->tcp_) != 0) {
        delete c;
        return;
    }
    c->tcp_.data = c;
    c->closing_ = true;   // until accepted: close() must not report to the owner
    auto fail = [c] { uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp_), [](uv_handle_t* h) {
                          delete static_cast<WsConnection*>(h->data);
                      }); };
    if (uv_accept(server, as_stream(&c->tcp_)) != 0) return fail();
    const std::optional<Endpoint> ep = tcp_peer(&c->tcp_);
    if (!ep) return fail();
    c->peer_ = *ep;
    if (limits.gate != nullptr && !(c->ticket_ = limits.gate->admit(ep->ip))) return fail();   // counted, not logged
    if (tls != nullptr) {
        c->tls_ = std::make_unique<TlsSession>(tls);
        if (!c->tls_->ok()) return fail();
    }
    uv_tcp_nodelay(&c->tcp_, 1);
    if (uv_read_start(as_stream(&c->tcp_), on_alloc, on_read) != 0) return fail();
    c->closing_ = false;
    c->accepted_ms_ = uv_now(loop);
    owner.on_ws_opened(*c);
    log::debug("ws {}: connection opened", c->peer_.to_string());
}

void WsConnection::send_text(std::string_view payload) {
    if (closing_ || draining_ || !upgraded_) return;
    write_plain(sip::websocket_frame(sip::WsOpcode::Text, payload));
}

void WsConnection::sweep(std::uint64_t now_ms) {
    if (closing_) return;
    if (const auto why = guard_.expired(now_ms)) {
        log::debug("ws {}: {}; closing", peer_.to_string(), io::to_string(*why));
        close();
    }
}

void WsConnection::on_written(uv_stream_t* s, int status) {
    auto* c = static_cast<WsConnection*>(s->data);
    if (c->closing_) return;
    // While draining, reading is off for good: only the hard bound applies.
    if (status < 0 || (!c->draining_ && !io::apply_back_pressure(s, c->guard_, on_alloc, on_read))) c->close();
}

void WsConnection::close() {
    if (closing_) return;
    closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
        auto* c = static_cast<WsConnection*>(h->data);
        c->owner_.on_ws_closed(*c);
        delete c;
    });
}

void WsConnection::close_after_write() {
    if (closing_ || draining_) return;
    draining_ = true;
    uv_read_stop(as_stream(&tcp_));
    shutdown_.data = this;
    // uv_shutdown waits for the queued writes, so the response leaves before the FIN.
    if (uv_shutdown(&shutdown_, as_stream(&tcp_), [](uv_shutdown_t* s, int) {
            static_cast<WsConnection*>(s->data)->close();
        }) != 0)
        close();
}

void WsConnection::write_plain(std::string_view bytes) {
    if (!tls_) return write_raw(bytes);
    if (!tls_->established()) return;
    if (!tls_->write(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()))) {
        log::debug("ws {}: TLS write failed: {}", peer_.to_string(), tls_->error());
        return close();
    }
    flush_tls();
}

void WsConnection::flush_tls() {
    std::uint8_t out[16 * 1024];
    while (!closing_ && tls_->pending() > 0) {
        const std::size_t n = tls_->take(out);
        if (n == 0) break;
        write_raw(std::string_view(reinterpret_cast<const char*>(out), n));
    }
}

void WsConnection::write_raw(std::string_view bytes) {
    if (closing_ || bytes.empty()) return;
    if (io::write_copy(as_stream(&tcp_), bytes, on_written) != 0) return close();
    if (!draining_ && !io::apply_back_pressure(as_stream(&tcp_), guard_, on_alloc, on_read)) close();
}

void WsConnection::on_plain(std::string_view bytes) {
    if (!upgraded_) {
        http_.append(bytes);
        return on_http();
    }
    std::vector<sip::WsEvent> events;
    decoder_.feed(bytes, events);
    const std::uint64_t now = io::now_ms(as_stream(&tcp_));
    // Every frame counts as activity (a ping too); an unfinished frame or message starts the
    // message clock, so a held fragment cannot pin its buffer for long.
    if (!events.empty()) guard_.on_message(now);
    guard_.on_read(now, decoder_.buffered() > 0);
    // The pongs of one read leave in one write, not one syscall and one queued copy each.
    std::string replies;
    for (auto& e : events) {
        if (closing_) return;
        if (auto* m = std::get_if<sip::WsMessage>(&e)) {
            owner_.on_ws_message(*this, m->payload);
        } else if (auto* r = std::get_if<sip::WsReply>(&e)) {
            replies += r->bytes;
        } else if (auto* c = std::get_if<sip::WsClosed>(&e)) {
            log::debug("ws {}: closed ({} {})", peer_.to_string(), c->code, c->reason);
            if (c->code == sip::ws_close::TooBig) guard_.count(io::StreamClose::TooLarge);
            if (!replies.empty()) write_plain(std::exchange(replies, {}));  // the close echo goes last
            close_after_write();
        }
    }
    if (!replies.empty() && !closing_ && !draining_) write_plain(replies);
}

void WsConnection::on_http() {
    const auto h = sip::websocket_handshake(http_);
    switch (h.kind) {
        case sip::Handshake::Kind::NeedMore: return;
        case sip::Handshake::Kind::Reject:
            log::debug("ws {}: upgrade refused: {}", peer_.to_string(), h.reason);
            write_plain(h.response);
            return close_after_write();
        case sip::Handshake::Kind::PlainGet: {
            const bool head = h.method == "HEAD";
            const std::string_view path = std::string_view(h.target).substr(0, h.target.find('?'));
            if (path == "/" || path == "/index.html")
                write_plain(page_response(std::string_view(http_).substr(0, h.consumed), head));
            else
                write_plain(http_response(404, "Not Found", "text/plain; charset=utf-8", "no-store",
                                          "X-Content-Type-Options: nosniff\r\n", "not found\n", head));
            return close_after_write();
        }
        case sip::Handshake::Kind::Upgrade: {
            write_plain(h.response);
            upgraded_ = true;
            guard_.established(io::now_ms(as_stream(&tcp_)));
            const std::string rest = http_.substr(h.consumed);
            http_.clear();
            http_.shrink_to_fit();
            log::debug("ws {}: upgraded to SIP over WebSocket", peer_.to_string());
            if (!rest.empty()) on_plain(rest);
            return;
        }
    }
}

void WsConnection::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    auto* c = static_cast<WsConnection*>(h->data);
    *buf = uv_buf_init(c->read_buf_, sizeof c->read_buf_);
}

void WsConnection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<WsConnection*>(s->data);
    if (nread == 0 || c->closing_ || c->draining_) return;
    if (nread < 0) return c->close();
    const std::string_view bytes(buf->base, static_cast<std::size_t>(nread));
    if (!c->tls_) return c->on_plain(bytes);
    c->tls_->feed(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    std::uint8_t plain[16 * 1024];
    while (!c->closing_ && !c->draining_) {
        std::size_t n = 0, record = 0;
        switch (c->tls_->read(plain, n, record)) {
            case TlsSession::ReadResult::Data:
                c->on_plain(std::string_view(reinterpret_cast<const char*>(plain), n));
                continue;
            case TlsSession::ReadResult::NeedMore:
                c->flush_tls();
                return;
            case TlsSession::ReadResult::Closed:
            case TlsSession::ReadResult::Error:
                c->flush_tls();
                return c->close_after_write();
        }
    }
}

}  // namespace turnbridge::net
