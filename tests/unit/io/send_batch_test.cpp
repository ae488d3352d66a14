// SPDX-License-Identifier: Apache-2.0
// SendBatch against real loopback sockets: what one flush puts on the wire (sendmmsg, UDP GSO
// runs), in order, and that a full socket buffer (EAGAIN) loses nothing.
#include <doctest/doctest.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "turnbridge/io/send_batch.hpp"

namespace tb = turnbridge;
namespace io = turnbridge::io;

namespace {

int udp_socket(int rcvbuf = 0, int sndbuf = 0) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    REQUIRE(fd >= 0);
    if (rcvbuf) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (sndbuf) ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
}

tb::Endpoint local_of(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
    return *tb::Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
}

// Every datagram waiting on `fd`, as byte vectors.
std::vector<std::vector<std::uint8_t>> drain(int fd) {
    std::vector<std::vector<std::uint8_t>> got;
    std::vector<std::uint8_t> buf(70000);
    for (;;) {
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n < 0) break;
        got.emplace_back(buf.begin(), buf.begin() + n);
    }
    return got;
}

struct Sender {
    uv_loop_t loop{};
    uv_udp_t udp{};
    io::UdpTarget target;
    explicit Sender(int sndbuf = 0) {
        REQUIRE(uv_loop_init(&loop) == 0);
        REQUIRE(uv_udp_init(&loop, &udp) == 0);
        const int fd = udp_socket(0, sndbuf);
        REQUIRE(uv_udp_open(&udp, fd) == 0);
        target = io::UdpTarget{&udp, fd};
    }
    ~Sender() {
        uv_close(reinterpret_cast<uv_handle_t*>(&udp), nullptr);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
};

// Datagram i: a 4-byte header carrying i, then `len - 4` payload bytes derived from i.
struct Datagrams {
    std::vector<std::vector<std::uint8_t>> head, body;
    void make(std::size_t count, std::size_t len) {
        for (std::size_t i = 0; i < count; ++i) {
            head.push_back({std::uint8_t(0x40), std::uint8_t(i), std::uint8_t(i >> 8), 0});
            std::vector<std::uint8_t> b(len - 4);
            for (std::size_t k = 0; k < b.size(); ++k) b[k] = static_cast<std::uint8_t>(i * 31 + k);
            body.push_back(std::move(b));
        }
    }
    std::vector<std::uint8_t> wire(std::size_t i) const {
        auto v = head[i];
        v.insert(v.end(), body[i].begin(), body[i].end());
        return v;
    }
};

}  // namespace

TEST_CASE("SendBatch: a burst to one destination leaves in one sendmmsg, whole and in order") {
    Sender s;
    const int rx = udp_socket(4 << 20);
    const auto to = local_of(rx);
    Datagrams d;
    d.make(40, 1200);
    io::SendBatch batch;
    for (std::size_t i = 0; i < 40; ++i) batch.add(s.target, to, d.head[i], d.body[i], 0);
    batch.flush();
    CHECK(batch.empty());
    CHECK(batch.stats().datagrams == 40);
    CHECK(batch.stats().syscalls == 1);
    // On loopback the kernel accepts UDP_SEGMENT; on a kernel that refuses it the run is resent
    // plainly, which the content check below covers as well.
    if (s.target.gso) CHECK(batch.stats().gso_messages == 1);
    const auto got = drain(rx);
    REQUIRE(got.size() == 40);
    for (std::size_t i = 0; i < 40; ++i) {
        CAPTURE(i);
        CHECK(got[i] == d.wire(i));
    }
    ::close(rx);
}

TEST_CASE("SendBatch: two sockets and two destinations interleaved keep per-destination order; pad is zeros") {
    Sender a, b;
    const int rx1 = udp_socket(4 << 20), rx2 = udp_socket(4 << 20);
    Datagrams d;
    d.make(30, 101);
    io::SendBatch batch;
    for (std::size_t i = 0; i < 30; ++i) {
        io::UdpTarget& t = i % 3 == 0 ? b.target : a.target;
        batch.add(t, local_of(i % 2 ? rx1 : rx2), d.head[i], d.body[i], 3);
    }
    batch.flush();
    CHECK(batch.stats().syscalls == 2);  // one sendmmsg per socket
    const auto g1 = drain(rx1), g2 = drain(rx2);
    REQUIRE(g1.size() + g2.size() == 30);
    // Per destination and per socket the order is the queue order.
    for (const auto* g : {&g1, &g2}) {
        int last_a = -1, last_b = -1;
        for (const auto& dg : *g) {
            REQUIRE(dg.size() == 104);
            const int i = dg[1] | dg[2] << 8;
            CHECK(std::vector<std::uint8_t>(dg.begin(), dg.end() - 3) == d.wire(static_cast<std::size_t>(i)));
            CHECK(dg[101] == 0);
            CHECK(dg[103] == 0);
            int& last = i % 3 == 0 ? last_b : last_a;
            CHECK(i > last);
            last = i;
        }
    }
    ::close(rx1);
    ::close(rx2);
}

