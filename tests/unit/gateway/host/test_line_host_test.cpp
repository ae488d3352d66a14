// SPDX-License-Identifier: Apache-2.0
// TestLineHost (issue 16): on a real loop, SIP only from the gateway's sip_listen address.
#include "turnbridge/gateway/host/test_line_host.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

using namespace turnbridge;
using namespace turnbridge::gateway::host;

namespace {

// A non-blocking UDP socket on 127.0.0.1 (port picked by the kernel) and its port.
std::pair<int, std::uint16_t> udp_socket() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return {fd, ntohs(a.sin_port)};
}

std::string options(std::uint16_t from_port, std::uint16_t to_port) {
    return "OPTIONS sip:echo@127.0.0.1:" + std::to_string(to_port) + " SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:" + std::to_string(from_port) + ";branch=z9hG4bKopt\r\n"
           "From: <sip:gw@127.0.0.1>;tag=1\r\nTo: <sip:echo@127.0.0.1>\r\nCall-ID: opt\r\nCSeq: 1 OPTIONS\r\n"
           "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
}

// Sends OPTIONS from `fd` to the test line and runs the loop a while: the answer, or "".
std::string ask(uv_loop_t* loop, int fd, std::uint16_t from_port, const Endpoint& line) {
    const auto msg = options(from_port, line.port);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(line.port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == static_cast<ssize_t>(msg.size()));
    char buf[2048];
    for (int i = 0; i < 100; ++i) {
        uv_run(loop, UV_RUN_NOWAIT);
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) return std::string(buf, static_cast<std::size_t>(n));
        usleep(2000);
    }
    return "";
}

}  // namespace

TEST_CASE("TestLineHost answers SIP from the gateway's sip_listen address only") {
    uv_loop_t loop{};
    REQUIRE(uv_loop_init(&loop) == 0);
    auto [gw_fd, gw_port] = udp_socket();
    auto [other_fd, other_port] = udp_socket();
    {
        TestLineHost host(&loop);
        host.start(*IpAddress::parse("127.0.0.1"), {Endpoint{*IpAddress::parse("127.0.0.1"), gw_port}});
        const Endpoint line = host.sip_address();
        CHECK(line.port != 0);
        CHECK(ask(&loop, other_fd, other_port, line).empty());
        CHECK(ask(&loop, gw_fd, gw_port, line).starts_with("SIP/2.0 200"));
        host.close();
        uv_run(&loop, UV_RUN_NOWAIT);   // the close callbacks, while the host still exists
    }
    ::close(gw_fd);
    ::close(other_fd);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}
