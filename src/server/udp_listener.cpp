// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/server/udp_listener.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/socket_util.hpp"
#include "turnbridge/io/udp_send.hpp"
#include "turnbridge/server/worker.hpp"

namespace turnbridge::server {
namespace {

uv_buf_t piece(stun::Bytes b) {
    return uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(b.data())), static_cast<unsigned>(b.size()));
}

}  // namespace

int UdpListener::start(int fd) {
    // recvmmsg: one system call reads a batch of datagrams into the worker's buffer.
    int err = uv_udp_init_ex(worker_.loop(), &udp_, AF_UNSPEC | UV_UDP_RECVMMSG);
    if (err != 0) {
        ::close(fd);
        return err;
    }
    open_ = true;
    udp_.data = this;
    err = uv_udp_open(&udp_, fd);
    if (err != 0) {
        ::close(fd);
        return err;
    }
    io::clear_reuse_addr(fd);  // SO_REUSEPORT (same user only) is what groups the workers' sockets
    target_ = io::UdpTarget{&udp_, fd};
    return uv_udp_recv_start(&udp_, on_alloc, on_recv);
}

void UdpListener::send(const Endpoint& to, stun::Bytes head, stun::Bytes body, std::uint8_t pad) {
    sockaddr_storage sa{};
    to.to_sockaddr(sa);
    uv_buf_t pieces[3];
    std::size_t n = 0;
    pieces[n++] = piece(head);
    if (!body.empty()) pieces[n++] = piece(body);
    if (pad != 0) pieces[n++] = uv_buf_init(const_cast<char*>(io::kZeroPad), pad & 3u);
    io::udp_send(&udp_, reinterpret_cast<const sockaddr*>(&sa), {pieces, n});
}

void UdpListener::close() {
    if (!open_) return;
    open_ = false;
    worker_.flush_sends();  // before the handle goes
    uv_close(reinterpret_cast<uv_handle_t*>(&udp_), nullptr);  // memory is the worker's
}

void UdpListener::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    *buf = static_cast<UdpListener*>(h->data)->worker_.udp_buffer();
}

void UdpListener::on_recv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned flags) {
    auto* self = static_cast<UdpListener*>(h->data);
    // nread 0 without an address: nothing read, or the end of a recvmmsg batch (UV_UDP_MMSG_FREE);
    // the buffer is the worker's, so there is nothing to free, but what the batch produced is
    // sent now, while the buffer still holds the payloads.
    if (addr == nullptr || (flags & UV_UDP_MMSG_FREE) != 0 || !self->open_) {
        self->worker_.flush_sends();
        return;
    }
    if (nread < 0) {
        log::debug("udp {}: receive error: {}", self->local_.to_string(), io::error_text(static_cast<int>(nread)));
        return;
    }
    if ((flags & UV_UDP_PARTIAL) != 0) return;
    const auto client = Endpoint::from_sockaddr(addr);
    if (!client) return;
    const FiveTuple from{Transport::Udp, *client, self->local_};
    // Inside a recvmmsg batch (UV_UDP_MMSG_CHUNK) the sends wait for its end; otherwise they go now.
    self->worker_.on_client_data(
        from, stun::Bytes(reinterpret_cast<const std::uint8_t*>(buf->base), static_cast<std::size_t>(nread)),
        (flags & UV_UDP_MMSG_CHUNK) != 0);
}

}  // namespace turnbridge::server
