// SPDX-License-Identifier: Apache-2.0
#pragma once
// The worker's outgoing datagrams of one receive batch, sent together when the batch ends: one
// sendmmsg per socket, with runs toward one destination folded into UDP GSO messages
// (gso_plan.hpp). Preallocated per worker: queueing copies only the small head (ChannelData or
// Data indication header); the payload stays in the receive buffer until the flush, which
// runs before that buffer is handed out again.
#include <array>
#include <cstdint>
#include <memory>
#include <sys/socket.h>
#include <sys/uio.h>
#include <uv.h>

#include "turnbridge/base/address.hpp"
#include "turnbridge/io/gso_plan.hpp"
#include "turnbridge/stun/message.hpp"

namespace turnbridge::io {

// A UDP socket that batched datagrams leave from (a client listener or a relay socket).
struct UdpTarget {
    uv_udp_t* handle = nullptr;
    int fd = -1;
    bool gso = true;  // cleared for good when the kernel refuses UDP_SEGMENT on this socket
};

struct SendBatchStats {
    std::uint64_t datagrams = 0;
    std::uint64_t syscalls = 0;      // sendmmsg calls
    std::uint64_t gso_messages = 0;  // messages that carried more than one datagram
    std::uint64_t fallbacks = 0;     // datagrams handed to libuv's own send path instead
};

class SendBatch {
public:
    static constexpr std::size_t kCapacity = 64;
    static constexpr std::size_t kMaxHead = 64;  // longest header queued by copy

    SendBatch();
    ~SendBatch();
    SendBatch(const SendBatch&) = delete;
    SendBatch& operator=(const SendBatch&) = delete;

    // True when `head` is short enough to be queued; otherwise flush() and send directly.
    static bool fits(stun::Bytes head) { return head.size() <= kMaxHead; }
    // Queues head + body + pad zero bytes toward `to` on `target`; flushes first when full.
    // `body` must stay valid until the next flush().
    void add(UdpTarget& target, const Endpoint& to, stun::Bytes head, stun::Bytes body, std::uint8_t pad);
    // Sends everything queued, socket by socket, in queue order per socket.
    void flush();
    bool empty() const { return n_ == 0; }
    const SendBatchStats& stats() const { return stats_; }

    // Test seam: the sendmmsg(2) to call, so that tests can play a kernel that says EAGAIN or
    // refuses UDP_SEGMENT (loopback does neither).
    using SendMmsg = int (*)(int fd, mmsghdr* msgs, unsigned n, int flags);
    void set_sendmmsg(SendMmsg fn) { sendmmsg_ = fn; }

private:
    struct Entry;
    struct Scratch;
    void send_on(UdpTarget& t, std::size_t count);
    void fallback(UdpTarget& t, const Entry& e);

    std::unique_ptr<Entry[]> entries_;
    std::unique_ptr<Scratch> scratch_;
    std::size_t n_ = 0;
    SendBatchStats stats_;
    SendMmsg sendmmsg_ = ::sendmmsg;
};

}  // namespace turnbridge::io
