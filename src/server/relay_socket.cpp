// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/server/relay_socket.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/socket_util.hpp"
#include "turnbridge/server/worker.hpp"

namespace turnbridge::server {

RelaySocket* RelaySocket::open(Worker& worker, turn::RelayHandle handle, int fd, const Endpoint& local, int& err) {
    auto* s = new RelaySocket(worker, handle, fd, local);
    // recvmmsg: a burst from a peer is read in one system call (libuv >= 1.40).
    err = uv_udp_init_ex(worker.loop(), &s->udp_, AF_UNSPEC | UV_UDP_RECVMMSG);
    if (err != 0) {
        ::close(fd);
        delete s;
        return nullptr;
    }
    s->udp_.data = s;
    err = uv_udp_open(&s->udp_, fd);
    if (err == 0) io::clear_reuse_addr(fd);
    s->target_ = io::UdpTarget{&s->udp_, fd};
    if (err == 0) err = uv_udp_recv_start(&s->udp_, on_alloc, on_recv);
    if (err != 0) {
        uv_os_fd_t adopted = -1;
        if (uv_fileno(reinterpret_cast<uv_handle_t*>(&s->udp_), &adopted) != 0) ::close(fd);  // never adopted
        s->close();
        return nullptr;
    }
    return s;
}

void RelaySocket::send(const Endpoint& peer, stun::Bytes body, bool dont_fragment) {
    if (closing_) return;
    if (dont_fragment != dont_fragment_) {
        worker_.flush_sends();  // queued datagrams leave with the setting they were sent under
        set_dont_fragment(dont_fragment);
    }
    worker_.queue_send(target_, peer, {}, body, 0);
}

void RelaySocket::set_dont_fragment(bool on) {
    // RFC 8656 §11.2 / §12.6: with DONT-FRAGMENT the DF bit is set on the datagram to the peer.
    // The option is per socket, so it is only changed when a request asks for something else.
    dont_fragment_ = on;
    if (local_.ip.family == Family::V4) {
        const int mode = on ? IP_PMTUDISC_DO : IP_PMTUDISC_WANT;
        (void)setsockopt(fd_, IPPROTO_IP, IP_MTU_DISCOVER, &mode, sizeof mode);
    } else {
        const int flag = on ? 1 : 0;
        (void)setsockopt(fd_, IPPROTO_IPV6, IPV6_DONTFRAG, &flag, sizeof flag);
    }
}

void RelaySocket::close() {
    if (closing_) return;
    closing_ = true;
    worker_.flush_sends();  // before the handle goes
    uv_close(reinterpret_cast<uv_handle_t*>(&udp_), on_closed);
}

void RelaySocket::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    *buf = static_cast<RelaySocket*>(h->data)->worker_.udp_buffer();
}

void RelaySocket::on_recv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned flags) {
    auto* s = static_cast<RelaySocket*>(h->data);
    // nread 0 without an address: nothing read, or the end of a recvmmsg batch (UV_UDP_MMSG_FREE);
    // the buffer is the worker's, so there is nothing to free; the batch's sends go now.
    if (addr == nullptr || s->closing_ || (flags & UV_UDP_MMSG_FREE) != 0) {
        s->worker_.flush_sends();
        return;
    }
    if (nread < 0) {
        log::debug("relay {}: receive error: {}", s->local_.to_string(), io::error_text(static_cast<int>(nread)));
        return;
    }
    if ((flags & UV_UDP_PARTIAL) != 0) return;  // truncated: cannot happen with 64 KiB buffers
    const auto peer = Endpoint::from_sockaddr(addr);
    if (!peer) return;
    s->worker_.on_peer_data(s->handle_, *peer,
                            stun::Bytes(reinterpret_cast<const std::uint8_t*>(buf->base), static_cast<std::size_t>(nread)),
                            (flags & UV_UDP_MMSG_CHUNK) != 0);
}

void RelaySocket::on_closed(uv_handle_t* h) { delete static_cast<RelaySocket*>(h->data); }

}  // namespace turnbridge::server
