// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/admin/http_server.hpp"

#include <chrono>
#include <optional>
#include <stdexcept>
#include <optional>
#include <unistd.h>
#include <vector>

#include "turnbridge/admin/http_request.hpp"
#include "turnbridge/admin/http_response.hpp"
#include "turnbridge/admin/router.hpp"
#include "turnbridge/base/log.hpp"
#include "turnbridge/io/socket_util.hpp"

namespace turnbridge::admin {
namespace {

constexpr int kBacklog = 128;
constexpr std::size_t kReadBuffer = 64 * 1024;
constexpr std::uint64_t kLingerMs = 2'000;             // after the last response: wait for the FIN
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

struct HttpServer::Connection {
    explicit Connection(HttpServer* s) : server(s) {}
    HttpServer* server;
    uv_tcp_t tcp{};
    uv_timer_t timer{};
    uv_shutdown_t shutdown{};
    RequestParser parser;
    std::optional<IpAddress> peer;  // for the failed-token throttle
    io::GateTicket ticket;
    std::optional<io::StreamGuard> guard;
    std::uint64_t serial = 0;  // accept order: the oldest is evicted first
    bool authed = false;     // a request passed the token check: never evicted
    bool reserve = false;    // took one of the reserved slots: its first request must pass the token check
    int open_handles = 0;
    bool closing = false;    // uv_close() called: every callback from here on only cleans up
    bool finishing = false;  // the last response is queued; later bytes are read and dropped
    bool paused = false;     // reading stopped until the client reads what we wrote
    bool eof = false;        // the client shut down its side; answer what it asked, then close
    int pending_writes = 0;
    uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp); }

    // Both handles close; the last close callback frees the connection.
    void close_handles() {
        if (closing) return;
        closing = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_closed);
        uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_closed);
    }
    static void on_closed(uv_handle_t* h) {
        auto* c = static_cast<Connection*>(h->data);
        if (--c->open_handles == 0) delete c;
    }
};

struct HttpServer::Write {
    uv_write_t req{};
    std::string bytes;
    Connection* conn = nullptr;
    bool last = false;
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
    const int fd = net::open_bound_socket(net::SocketKind::Tcp, listen, {});
    if (fd < 0)
        throw std::runtime_error(fmt::format("admin: cannot listen on {}: {}", listen.to_string(), net::error_text(fd)));
    auto* l = new Listener;
    l->server = this;
    int err = uv_tcp_init(loop_, &l->tcp);
    if (err != 0) {
        ::close(fd);
        delete l;
        throw std::runtime_error(fmt::format("admin: cannot listen on {}: {}", listen.to_string(), net::error_text(err)));
    }
    l->tcp.data = l;
    err = uv_tcp_open(&l->tcp, fd);
    if (err != 0) ::close(fd);
    if (err == 0) err = uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), kBacklog, on_connection);
    if (err != 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
        throw std::runtime_error(fmt::format("admin: cannot listen on {}: {}", listen.to_string(), net::error_text(err)));
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
    for (Connection* c : connections_) c->close_handles();
    connections_.clear();
}

void HttpServer::on_connection(uv_stream_t* server, int status) {
    auto* l = static_cast<Listener*>(server->data);
    if (status < 0) {
        log::debug("admin: accept error: {}", net::error_text(status));
        return;
    }
    if (l->server != nullptr) l->server->accept(server);
}

void HttpServer::accept(uv_stream_t* server) {
    auto* c = new Connection(this);
    if (uv_tcp_init(loop_, &c->tcp) != 0) {
        delete c;
        return;
    }
    c->tcp.data = c;
    uv_timer_init(loop_, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    if (uv_accept(server, c->stream()) != 0) {
        c->close_handles();
        return;
    }
    if (connections_.size() >= limits_.max_connections && !make_room()) {
        if (gate_ != nullptr) gate_->stats().refused(io::StreamKind::Admin, io::Refusal::Global);
        c->close_handles();
        return;
    }
    const std::optional<Endpoint> peer = net::tcp_peer(&c->tcp);
    if (peer) c->peer = peer->ip;   // for the failed-token throttle
    if (gate_ != nullptr) {
        if (peer) c->ticket = gate_->admit(peer->ip);
        if (!c->ticket) {  // refused (counted) or no peer address
            c->close_handles();
            return;
        }
    }
    c->serial = next_serial_++;
    c->reserve = connections_.size() + limits_.reserved >= limits_.max_connections;
    const std::uint64_t now = uv_now(loop_);
    c->guard.emplace(io::StreamKind::Admin, limits_.guard, gate_ ? &gate_->stats() : nullptr, now);
    c->guard->established(now);
    connections_.insert(c);
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start(c->stream(), on_alloc, on_read) != 0) drop(c);
}

// Full: the oldest connection that has not shown the token goes, so that idle or slow
// strangers cannot lock the operator out (issue 11: 64 idle connections did).
bool HttpServer::make_room() {
    Connection* oldest = nullptr;
    for (Connection* c : connections_)
        if (!c->authed && !c->closing && (oldest == nullptr || c->serial < oldest->serial)) oldest = c;
    if (oldest == nullptr) return false;
    oldest->guard->count(io::StreamClose::Evicted);
    drop(oldest);
    return true;
}

void HttpServer::sweep() {
    const std::uint64_t now = uv_now(loop_);
    std::vector<Connection*> expired;
    for (Connection* c : connections_)
        if (!c->closing && !c->finishing && c->guard->expired(now)) expired.push_back(c);
    for (Connection* c : expired) drop(c);
}

