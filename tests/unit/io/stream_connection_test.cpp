// SPDX-License-Identifier: Apache-2.0
// io::StreamConnection with a fake framer over loopback TCP: accept through a gate, bytes to the
// framer, sends to the peer, the message timeout from a sweep, one on_closed.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

#include "turnbridge/io/stream_connection.hpp"

using namespace turnbridge;
using namespace turnbridge::io;

namespace {

// Lines: each "\n" ends a message; "quit" is unframeable.
struct LineFramer final : Framer, StreamEvents {
    std::string held, got;
    int messages = 0, closed = 0;
    bool on_bytes(std::string_view in) override {
        held += in;
        for (auto nl = held.find('\n'); nl != std::string::npos; nl = held.find('\n')) {
            if (held.compare(0, nl, "quit") == 0) return false;
            got += held.substr(0, nl + 1);
            held.erase(0, nl + 1);
            ++messages;
        }
        return true;
    }
    std::size_t buffered() const override { return held.size(); }
    void on_closed(StreamConnection&) override { ++closed; }
};

struct Fixture {
    uv_loop_t loop{};
    uv_tcp_t server{};
    StreamStats stats;
    ConnectionGate gate{StreamKind::Sip, stats};
    LineFramer framer;
    std::unique_ptr<StreamConnection> conn;
    bool admitted = false;
    int client = -1;

    Fixture() {
        uv_loop_init(&loop);
        uv_tcp_init(&loop, &server);
        server.data = this;
        sockaddr_in sa{};
        uv_ip4_addr("127.0.0.1", 0, &sa);
        uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&sa), 0);
        uv_listen(reinterpret_cast<uv_stream_t*>(&server), 8, [](uv_stream_t* s, int) {
            auto* f = static_cast<Fixture*>(s->data);
            GuardLimits l;
            l.message_ms = 3000;
            f->conn = std::make_unique<StreamConnection>(&f->loop, StreamKind::Sip, l, &f->stats, f->framer, f->framer);
            f->admitted = f->conn->accept(s, &f->gate);
        });
        sockaddr_storage bound{};
        int len = sizeof bound;
        uv_tcp_getsockname(&server, reinterpret_cast<sockaddr*>(&bound), &len);
        client = ::socket(AF_INET, SOCK_STREAM, 0);
        timeval tv{2, 0};
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&bound), sizeof(sockaddr_in)) == 0);
        run_until([&] { return conn != nullptr; });
    }
    ~Fixture() {
        if (conn) conn->close();
        uv_close(reinterpret_cast<uv_handle_t*>(&server), nullptr);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        if (client >= 0) ::close(client);
    }
    template <class F> void run_until(F done) {
        for (int i = 0; i < 2000 && !done(); ++i) uv_run(&loop, UV_RUN_NOWAIT), usleep(500);
    }
};

}  // namespace

TEST_CASE("a StreamConnection hands whole messages to its framer and sends to its peer") {
    Fixture f;
    REQUIRE(f.admitted);
    CHECK(f.gate.open() == 1);
    ::send(f.client, "hello\nwor", 9, 0);
    f.run_until([&] { return f.framer.messages == 1 && f.framer.held == "wor"; });
    const std::uint64_t partial_at = uv_now(&f.loop);   // the loop time of the read that left "wor"
    CHECK(f.framer.got == "hello\n");
    f.conn->send("pong\n");
    f.run_until([] { return false; });  // let the write go
    char buf[16] = {};
    CHECK(::recv(f.client, buf, sizeof buf, 0) == 5);
    CHECK(std::string(buf) == "pong\n");

    SUBCASE("an unfinished message closes at message_timeout, once, and frees the gate's slot") {
        f.conn->sweep(partial_at + 2999);
        CHECK_FALSE(f.conn->closing());
        f.conn->sweep(partial_at + 3000);
        CHECK(f.conn->closing());
        CHECK(f.gate.open() == 0);
        f.run_until([&] { return f.framer.closed == 1; });
        CHECK(f.framer.closed == 1);
        CHECK(f.stats.snapshot().closed[2][static_cast<std::size_t>(StreamClose::MessageTimeout)] == 1);
    }
    SUBCASE("a framer that refuses the input closes the connection") {
        ::send(f.client, "ld\nquit\n", 8, 0);
        f.run_until([&] { return f.framer.closed == 1; });
        CHECK(f.framer.got == "hello\nworld\n");
        CHECK(f.framer.closed == 1);
    }
}
