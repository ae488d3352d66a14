// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/admin/http_server.hpp"

#include <chrono>
#include <optional>
#include <stdexcept>
#include <unistd.h>
#include <vector>

#include "turnbridge/admin/http_request.hpp"
#include "turnbridge/admin/http_response.hpp"
#include "turnbridge/admin/router.hpp"
#include "turnbridge/base/log.hpp"
#include "turnbridge/io/stream_connection.hpp"
#include "turnbridge/io/socket_util.hpp"

namespace turnbridge::admin {
namespace {

constexpr int kBacklog = 128;
constexpr std::size_t kReadBuffer = 64 * 1024;
constexpr std::uint64_t kLingerMs = 2'000;             // after our FIN: wait for the client's
constexpr std::uint64_t kSweepMs = 1'000;

std::int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool is_loopback(const IpAddress& ip) {
    if (ip.family == Family::V4) return ip.bytes[0] == 127;
    return ip == *IpAddress::parse("::1");
}

}  // namespace

struct HttpServer::Listener {
    uv_tcp_t tcp{};
    HttpServer* server = nullptr;
};

// One connection: its stream (io::StreamConnection) and, as its framer, the request parser. It
// outlives the server when the server closes first: its close callback frees it.
struct HttpServer::Connection final : io::Framer, io::StreamEvents {
    Connection(HttpServer* s, std::uint64_t n)
        : server(s), serial(n),
          conn(s->loop_, io::StreamKind::Admin, s->limits_.guard, s->gate_ ? &s->gate_->stats() : nullptr, *this, *this) {
        conn.use_read_buffer(s->read_buf_.get(), kReadBuffer);
    }
    HttpServer* server;      // null once the server has let it go
    RequestParser parser;
    std::uint64_t serial;    // accept order: the oldest is evicted first
    bool authed = false;     // a request passed the token check: never evicted
    bool reserve = false;    // took one of the reserved slots: its first request must pass the token check
    bool finishing = false;  // the last response is queued
    io::StreamConnection conn;

    bool on_bytes(std::string_view in) override {
        if (finishing || server == nullptr) return true;
        parser.feed(in);
        server->process(this);
        return true;
    }
    std::size_t buffered() const override { return finishing ? 0 : parser.buffered(); }
    // A client may shut down its side right after its request (HTTP/1.0 tools do): the answers
    // still go out, then the connection closes.
    void on_eof(io::StreamConnection&) override { conn.close_after_write(); }
    void on_resumed(io::StreamConnection&) override {
        if (server != nullptr) server->process(this);   // requests that arrived before the pause
    }
    void on_closed(io::StreamConnection&) override {
        if (server != nullptr) server->connections_.erase(this);
        delete this;
    }
};

HttpServer::HttpServer(uv_loop_t* loop, Backend& backend, std::string token)
    : loop_(loop), backend_(backend), token_(std::move(token)), read_buf_(new char[kReadBuffer]) {}

HttpServer::~HttpServer() { close(); }

void HttpServer::start(const Endpoint& listen) {
    if (listener_ != nullptr) throw std::logic_error("admin: HTTP server already started");
    if (token_.empty() && !is_loopback(listen.ip))
        throw std::runtime_error(fmt::format(
            "admin: refusing to listen on {} without a token; set [admin] token (only loopback may go without)",
            listen.to_string()));
    const int fd = io::open_bound_socket(io::SocketKind::Tcp, listen, {});
    if (fd < 0)
        throw std::runtime_error(fmt::format("admin: cannot listen on {}: {}", listen.to_string(), io::error_text(fd)));
    auto* l = new Listener;
    l->server = this;
    int err = uv_tcp_init(loop_, &l->tcp);
    if (err != 0) {
        ::close(fd);
        delete l;
        throw std::runtime_error(fmt::format("admin: cannot listen on {}: {}", listen.to_string(), io::error_text(err)));
    }
    l->tcp.data = l;
    err = uv_tcp_open(&l->tcp, fd);
    if (err != 0) ::close(fd);
    if (err == 0) err = uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), kBacklog, on_connection);
    if (err != 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
        throw std::runtime_error(fmt::format("admin: cannot listen on {}: {}", listen.to_string(), io::error_text(err)));
    }
    listener_ = l;
    sweep_ = new uv_timer_t;
    uv_timer_init(loop_, sweep_);
    sweep_->data = this;
    uv_timer_start(sweep_, [](uv_timer_t* t) { static_cast<HttpServer*>(t->data)->sweep(); }, kSweepMs, kSweepMs);
    sockaddr_storage sa{};
    int len = sizeof sa;
    local_ = listen;
    if (uv_tcp_getsockname(&l->tcp, reinterpret_cast<sockaddr*>(&sa), &len) == 0)
        if (auto ep = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sa))) local_ = *ep;
    log::info("admin: HTTP API on {}{}", local_.to_string(), token_.empty() ? " (no token: loopback only)" : "");
}