void HttpServer::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    auto* c = static_cast<Connection*>(h->data);
    *buf = uv_buf_init(c->server->read_buf_.get(), static_cast<unsigned>(kReadBuffer));
}

void HttpServer::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<Connection*>(s->data);
    if (c->closing) return;
    if (nread < 0) {
        // A client may shut down its side right after its request (HTTP/1.0 tools do): the
        // answers still go out. Otherwise EOF or an error ends the connection, which is also how
        // a finished connection learns that the client has closed.
        if (nread == UV_EOF && c->pending_writes > 0) {
            c->eof = true;
            uv_read_stop(s);
            return;
        }
        c->server->drop(c);
        return;
    }
    if (nread == 0 || c->finishing) return;
    c->parser.feed(std::string_view(buf->base, static_cast<std::size_t>(nread)));
    c->server->process(c);
    // An unfinished request starts the message clock (slowloris); whole ones restart idle.
    if (!c->closing) c->guard->on_read(uv_now(c->server->loop_), c->parser.buffered() > 0);
}

void HttpServer::process(Connection* c) {
    while (!c->closing && !c->finishing && !c->paused) {
        Request req;
        const auto status = c->parser.next(req);
        if (status == RequestParser::Status::NeedMore) return;
        const std::int64_t now = now_ms();
        if (status == RequestParser::Status::Error) {
            // Framing is lost: answer once and close (RFC 9112 §9.6 allows closing at any time).
            send(c, serialize(json_error(c->parser.error_status(), c->parser.error_text()), false, false, now), true);
            return;
        }
        RouterConfig rc{token_, now, {}};
        if (c->peer && auth_ != nullptr) rc.auth = {auth_, *c->peer, std::chrono::steady_clock::now()};
        const Response resp = handle(req, backend_, rc);
        // 401: no or a wrong token; 429: the source is over security.auth_failures_per_minute.
        if (resp.status != 401 && resp.status != 429) c->authed = true;
        // A reserved slot is for the operator: a request without the token gets its answer and
        // the connection closes.
        const bool keep = req.keep_alive && !resp.close && (c->authed || !c->reserve);
        send(c, serialize(resp, keep, req.method == "HEAD", now), !keep);
        if (c->closing) return;
        c->guard->on_message(uv_now(loop_));  // the idle clock runs from the last whole request
        switch (c->guard->on_queue(uv_now(loop_), uv_stream_get_write_queue_size(c->stream()))) {
            case io::StreamGuard::Flow::Pause:
                uv_read_stop(c->stream());
                c->paused = true;
                break;
            case io::StreamGuard::Flow::Close: drop(c); return;
            default: break;
        }
    }
}

void HttpServer::send(Connection* c, std::string bytes, bool last) {
    auto* w = new Write;
    w->bytes = std::move(bytes);
    w->conn = c;
    w->last = last;
    w->req.data = w;
    const uv_buf_t b = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    if (uv_write(&w->req, c->stream(), &b, 1, on_write) != 0) {
        delete w;
        drop(c);
        return;
    }
    ++c->pending_writes;
    if (last) c->finishing = true;
}

void HttpServer::on_write(uv_write_t* req, int status) {
    auto* w = static_cast<Write*>(req->data);
    Connection* c = w->conn;
    const bool last = w->last;
    delete w;
    --c->pending_writes;
    if (c->closing) return;  // cancelled by uv_close
    HttpServer* self = c->server;
    if (status < 0) {
        self->drop(c);
        return;
    }
    if (last) {
        self->finish(c);
        return;
    }
    if (c->eof) {
        if (c->pending_writes == 0) self->finish(c);
        return;
    }
    c->guard->on_message(uv_now(self->loop_));  // keep-alive idle counts from the last answer
    const auto flow = c->guard->on_queue(uv_now(self->loop_), uv_stream_get_write_queue_size(c->stream()));
    if (c->paused && flow == io::StreamGuard::Flow::Resume) {
        c->paused = false;
        if (uv_read_start(c->stream(), on_alloc, on_read) != 0) {
            self->drop(c);
            return;
        }
        self->process(c);  // requests that arrived before the pause
    }
}

// Closing right away could reset the connection while the client still sends (the rest of a
// rejected body), and a reset can destroy the response in flight: send FIN, read until the
// client closes too, or give up after kLingerMs.
void HttpServer::finish(Connection* c) {
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, c->stream(), on_shutdown) != 0) {
        drop(c);
        return;
    }
    if (c->paused && !c->eof) {
        c->paused = false;
        uv_read_start(c->stream(), on_alloc, on_read);
    }
    restart_timer(c, kLingerMs);
}

void HttpServer::on_shutdown(uv_shutdown_t* req, int status) {
    auto* c = static_cast<Connection*>(req->data);
    if (c->closing) return;
    if (status < 0 || c->eof) c->server->drop(c);  // with eof, nothing more will come to wait for
}

void HttpServer::on_timer(uv_timer_t* t) {
    auto* c = static_cast<Connection*>(t->data);
    if (!c->closing) c->server->drop(c);
}

void HttpServer::restart_timer(Connection* c, std::uint64_t ms) { uv_timer_start(&c->timer, on_timer, ms, 0); }

void HttpServer::drop(Connection* c) {
    connections_.erase(c);
    c->ticket.reset();  // the slot is free now, not when the loop has closed the handles
    c->close_handles();
}

}  // namespace turnbridge::admin
