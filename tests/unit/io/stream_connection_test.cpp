// SPDX-License-Identifier: Apache-2.0
// io::StreamConnection with a fake framer over loopback TCP: accept through a gate, bytes to the
// framer, sends to the peer, the message timeout from a sweep, one on_closed; the batched write
// path, EOF and lingering close, and TLS between two StreamConnections on one loop.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <openssl/ssl.h>

#include <cstdlib>
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

// A loop with a listener on loopback; each connection calls `on_accept` with `owner` as data.
struct LoopbackServer {
    uv_loop_t loop{};
    uv_tcp_t server{};
    sockaddr_storage bound{};
    LoopbackServer(void* owner, uv_connection_cb on_accept) {
        uv_loop_init(&loop);
        uv_tcp_init(&loop, &server);
        server.data = owner;
        sockaddr_in sa{};
        uv_ip4_addr("127.0.0.1", 0, &sa);
        uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&sa), 0);
        uv_listen(reinterpret_cast<uv_stream_t*>(&server), 8, on_accept);
        int len = sizeof bound;
        uv_tcp_getsockname(&server, reinterpret_cast<sockaddr*>(&bound), &len);
    }
    ~LoopbackServer() {
        uv_close(reinterpret_cast<uv_handle_t*>(&server), nullptr);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    template <class F> void run_until(F done, int rounds = 2000) {
        for (int i = 0; i < rounds && !done(); ++i) uv_run(&loop, UV_RUN_NOWAIT), usleep(500);
    }
};

struct Fixture {
    StreamStats stats;
    ConnectionGate gate{StreamKind::Sip, stats};
    LineFramer framer;
    LoopbackServer net{this, [](uv_stream_t* s, int) {
        auto* f = static_cast<Fixture*>(s->data);
        GuardLimits l;
        l.message_ms = 3000;
        f->conn = std::make_unique<StreamConnection>(&f->net.loop, StreamKind::Sip, l, &f->stats, f->framer, f->framer);
        f->admitted = f->conn->accept(s, &f->gate);
    }};
    uv_loop_t& loop = net.loop;
    std::unique_ptr<StreamConnection> conn;
    bool admitted = false;
    int client = -1;

    Fixture() {
        client = ::socket(AF_INET, SOCK_STREAM, 0);
        timeval tv{2, 0};
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&net.bound), sizeof(sockaddr_in)) == 0);
        run_until([&] { return conn != nullptr; });
    }
    ~Fixture() {
        if (conn) conn->close();
        net.run_until([] { return false; }, 20);
        conn.reset();
        if (client >= 0) ::close(client);
    }
    template <class F> void run_until(F done) { net.run_until(done); }
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

TEST_CASE("the batched path: appended messages leave in one write at flush(), after which send() keeps order") {
    Fixture f;
    REQUIRE(f.admitted);
    const std::string_view a[] = {"one", "-", "1\n"};
    const std::string_view b[] = {"two\n"};
    CHECK(f.conn->append(a) == 0);   // plain TCP: no record overhead
    CHECK(f.conn->append(b) == 0);
    CHECK(f.conn->has_batch());
    CHECK(f.conn->unsent() == 10);
    f.run_until([] { return false; });
    char buf[64] = {};
    CHECK(::recv(f.client, buf, sizeof buf, MSG_DONTWAIT) == -1);   // nothing before flush()
    f.conn->send("now\n");   // a message at once goes after what was batched
    CHECK_FALSE(f.conn->has_batch());
    f.run_until([] { return false; });
    CHECK(::recv(f.client, buf, sizeof buf, 0) == 14);
    CHECK(std::string(buf) == "one-1\ntwo\nnow\n");
    SUBCASE("a batch over kBatchBytes is written without waiting for flush()") {
        const std::string big(kBatchBytes - 2, 'x');
        const std::string_view one[] = {big};
        f.conn->append(one);
        f.conn->append(b);   // would pass kBatchBytes: the batch leaves first
        CHECK(f.conn->unsent() <= 4);
        f.conn->flush();
        CHECK(f.conn->unsent() == 0);
    }
}