void HttpServer::close() {
    if (listener_ != nullptr) {
        listener_->server = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(&listener_->tcp),
                 [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
        listener_ = nullptr;
    }
    if (sweep_ != nullptr) {
        uv_close(reinterpret_cast<uv_handle_t*>(sweep_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        sweep_ = nullptr;
    }
    auto open = std::move(connections_);
    connections_.clear();
    for (Connection* c : open) {
        c->server = nullptr;
        c->conn.close();
    }
}

void HttpServer::on_connection(uv_stream_t* server, int status) {
    auto* l = static_cast<Listener*>(server->data);
    if (status < 0) {
        log::debug("admin: accept error: {}", io::error_text(status));
        return;
    }
    if (l->server != nullptr) l->server->accept(server);
}

void HttpServer::accept(uv_stream_t* server) {
    const bool full = connections_.size() >= limits_.max_connections && !make_room();
    auto* c = new Connection(this, next_serial_++);
    connections_.insert(c);
    // Refused by the gate (counted) or failed: its close callback frees it.
    if (!c->conn.accept(server, full ? nullptr : gate_)) return;
    if (full) {
        if (gate_ != nullptr) gate_->stats().refused(io::StreamKind::Admin, io::Refusal::Global);
        return drop(c);
    }
    c->reserve = connections_.size() - 1 + limits_.reserved >= limits_.max_connections;
}

// Full: the oldest connection that has not shown the token goes, so that idle or slow
// strangers cannot lock the operator out (issue 11: 64 idle connections did).
bool HttpServer::make_room() {
    Connection* oldest = nullptr;
    for (Connection* c : connections_)
        if (!c->authed && !c->conn.closing() && (oldest == nullptr || c->serial < oldest->serial)) oldest = c;
    if (oldest == nullptr) return false;
    oldest->conn.guard().count(io::StreamClose::Evicted);
    drop(oldest);
    return true;
}

void HttpServer::sweep() {
    const std::uint64_t now = uv_now(loop_);
    std::vector<Connection*> open(connections_.begin(), connections_.end());
    for (Connection* c : open) c->conn.sweep(now);   // a close is reported later: no erase here
}

void HttpServer::process(Connection* c) {
    while (!c->conn.closing() && !c->finishing && !c->conn.guard().paused()) {
        Request req;
        const auto status = c->parser.next(req);
        if (status == RequestParser::Status::NeedMore) return;
        const std::int64_t now = now_ms();
        if (status == RequestParser::Status::Error) {
            // Framing is lost: answer once and close (RFC 9112 §9.6 allows closing at any time).
            c->conn.send(serialize(json_error(c->parser.error_status(), c->parser.error_text()), false, false, now));
            return finish(c);
        }
        RouterConfig rc{token_, now, {}};
        if (auth_ != nullptr) rc.auth = {auth_, c->conn.peer().ip, std::chrono::steady_clock::now()};
        const Response resp = handle(req, backend_, rc);
        // 401: no or a wrong token; 429: the source is over security.auth_failures_per_minute.
        if (resp.status != 401 && resp.status != 429) c->authed = true;
        // A reserved slot is for the operator: a request without the token gets its answer and
        // the connection closes.
        const bool keep = req.keep_alive && !resp.close && (c->authed || !c->reserve);
        c->conn.send(serialize(resp, keep, req.method == "HEAD", now));
        if (!keep) return finish(c);
        c->conn.guard().on_message(uv_now(loop_));  // the idle clock runs from the last whole request
    }
}

// Closing right away could reset the connection while the client still sends (the rest of a
// rejected body), and a reset can destroy the response in flight: send FIN, read until the
// client closes too, or give up kLingerMs after the FIN.
void HttpServer::finish(Connection* c) {
    c->finishing = true;
    c->conn.close_after_write(kLingerMs);
}

void HttpServer::drop(Connection* c) {
    connections_.erase(c);
    c->server = nullptr;
    c->conn.close();   // the slot is free now, not when the loop has closed the handle
}

}  // namespace turnbridge::admin
