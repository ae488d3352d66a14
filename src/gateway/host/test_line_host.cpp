// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/host/test_line_host.hpp"

#include <algorithm>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/random.hpp"
#include "turnbridge/io/loop_clock.hpp"
#include "turnbridge/io/socket_util.hpp"
#include "turnbridge/io/udp_send.hpp"

namespace turnbridge::gateway::host {

namespace {
constexpr std::uint64_t kTickMs = 20;
}

void TestLineHost::open(Socket& s, const IpAddress& ip) {
    const int fd = io::open_bound_socket(io::SocketKind::Udp, Endpoint{ip, 0}, io::SocketOptions{});
    if (fd < 0) throw std::runtime_error(fmt::format("test line: cannot bind {}: {}", ip.to_string(), io::error_text(fd)));
    s.host = this;
    uv_udp_init(loop_, &s.udp);
    s.udp.data = &s;
    if (uv_udp_open(&s.udp, fd) != 0) {
        ::close(fd);
        throw std::runtime_error("test line: cannot open its socket");
    }
    io::clear_reuse_addr(fd);
    sockaddr_storage ss{};
    int len = sizeof ss;
    uv_udp_getsockname(&s.udp, reinterpret_cast<sockaddr*>(&ss), &len);
    s.local = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).value_or(Endpoint{ip, 0});
    uv_udp_recv_start(
        &s.udp,
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
            auto* s = static_cast<Socket*>(h->data);
            *buf = uv_buf_init(reinterpret_cast<char*>(s->host->rx_.data()), static_cast<unsigned>(s->host->rx_.size()));
        },
        [](uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned flags) {
            auto* s = static_cast<Socket*>(h->data);
            if (addr == nullptr || nread <= 0 || (flags & UV_UDP_PARTIAL) != 0) return;
            if (auto from = Endpoint::from_sockaddr(addr))
                s->host->on_datagram(*s, *from, {reinterpret_cast<const std::uint8_t*>(buf->base), static_cast<std::size_t>(nread)});
        });
}

bool TestLineHost::from_gateway(const Endpoint& from) const {
    // A wildcard sip_listen sends to loopback from a loopback address.
    return std::any_of(gateway_.begin(), gateway_.end(), [&](const Endpoint& g) {
        return g.port == from.port && (g.ip == from.ip || (g.ip.is_unspecified() && from.ip.is_loopback()));
    });
}

void TestLineHost::start(const IpAddress& ip, std::vector<Endpoint> gateway) {
    gateway_ = std::move(gateway);
    rtp_.rtp = true;
    open(sip_, ip);
    open_ = true;
    open(rtp_, ip);
    line_ = std::make_unique<gateway::TestLine>(sip_.local, rtp_.local,
                                                gateway::random_value<std::uint32_t>(gateway::random_bytes));
    sip_out_.reserve(4);
    rtp_out_.reserve(gateway::TestLine::kMaxCalls);
    uv_timer_init(loop_, &tick_);   // started while there are calls (arm())
    tick_.data = this;
    log::debug("test line: SIP on udp {}, RTP on {}", sip_.local.to_string(), rtp_.local.to_string());
}

void TestLineHost::close() {
    if (!open_) return;
    open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&sip_.udp), nullptr);
    if (line_) {
        uv_close(reinterpret_cast<uv_handle_t*>(&rtp_.udp), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    }
}

void TestLineHost::on_datagram(Socket& s, const Endpoint& from, std::span<const std::uint8_t> bytes) {
    if (!open_ || !line_) return;
    const auto now = io::read_clock().mono;
    if (s.rtp) line_->on_rtp(now, from, bytes, rtp_out_);   // only from a call's SDP address
    else if (!from_gateway(from)) return;
    else line_->on_sip(now, from, {reinterpret_cast<const char*>(bytes.data()), bytes.size()}, sip_out_);
    flush();
    arm();
}

void TestLineHost::arm() {
    // The 20 ms tick runs only while a call is up: an idle test line does not wake the loop.
    const bool want = line_->calls() > 0;
    if (want == ticking_) return;
    ticking_ = want;
    if (want) uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<TestLineHost*>(t->data)->on_tick(); }, kTickMs, kTickMs);
    else uv_timer_stop(&tick_);
}

void TestLineHost::on_tick() {
    if (!open_) return;
    line_->on_tick(io::read_clock().mono, rtp_out_);
    flush();
    arm();
}

void TestLineHost::flush() {
    auto send = [](Socket& s, const Endpoint& to, const void* data, std::size_t size) {
        sockaddr_storage ss{};
        to.to_sockaddr(ss);
        const uv_buf_t buf = uv_buf_init(const_cast<char*>(static_cast<const char*>(data)), static_cast<unsigned>(size));
        io::udp_send(&s.udp, reinterpret_cast<const sockaddr*>(&ss), {&buf, 1});
    };
    for (const auto& o : sip_out_) send(sip_, o.to, o.bytes.data(), o.bytes.size());
    for (const auto& o : rtp_out_) send(rtp_, o.to, o.bytes.data(), o.bytes.size());
    sip_out_.clear();
    rtp_out_.clear();
}

}  // namespace turnbridge::gateway::host
