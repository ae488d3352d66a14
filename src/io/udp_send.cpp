// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/io/udp_send.hpp"

#include <cstdlib>
#include <cstring>

namespace turnbridge::io {
namespace {

// A queued copy: the request, then the bytes, in one malloc freed by the callback.
struct QueuedDatagram {
    uv_udp_send_t req;
    char* data() { return reinterpret_cast<char*>(this + 1); }
};

void on_sent(uv_udp_send_t* req, int /*status*/) {
    // A failed datagram is lost like any other UDP loss; nothing to report per packet.
    std::free(reinterpret_cast<QueuedDatagram*>(req));
}

}  // namespace

const char kZeroPad[4] = {0, 0, 0, 0};

SendResult udp_send(uv_udp_t* handle, const sockaddr* to, std::span<const uv_buf_t> pieces) {
    const int rc = uv_udp_try_send(handle, pieces.data(), static_cast<unsigned>(pieces.size()), to);
    if (rc >= 0) return SendResult::Sent;
    if (rc != UV_EAGAIN) return SendResult::Dropped;  // EMSGSIZE, ENETUNREACH...: a lost datagram
    // The socket buffer is full or earlier datagrams are queued: keep order by queueing a copy.
    if (uv_udp_get_send_queue_size(handle) > kMaxUdpQueueBytes) return SendResult::Dropped;
    std::size_t len = 0;
    for (const auto& p : pieces) len += p.len;
    auto* q = static_cast<QueuedDatagram*>(std::malloc(sizeof(QueuedDatagram) + len));
    if (q == nullptr) return SendResult::Dropped;
    std::size_t off = 0;
    for (const auto& p : pieces) {
        if (p.len != 0) std::memcpy(q->data() + off, p.base, p.len);
        off += p.len;
    }
    const uv_buf_t buf = uv_buf_init(q->data(), static_cast<unsigned>(len));
    if (uv_udp_send(&q->req, handle, &buf, 1, to, on_sent) != 0) {
        std::free(q);
        return SendResult::Dropped;
    }
    return SendResult::Queued;
}

}  // namespace turnbridge::io