// A kernel whose socket buffer fills after `budget` messages: then one EAGAIN, then room again.
int g_budget = 0;
bool g_refused = false;
int sendmmsg_eagain(int fd, mmsghdr* msgs, unsigned n, int flags) {
    if (g_budget <= 0 && !g_refused) {
        g_refused = true;
        errno = EAGAIN;
        return -1;
    }
    const unsigned k = g_budget > 0 ? std::min<unsigned>(n, static_cast<unsigned>(g_budget)) : n;
    g_budget -= static_cast<int>(k);
    return ::sendmmsg(fd, msgs, k, flags);
}

// A kernel without UDP GSO (no checksum offload on the route): EIO for a UDP_SEGMENT message.
int g_gso_calls = 0;
int sendmmsg_no_gso(int fd, mmsghdr* msgs, unsigned n, int flags) {
    unsigned plain = 0;
    while (plain < n && msgs[plain].msg_hdr.msg_controllen == 0) ++plain;
    if (plain == 0) {
        ++g_gso_calls;
        errno = EIO;
        return -1;
    }
    return ::sendmmsg(fd, msgs, plain, flags);
}

TEST_CASE("SendBatch: EAGAIN part way hands the rest to libuv's send path, in order, nothing lost") {
    Sender s;
    const int rx = udp_socket(8 << 20);
    const auto to = local_of(rx);
    Datagrams d;
    d.make(50, 300);
    io::SendBatch batch;
    batch.set_sendmmsg(sendmmsg_eagain);
    g_budget = 1;  // one message (a GSO run of the first datagrams, or one datagram) goes, then EAGAIN
    g_refused = false;
    // Two destinations alternate in pairs, so there are several messages to split.
    const int rx2 = udp_socket(8 << 20);
    for (std::size_t i = 0; i < 50; ++i) batch.add(s.target, (i / 2) % 2 ? local_of(rx2) : to, d.head[i], d.body[i], 0);
    batch.flush();
    CHECK(g_refused);
    CHECK(batch.stats().fallbacks > 0);
    CHECK(batch.stats().fallbacks < 50);
    for (int round = 0; round < 100; ++round) uv_run(&s.loop, UV_RUN_NOWAIT);
    const auto g1 = drain(rx);
    const auto g2 = drain(rx2);
    REQUIRE(g1.size() + g2.size() == 50);
    for (const auto* g : {&g1, &g2}) {
        int last = -1;
        for (const auto& dg : *g) {
            const int i = dg[1] | dg[2] << 8;
            CHECK(dg == d.wire(static_cast<std::size_t>(i)));
            CHECK(i > last);
            last = i;
        }
    }
    ::close(rx);
    ::close(rx2);
}

TEST_CASE("SendBatch: a kernel refusing UDP_SEGMENT turns GSO off for that socket and resends plainly") {
    Sender s;
    const int rx = udp_socket(8 << 20);
    const auto to = local_of(rx);
    Datagrams d;
    d.make(20, 500);
    io::SendBatch batch;
    batch.set_sendmmsg(sendmmsg_no_gso);
    g_gso_calls = 0;
    for (std::size_t i = 0; i < 20; ++i) batch.add(s.target, to, d.head[i], d.body[i], 0);
    batch.flush();
    CHECK(g_gso_calls == 1);
    CHECK_FALSE(s.target.gso);
    CHECK(batch.stats().fallbacks == 20);
    for (std::size_t i = 0; i < 20; ++i) batch.add(s.target, to, d.head[i], d.body[i], 0);
    batch.flush();
    CHECK(g_gso_calls == 1);  // not asked again: plain messages only
    const auto got = drain(rx);
    REQUIRE(got.size() == 40);
    for (std::size_t i = 0; i < 40; ++i) {
        CAPTURE(i);
        CHECK(got[i] == d.wire(i % 20));
    }
    ::close(rx);
}
