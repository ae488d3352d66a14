// SPDX-License-Identifier: Apache-2.0
#pragma once
// The admin HTTP server on libuv: accepts connections on the control thread's loop, each an
// io::StreamConnection whose framer is RequestParser, and answers through the router. Bounded like every
// stream ([streams], issue 11): a global and a per-IP cap (io::ConnectionGate), keep-alive idle
// and unfinished-request timeouts and write bounds (io::StreamGuard), and a reserve of slots for
// the operator: when full, the oldest connection that never sent the token is closed to make
// room, and a connection taken from the reserve is closed after a first request without it.
#include <cstddef>
#include <memory>
#include <string>
#include <unordered_set>
#include <uv.h>

#include "turnbridge/admin/backend.hpp"
#include "turnbridge/base/address.hpp"
#include "turnbridge/base/auth_throttle.hpp"
#include "turnbridge/io/connection_gate.hpp"
#include "turnbridge/io/stream_guard.hpp"

namespace turnbridge::admin {

struct HttpLimits {
    std::size_t max_connections = 64;   // [streams] admin_max_connections
    std::size_t reserved = 8;           // admin_reserved_connections
    io::GuardLimits guard = default_guard();

    static io::GuardLimits default_guard() {
        io::GuardLimits g;
        g.handshake_ms = 0;   // plain HTTP
        g.idle_ms = 30'000;   // admin_idle_timeout
        return g;
    }
};

class HttpServer {
public:
    // `token` "" = no authentication; allowed only on a loopback address (start() refuses it
    // elsewhere). Every call, and the Backend's, happens on `loop`'s thread.
    HttpServer(uv_loop_t* loop, Backend& backend, std::string token);
    ~HttpServer();  // close()s; memory the loop still needs is released by its close callbacks
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and listens. Throws std::runtime_error naming the address when it cannot.
    void start(const Endpoint& listen);
    // Stops accepting and closes every connection; the loop finishes the closing on its next run.
    void close();

    // The bound address (the real port when started on port 0).
    const Endpoint& local() const { return local_; }
    std::size_t connections() const { return connections_.size(); }
    // For SIGHUP: requests from now on need the new token.
    void set_token(std::string token) { token_ = std::move(token); }
    // security.auth_failures_per_minute for wrong tokens (429 while a source is over it).
    void set_auth_throttle(AuthThrottle* auth) { auth_ = auth; }
    // The per-IP and global gate (null: only limits.max_connections) and the limits of new
    // connections; at start and on SIGHUP.
    void set_limits(io::ConnectionGate* gate, const HttpLimits& limits) {
        gate_ = gate;
        limits_ = limits;
    }

private:
    struct Listener;
    struct Connection;

    static void on_connection(uv_stream_t* server, int status);
    void sweep();                        // [streams] timeouts, about once a second
    bool make_room();                    // closes the oldest unauthenticated connection

    void accept(uv_stream_t* server);
    void process(Connection* c);
    void finish(Connection* c);          // after the last response: FIN, linger, close
    void drop(Connection* c);            // close now

    uv_loop_t* loop_;
    Backend& backend_;
    std::string token_;
    AuthThrottle* auth_ = nullptr;
    Endpoint local_;
    io::ConnectionGate* gate_ = nullptr;
    HttpLimits limits_;
    std::uint64_t next_serial_ = 0;
    Listener* listener_ = nullptr;       // owned by the loop until its close callback
    uv_timer_t* sweep_ = nullptr;        // owned by the loop until its close callback
    std::unordered_set<Connection*> connections_;
    std::unique_ptr<char[]> read_buf_;   // one read at a time on this thread: one buffer for all
};

}  // namespace turnbridge::admin
