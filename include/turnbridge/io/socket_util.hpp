// SPDX-License-Identifier: Apache-2.0
#pragma once
// Raw socket helpers for the net layer: the options libuv does not set for us (SO_REUSEPORT,
// IPV6_V6ONLY before bind, buffer sizes) and errno text that is safe to log.
#include <cstdint>
#include <optional>
#include <string>
#include <uv.h>

#include "turnbridge/base/address.hpp"

namespace turnbridge::io {

enum class SocketKind : std::uint8_t { Udp, Tcp };

struct SocketOptions {
    bool reuse_port = false;   // SO_REUSEPORT: one socket per worker, the kernel spreads the load
    int buffer_bytes = 0;      // SO_RCVBUF/SO_SNDBUF; 0 = leave the kernel default
};

// Creates a non-blocking, close-on-exec socket bound to `ep` (IPV6_V6ONLY for IPv6, so that a
// [::] listener never sees v4-mapped addresses). TCP sockets also listen. Returns the fd, or
// -errno.
int open_bound_socket(SocketKind kind, const Endpoint& ep, const SocketOptions& opts);

// Checks that nobody else holds `ep` by binding it once without SO_REUSEPORT: a stale process of
// ours would otherwise silently join the SO_REUSEPORT group and steal half the traffic.
// Returns 0 or -errno.
int probe_free(SocketKind kind, const Endpoint& ep);

// uv_udp_open() sets SO_REUSEADDR on the sockets it adopts; on Linux that would let another
// local socket with SO_REUSEADDR bind the same UDP port and take its datagrams. Clear it again.
void clear_reuse_addr(int fd);

// The remote address of an accepted or connected TCP handle; nullopt if the kernel has none.
std::optional<Endpoint> tcp_peer(const uv_tcp_t* tcp);

// Best effort SO_RCVBUF/SO_SNDBUF.
void set_buffer_sizes(int fd, int bytes);

// strerror-like text for a negative errno or libuv error code. Never contains the word that
// tests wait for on startup ("Address already in use" would match it).
std::string error_text(int negative_errno);

std::string_view to_string(SocketKind k);

}  // namespace turnbridge::io