TEST_CASE("a peer's EOF: by default the connection closes; close_after_write lingers for the peer's FIN") {
    Fixture f;
    REQUIRE(f.admitted);
    SUBCASE("EOF closes") {
        ::shutdown(f.client, SHUT_WR);
        f.run_until([&] { return f.framer.closed == 1; });
        CHECK(f.framer.closed == 1);
    }
    SUBCASE("lingering: the answer leaves, later input is dropped, the peer's EOF closes") {
        f.conn->send("bye\n");
        f.conn->close_after_write(60'000);
        ::send(f.client, "late\n", 5, 0);
        f.run_until([] { return false; });
        CHECK(f.framer.closed == 0);
        CHECK(f.framer.messages == 0);
        char buf[16] = {};
        CHECK(::recv(f.client, buf, sizeof buf, 0) == 4);
        CHECK(::recv(f.client, buf, sizeof buf, 0) == 0);   // our FIN
        ::shutdown(f.client, SHUT_WR);
        f.run_until([&] { return f.framer.closed == 1; });
        CHECK(f.framer.closed == 1);
    }
    SUBCASE("lingering ends at its deadline (sweep) when the peer never closes") {
        uv_update_time(&f.loop);
        const std::uint64_t start = uv_now(&f.loop);
        f.conn->close_after_write(1000);
        f.run_until([] { return false; });   // the FIN leaves: the 1 s run from then
        f.conn->sweep(start + 999);
        CHECK_FALSE(f.conn->closing());
        f.conn->sweep(uv_now(&f.loop) + 1001);
        CHECK(f.conn->closing());
    }
}

namespace {

// A TLS pair on one loop: a server StreamConnection (self-signed certificate) and a client one.
struct TlsPair {
    StreamStats stats;
    LineFramer server_side, client_side;
    SSL_CTX* server_ctx = nullptr;
    SSL_CTX* client_ctx = nullptr;
    LoopbackServer net{this, [](uv_stream_t* s, int) {
        auto* p = static_cast<TlsPair*>(s->data);
        p->accepted = std::make_unique<StreamConnection>(&p->net.loop, StreamKind::Turn, GuardLimits{}, &p->stats,
                                                         p->server_side, p->server_side);
        p->accepted->accept(s, nullptr, p->server_ctx);
    }};
    std::unique_ptr<StreamConnection> accepted, client;
    char dir[32] = "/tmp/sc_tls_XXXXXX";

    TlsPair() {
        REQUIRE(mkdtemp(dir) != nullptr);
        const std::string d = dir;
        const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost -keyout " +
                                d + "/key.pem -out " + d + "/cert.pem >/dev/null 2>&1";
        REQUIRE(std::system(cmd.c_str()) == 0);
        server_ctx = SSL_CTX_new(TLS_server_method());
        REQUIRE(SSL_CTX_use_certificate_chain_file(server_ctx, (d + "/cert.pem").c_str()) == 1);
        REQUIRE(SSL_CTX_use_PrivateKey_file(server_ctx, (d + "/key.pem").c_str(), SSL_FILETYPE_PEM) == 1);
        client_ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, nullptr);
        client = std::make_unique<StreamConnection>(&net.loop, StreamKind::Sip, GuardLimits{}, nullptr, client_side, client_side);
        const TlsClient tls{client_ctx, "localhost"};
        REQUIRE(client->connect(*Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&net.bound)), &tls));
        net.run_until([&] { return accepted && accepted->ready() && client->ready(); }, 4000);
    }
    ~TlsPair() {
        if (accepted) accepted->close();
        if (client) client->close();
        net.run_until([] { return false; }, 20);
        accepted.reset();
        client.reset();
        SSL_CTX_free(server_ctx);
        SSL_CTX_free(client_ctx);
        std::system(("rm -rf " + std::string(dir)).c_str());
    }
    template <class F> void run_until(F done) { net.run_until(done, 4000); }
};

}  // namespace

TEST_CASE("over TLS: one record per appended message, its overhead reported, the batch in one flush") {
    TlsPair p;
    REQUIRE(p.accepted);
    REQUIRE(p.accepted->ready());
    REQUIRE(p.client->ready());
    CHECK(p.accepted->secure());
    const std::string_view a[] = {"relay", "ed\n"};
    const std::size_t overhead = p.accepted->append(a);
    CHECK(overhead > 0);   // a record's header and tag (TLS 1.3 with AES-GCM: 5 + 16 + 1)
    CHECK(overhead < 64);
    CHECK(p.accepted->append(a) == overhead);
    CHECK(p.accepted->has_batch());
    p.accepted->flush();
    p.client->send("hello\n");
    p.run_until([&] { return p.client_side.messages == 2 && p.server_side.messages == 1; });
    CHECK(p.client_side.got == "relayed\nrelayed\n");
    CHECK(p.server_side.got == "hello\n");
}
