// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/io/send_batch.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/udp.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/socket_util.hpp"
#include "turnbridge/io/udp_send.hpp"

namespace turnbridge::io {

struct SendBatch::Entry {
    UdpTarget* target = nullptr;
    Endpoint to;
    std::array<std::uint8_t, kMaxHead> head{};
    std::uint8_t head_len = 0;
    std::uint8_t pad = 0;
    bool taken = false;
    const std::uint8_t* body = nullptr;
    std::size_t body_len = 0;
    std::size_t size() const { return head_len + body_len + pad; }
};

// One socket's sendmmsg, built in place: at most three pieces per datagram.
struct SendBatch::Scratch {
    std::array<std::size_t, kCapacity> order{};  // entry indexes of this socket, in queue order
    std::array<Endpoint, kCapacity> to{};
    std::array<std::size_t, kCapacity> sizes{};
    std::array<PlannedMessage, kCapacity> plan{};
    std::array<mmsghdr, kCapacity> msgs{};
    std::array<iovec, kCapacity * 3> iov{};
    std::array<sockaddr_storage, kCapacity> names{};
    alignas(cmsghdr) std::array<std::array<char, CMSG_SPACE(sizeof(std::uint16_t))>, kCapacity> control{};
};

SendBatch::SendBatch() : entries_(new Entry[kCapacity]), scratch_(new Scratch) {}
SendBatch::~SendBatch() = default;

void SendBatch::add(UdpTarget& target, const Endpoint& to, stun::Bytes head, stun::Bytes body, std::uint8_t pad) {
    if (n_ == kCapacity) flush();
    Entry& e = entries_[n_++];
    e.target = &target;
    e.to = to;
    e.head_len = static_cast<std::uint8_t>(head.size());
    if (!head.empty()) std::memcpy(e.head.data(), head.data(), head.size());
    e.body = body.data();
    e.body_len = body.size();
    e.pad = pad & 3u;
    e.taken = false;
}

void SendBatch::flush() {
    const std::size_t n = n_;
    n_ = 0;  // a fallback send cannot re-enter, but keep the batch consistent first
    for (std::size_t i = 0; i < n; ++i) {
        if (entries_[i].taken) continue;
        UdpTarget& t = *entries_[i].target;
        std::size_t count = 0;
        for (std::size_t j = i; j < n; ++j) {
            if (entries_[j].taken || entries_[j].target != &t) continue;
            entries_[j].taken = true;
            scratch_->order[count++] = j;
        }
        send_on(t, count);
    }
}

void SendBatch::fallback(UdpTarget& t, const Entry& e) {
    sockaddr_storage sa{};
    e.to.to_sockaddr(sa);
    uv_buf_t pieces[3];
    std::size_t k = 0;
    pieces[k++] = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(e.head.data())), e.head_len);
    if (e.body_len != 0)
        pieces[k++] = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(e.body)), static_cast<unsigned>(e.body_len));
    if (e.pad != 0) pieces[k++] = uv_buf_init(const_cast<char*>(kZeroPad), e.pad);
    ++stats_.fallbacks;
    udp_send(t.handle, reinterpret_cast<const sockaddr*>(&sa), {pieces, k});
}

void SendBatch::send_on(UdpTarget& t, std::size_t count) {
    Scratch& s = *scratch_;
    stats_.datagrams += count;
    // Datagrams already waiting in libuv's queue (an earlier EAGAIN) must leave first: join it.
    if (uv_udp_get_send_queue_count(t.handle) > 0) {
        for (std::size_t k = 0; k < count; ++k) fallback(t, entries_[s.order[k]]);
        return;
    }
    for (std::size_t k = 0; k < count; ++k) {
        const Entry& e = entries_[s.order[k]];
        s.to[k] = e.to;
        s.sizes[k] = e.size();
    }
    const std::size_t m = plan_messages({s.to.data(), count}, {s.sizes.data(), count}, t.gso, s.plan);
    std::size_t piece = 0;
    for (std::size_t k = 0; k < m; ++k) {
        const PlannedMessage& p = s.plan[k];
        msghdr& h = s.msgs[k].msg_hdr;
        h = msghdr{};
        h.msg_name = &s.names[k];
        h.msg_namelen = s.to[p.first].to_sockaddr(s.names[k]);
        h.msg_iov = &s.iov[piece];
        for (std::size_t d = p.first; d < p.first + p.count; ++d) {
            const Entry& e = entries_[s.order[d]];
            if (e.head_len != 0) s.iov[piece++] = iovec{const_cast<std::uint8_t*>(e.head.data()), e.head_len};
            if (e.body_len != 0) s.iov[piece++] = iovec{const_cast<std::uint8_t*>(e.body), e.body_len};
            if (e.pad != 0) s.iov[piece++] = iovec{const_cast<char*>(kZeroPad), e.pad};
        }
        h.msg_iovlen = static_cast<std::size_t>(&s.iov[piece] - h.msg_iov);
        if (p.segment != 0) {
            // Linux UDP GSO: one message, cut by the kernel into `segment`-byte datagrams.
            h.msg_control = s.control[k].data();
            h.msg_controllen = s.control[k].size();
            cmsghdr* c = CMSG_FIRSTHDR(&h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
            const std::uint16_t seg = p.segment;
            std::memcpy(CMSG_DATA(c), &seg, sizeof seg);
            ++stats_.gso_messages;
        }
    }
    std::size_t sent = 0;
    while (sent < m) {
        ++stats_.syscalls;
        const int r = sendmmsg_(t.fd, &s.msgs[sent], static_cast<unsigned>(m - sent), 0);
        if (r > 0) {
            sent += static_cast<std::size_t>(r);
            continue;
        }
        const int err = errno;
        if (err == EINTR) continue;
        const PlannedMessage& p = s.plan[sent];
        if (err == EAGAIN || err == EWOULDBLOCK) {
            // The socket buffer is full: libuv queues the rest in order and sends when writable,
            // so nothing is lost here (udp_send's own cap still applies).
            for (std::size_t d = p.first; d < count; ++d) fallback(t, entries_[s.order[d]]);
            return;
        }
        const bool no_gso = err == EIO || err == EINVAL || err == ENOPROTOOPT || err == EOPNOTSUPP;
        if (p.segment != 0 && no_gso) {
            // No GSO here (no checksum offload, an old kernel, an xfrm route, a small MTU...):
            // turn it off for this socket; the run goes out as plain datagrams below.
            t.gso = false;
            static std::atomic<bool> logged{false};  // once per process: logging is process-wide
            if (!logged.exchange(true)) {
                log::warn("UDP GSO refused by the kernel ({}); sending datagrams one by one on that socket",
                          error_text(-err));
            }
        }
        // A refused run, or one over the path MTU with DONT-FRAGMENT (EMSGSIZE): each datagram
        // meets its own fate, as if never batched.
        if (p.segment != 0 && (no_gso || err == EMSGSIZE))
            for (std::size_t d = p.first; d < p.first + p.count; ++d) fallback(t, entries_[s.order[d]]);
        // Otherwise (EMSGSIZE, ENETUNREACH, EPERM... on a plain datagram): lost like any UDP loss.
        ++sent;
    }
}

}  // namespace turnbridge::io
