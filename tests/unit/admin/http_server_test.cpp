// SPDX-License-Identifier: Apache-2.0
// The libuv admin server over real loopback sockets: the loop runs on the test's thread, a
// client thread speaks HTTP/1.1 with blocking sockets, and the checks run after it is joined.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <chrono>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "fake_backend.hpp"
#include "turnbridge/admin/http_server.hpp"

using namespace turnbridge;
using namespace turnbridge::admin;
using turnbridge::admin::testing::FakeBackend;
using turnbridge::admin::testing::sample_allocation;

namespace {

int connect_to(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    timeval tv{5, 0};  // a stuck server fails the test instead of hanging it
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void send_all(int fd, std::string_view s) {
    while (!s.empty()) {
        const auto n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
        if (n <= 0) return;
        s.remove_prefix(static_cast<std::size_t>(n));
    }
}

// One whole response (head, then a Content-Length body unless it answers HEAD); "" on EOF or
// timeout. Bytes past it stay in `carry` for the next call.
std::string read_response(int fd, std::string& carry, bool head = false) {
    char buf[4096];
    for (;;) {
        const auto end = carry.find("\r\n\r\n");
        if (end != std::string::npos) {
            std::size_t body = 0;
            const auto cl = carry.find("Content-Length: ");
            if (!head && cl != std::string::npos && cl < end) body = std::stoul(carry.substr(cl + 16));
            if (carry.size() >= end + 4 + body) {
                std::string out = carry.substr(0, end + 4 + body);
                carry.erase(0, end + 4 + body);
                return out;
            }
        }
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return {};
        carry.append(buf, static_cast<std::size_t>(n));
    }
}

// True when the server closed its side: recv() sees EOF (or a reset) before the timeout.
bool closed_by_server(int fd) {
    char c;
    const auto n = ::recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

std::string get(std::string_view target, std::string_view extra = "Authorization: Bearer t0ken\r\n") {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + std::string(extra) + "\r\n";
}

bool starts(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }
bool has(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

// Runs `client` on a thread while the loop runs here; returns once the client is done.
template <class F>
void run_with_client(uv_loop_t* loop, F client) {
    uv_async_t done{};
    uv_async_init(loop, &done, [](uv_async_t* a) { uv_stop(a->loop); });
    std::thread t([&] {
        client();
        uv_async_send(&done);
    });
    uv_run(loop, UV_RUN_DEFAULT);
    t.join();
    uv_close(reinterpret_cast<uv_handle_t*>(&done), nullptr);
    uv_run(loop, UV_RUN_NOWAIT);  // `done` lives on this stack: finish closing it here
}

struct Loop {
    uv_loop_t loop{};
    Loop() { uv_loop_init(&loop); }
    // Every handle of the server must be gone after close() and one more run.
    int finish() {
        uv_run(&loop, UV_RUN_DEFAULT);
        return uv_loop_close(&loop);
    }
};

}  // namespace

TEST_CASE("the admin server answers over loopback: keep-alive, pipelining, kick, close") {
    Loop l;
    FakeBackend backend;
    backend.live_allocations = {sample_allocation("alloc-1", "alice")};
    backend.metrics_value.realms["example.org"].active_allocations = 1;
    HttpServer server(&l.loop, backend, "t0ken");
    server.start(*Endpoint::parse("127.0.0.1:0"));
    const std::uint16_t port = server.local().port;
    REQUIRE(port != 0);

    std::vector<std::string> replies;
    bool closed_after_close = false, closed_after_garbage = false, closed_after_half_close = false;
    run_with_client(&l.loop, [&] {
        const int fd = connect_to(port);
        if (fd < 0) return;
        std::string carry;
        send_all(fd, get("/metrics"));
        replies.push_back(read_response(fd, carry));                    // 0
        send_all(fd, get("/api/v1/allocations") + get("/api/v1/usage?by=garbage"));  // pipelined
        replies.push_back(read_response(fd, carry));                    // 1
        replies.push_back(read_response(fd, carry));                    // 2
        send_all(fd, "DELETE /api/v1/allocations/alloc-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer t0ken\r\n\r\n");
        replies.push_back(read_response(fd, carry));                    // 3
        send_all(fd, get("/api/v1/allocations", "Authorization: Bearer t0ken\r\nConnection: close\r\n"));
        replies.push_back(read_response(fd, carry));                    // 4
        closed_after_close = closed_by_server(fd);
        ::close(fd);

        const int fd2 = connect_to(port);
        send_all(fd2, get("/metrics", ""));
        replies.push_back(read_response(fd2, carry));                   // 5
        send_all(fd2, "BREW /pot HTCPCP/1.0\r\n\r\n");
        replies.push_back(read_response(fd2, carry));                   // 6
        closed_after_garbage = closed_by_server(fd2);
        ::close(fd2);

        const int fd3 = connect_to(port);
        send_all(fd3, "HEAD /?token=t0ken HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        replies.push_back(read_response(fd3, carry, true));                   // 7
        ::close(fd3);

        // An HTTP/1.0 client that shuts down its side after the request still gets the answer.
        const int fd4 = connect_to(port);
        send_all(fd4, "GET /api/v1/allocations HTTP/1.0\r\nAuthorization: Bearer t0ken\r\n\r\n");
        ::shutdown(fd4, SHUT_WR);
        replies.push_back(read_response(fd4, carry));                   // 8
        closed_after_half_close = closed_by_server(fd4);
        ::close(fd4);
    });

    REQUIRE(replies.size() == 9);
    CHECK(starts(replies[0], "HTTP/1.1 200 OK\r\n"));
    CHECK(has(replies[0], "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    CHECK(has(replies[0], "Connection: keep-alive\r\n"));
    CHECK(has(replies[0], "turnbridge_active_allocations{realm=\"example.org\"} 1\n"));
    CHECK(starts(replies[1], "HTTP/1.1 200 OK\r\n"));
    CHECK(has(replies[1], "\"id\":\"alloc-1\""));
    CHECK(starts(replies[2], "HTTP/1.1 400 Bad Request\r\n"));
    CHECK(has(replies[2], "\"parameter\":\"by\""));
    CHECK(starts(replies[3], "HTTP/1.1 204 No Content\r\n"));
    CHECK(backend.kicked == std::vector<std::string>{"alloc-1"});
    CHECK(starts(replies[4], "HTTP/1.1 200 OK\r\n"));
    CHECK(has(replies[4], "Connection: close\r\n"));
    CHECK(has(replies[4], "\r\n\r\n[]\n"));
    CHECK(closed_after_close);
    CHECK(starts(replies[5], "HTTP/1.1 401 Unauthorized\r\n"));
    CHECK(has(replies[5], "WWW-Authenticate: Bearer"));
    CHECK(starts(replies[6], "HTTP/1.1 400 Bad Request\r\n"));
    CHECK(has(replies[6], "Connection: close\r\n"));
    CHECK(closed_after_garbage);
    CHECK(starts(replies[7], "HTTP/1.1 200 OK\r\n"));
    CHECK(has(replies[7], "Content-Type: text/html; charset=utf-8\r\n"));
    CHECK(replies[7].substr(replies[7].size() - 4) == "\r\n\r\n");  // HEAD: no body
    CHECK(starts(replies[8], "HTTP/1.1 200 OK\r\n"));
    CHECK(has(replies[8], "Connection: close\r\n"));
    CHECK(has(replies[8], "\r\n\r\n[]\n"));
    CHECK(closed_after_half_close);

    server.close();
    CHECK(l.finish() == 0);
}

TEST_CASE("connections over the limit are closed when they are accepted") {
    Loop l;
    FakeBackend backend;
    HttpServer server(&l.loop, backend, "");
    server.start(*Endpoint::parse("127.0.0.1:0"));
    const std::uint16_t port = server.local().port;

    int answered = 0;
    bool extra_closed = false;
    run_with_client(&l.loop, [&] {
        std::vector<int> fds;
        std::string carry;
        for (std::size_t i = 0; i < HttpLimits{}.max_connections; ++i) {
            const int fd = connect_to(port);
            if (fd < 0) break;
            fds.push_back(fd);
            send_all(fd, get("/metrics", ""));
            carry.clear();
            if (starts(read_response(fd, carry), "HTTP/1.1 200 OK")) ++answered;
        }
        const int extra = connect_to(port);
        if (extra >= 0) {
            send_all(extra, get("/metrics", ""));
            extra_closed = closed_by_server(extra);
            ::close(extra);
        }
        for (int fd : fds) ::close(fd);
    });
    CHECK(answered == static_cast<int>(HttpLimits{}.max_connections));
    CHECK(extra_closed);
    server.close();
    CHECK(l.finish() == 0);
}

TEST_CASE("starting fails with an exception that names the address") {
    Loop l;
    FakeBackend backend;
    HttpServer first(&l.loop, backend, "t0ken");
    first.start(*Endpoint::parse("127.0.0.1:0"));
    const std::string taken = first.local().to_string();

    HttpServer second(&l.loop, backend, "t0ken");
    std::string message;
    try {
        second.start(first.local());
    } catch (const std::runtime_error& e) {
        message = e.what();
    }
    CHECK(has(message, taken));
    CHECK(has(message, "in use"));

    // No token is for loopback only; refused before anything is bound.
    HttpServer open(&l.loop, backend, "");
    message.clear();
    try {
        open.start(*Endpoint::parse("192.0.2.1:9641"));
    } catch (const std::runtime_error& e) {
        message = e.what();
    }
    CHECK(has(message, "192.0.2.1:9641"));
    CHECK(has(message, "token"));

    first.close();
    second.close();
    open.close();
    CHECK(l.finish() == 0);
}

TEST_CASE("a full admin server closes the oldest connection without the token to serve one with it (issue 11)") {
    Loop l;
    FakeBackend backend;
    HttpServer server(&l.loop, backend, "t0ken");
    HttpLimits limits;
    limits.max_connections = 4;
    limits.reserved = 1;
    server.set_limits(nullptr, limits);
    server.start(*Endpoint::parse("127.0.0.1:0"));
    const std::uint16_t port = server.local().port;

    std::string with_token, reserve_without_token;
    bool oldest_evicted = false, reserve_closed = false;
    run_with_client(&l.loop, [&] {
        std::vector<int> idle;
        for (int i = 0; i < 4; ++i) {
            idle.push_back(connect_to(port));
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // accepted in this order
        }
        const int op = connect_to(port);  // the operator, with the token
        std::string carry;
        send_all(op, get("/metrics"));
        with_token = read_response(op, carry);
        oldest_evicted = closed_by_server(idle[0]);
        // Full again: the next one evicts idle[1] and lands in the reserve, so a request
        // without the token gets its answer and the connection closes.
        const int stranger = connect_to(port);
        send_all(stranger, get("/metrics", ""));
        carry.clear();
        reserve_without_token = read_response(stranger, carry);
        reserve_closed = closed_by_server(stranger);
        for (int fd : idle) ::close(fd);
        ::close(op);
        ::close(stranger);
    });
    CHECK(starts(with_token, "HTTP/1.1 200 OK"));
    CHECK(oldest_evicted);
    CHECK(starts(reserve_without_token, "HTTP/1.1 401"));
    CHECK(reserve_closed);
    server.close();
    CHECK(l.finish() == 0);
}
