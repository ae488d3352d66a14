// SPDX-License-Identifier: Apache-2.0
#pragma once
// One outgoing datagram from pieces (head, body, pad), sent without a copy when the socket is
// writable, else copied into a queued uv_udp_send. Shared by client listeners and relay sockets.
#include <cstddef>
#include <span>
#include <uv.h>

struct sockaddr;

namespace turnbridge::io {

enum class SendResult { Sent, Queued, Dropped };

// Above this many queued bytes on one socket, further datagrams are dropped (UDP may lose them;
// memory must not grow without bound when the kernel buffer is full).
constexpr std::size_t kMaxUdpQueueBytes = 4u << 20;

SendResult udp_send(uv_udp_t* handle, const sockaddr* to, std::span<const uv_buf_t> pieces);

// Up to three zero bytes of padding (RFC 8656 §12.5), for uv_buf_t pieces.
extern const char kZeroPad[4];

}  // namespace turnbridge::io
