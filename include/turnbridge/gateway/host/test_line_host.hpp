// SPDX-License-Identifier: Apache-2.0
#pragma once
// The built-in test line's sockets (issue 16): gateway::TestLine (test_line.hpp) on one worker's
// loop, with a SIP socket and an RTP socket on ephemeral ports of the loopback address and one
// 20 ms timer (running only while it has calls). Each worker's GatewayHost starts one when a
// realm has gateway.test_numbers; its router sends calls to the test numbers here, over UDP, as
// to a trunk.
#include <array>
#include <chrono>
#include <memory>
#include <cstdint>
#include <uv.h>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/gateway/test_line.hpp"

namespace turnbridge::gateway::host {

class TestLineHost {
public:
    explicit TestLineHost(uv_loop_t* loop) : loop_(loop) {}
    TestLineHost(const TestLineHost&) = delete;
    TestLineHost& operator=(const TestLineHost&) = delete;

    // Binds both sockets on `ip` (port 0: the kernel picks); throws std::runtime_error if it cannot.
    // SIP is taken only from `gateway` (the sip_listen addresses our trunk requests leave from):
    // any other local process could otherwise make it stream RTP to an address of its choosing.
    void start(const IpAddress& ip, std::vector<Endpoint> gateway);
    void close();
    Endpoint sip_address() const { return sip_.local; }

private:
    struct Socket {
        TestLineHost* host = nullptr;
        uv_udp_t udp{};
        Endpoint local;
        bool rtp = false;
    };
    void open(Socket& s, const IpAddress& ip);
    void on_datagram(Socket& s, const Endpoint& from, std::span<const std::uint8_t> bytes);
    void on_tick();
    void flush();
    void arm();

    bool from_gateway(const Endpoint& from) const;

    uv_loop_t* loop_;
    std::vector<Endpoint> gateway_;
    Socket sip_, rtp_;
    uv_timer_t tick_{};
    bool open_ = false;
    bool ticking_ = false;
    std::unique_ptr<gateway::TestLine> line_;
    std::vector<gateway::TestLine::SipOut> sip_out_;
    std::vector<gateway::TestLine::RtpOut> rtp_out_;
    std::array<std::uint8_t, 4096> rx_{};
};

}  // namespace turnbridge::gateway::host
