// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/host/ws_connection.hpp"

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/stream_connection.hpp"
#include "turnbridge/gateway/host/click_to_call_page.hpp"
#include "turnbridge/sip/websocket_handshake.hpp"

namespace turnbridge::gateway::host {
namespace {

std::string http_response(int status, std::string_view reason, std::string_view type, std::string_view cache,
                          std::string_view extra_headers, std::string_view body, bool head_only) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
    r += "Content-Type: " + std::string(type) + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    r += "Cache-Control: " + std::string(cache) + "\r\nX-Content-Type-Options: nosniff\r\n";
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
    const std::string headers = "Content-Security-Policy: " + csp + "\r\nReferrer-Policy: no-referrer\r\n";
    return http_response(200, "OK", "text/html; charset=utf-8", "no-cache", headers, kClickToCallPage, head_only);
}

}  // namespace

WsConnection::WsConnection(uv_loop_t* loop, WsOwner& owner, std::uint64_t id, const WsLimits& limits)
    : loop_(loop), owner_(owner), id_(id), decoder_(limits.max_message, limits.max_fragments),
      conn_(loop, io::StreamKind::WebSocket, limits.guard, limits.gate ? &limits.gate->stats() : nullptr, *this, *this) {}
WsConnection::~WsConnection() = default;

void WsConnection::accept(uv_loop_t* loop, uv_stream_t* server, SSL_CTX* tls, WsOwner& owner, std::uint64_t id,
                          const WsLimits& limits) {
    auto* c = new WsConnection(loop, owner, id, limits);
    // The upgrade ends the handshake phase (handshake_timeout covers TLS and the HTTP request).
    if (!c->conn_.accept(server, limits.gate, tls, true)) return;   // it frees itself when its handle is gone
    c->reported_ = true;
    owner.on_ws_opened(*c);
    log::debug("ws {}: connection opened", c->peer().to_string());
}

void WsConnection::on_closed(io::StreamConnection&) {
    if (reported_) owner_.on_ws_closed(*this);
    delete this;
}

void WsConnection::send_text(std::string_view payload) {
    if (conn_.closing() || conn_.draining() || !upgraded_) return;
    conn_.send(sip::websocket_frame(sip::WsOpcode::Text, payload));
}

bool WsConnection::on_bytes(std::string_view bytes) {
    if (!upgraded_) {
        http_.append(bytes);
        on_http();
        return true;
    }
    std::vector<sip::WsEvent> events;
    decoder_.feed(bytes, events);
    // Every frame counts as activity (a ping too); an unfinished one starts the message clock
    // (the connection checks buffered() after this), so a held fragment cannot pin its buffer.
    if (!events.empty()) conn_.guard().on_message(uv_now(loop_));
    // The pongs of one read leave in one write, not one syscall and one queued copy each.
    std::string replies;
    for (auto& e : events) {
        if (conn_.closing() || conn_.draining()) return true;
        if (auto* m = std::get_if<sip::WsMessage>(&e)) {
            owner_.on_ws_message(*this, m->payload);
        } else if (auto* r = std::get_if<sip::WsReply>(&e)) {
            replies += r->bytes;
        } else if (auto* c = std::get_if<sip::WsClosed>(&e)) {
            log::debug("ws {}: closed ({} {})", peer().to_string(), c->code, c->reason);
            if (c->code == sip::ws_close::TooBig) conn_.guard().count(io::StreamClose::TooLarge);
            if (!replies.empty()) conn_.send(std::exchange(replies, {}));  // the close echo goes last
            conn_.close_after_write();
        }
    }
    if (!replies.empty() && !conn_.closing() && !conn_.draining()) conn_.send(replies);
    return true;
}

void WsConnection::on_http() {
    const auto h = sip::websocket_handshake(http_);
    switch (h.kind) {
        case sip::Handshake::Kind::NeedMore: return;
        case sip::Handshake::Kind::Reject:
            log::debug("ws {}: upgrade refused: {}", peer().to_string(), h.reason);
            conn_.send(h.response);
            return conn_.close_after_write();
        case sip::Handshake::Kind::PlainGet: {
            const bool head = h.method == "HEAD";
            const std::string_view path = std::string_view(h.target).substr(0, h.target.find('?'));
            if (path == "/" || path == "/index.html")
                conn_.send(page_response(std::string_view(http_).substr(0, h.consumed), head));
            else
                conn_.send(http_response(404, "Not Found", "text/plain; charset=utf-8", "no-store",
                                         "", "not found\n", head));
            return conn_.close_after_write();
        }
        case sip::Handshake::Kind::Upgrade: {
            conn_.send(h.response);
            upgraded_ = true;
            conn_.guard().established(uv_now(loop_));
            const std::string rest = http_.substr(h.consumed);
            http_.clear();
            http_.shrink_to_fit();
            log::debug("ws {}: upgraded to SIP over WebSocket", peer().to_string());
            if (!rest.empty()) on_bytes(rest);
            return;
        }
    }
}

}  // namespace turnbridge::gateway::host
