// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/io/socket_util.hpp"

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace turnbridge::io {
namespace {

constexpr int kListenBacklog = 1024;

int domain_of(const Endpoint& ep) { return ep.ip.family == Family::V4 ? AF_INET : AF_INET6; }

int set_flag(int fd, int level, int name) {
    const int one = 1;
    return setsockopt(fd, level, name, &one, sizeof one) == 0 ? 0 : -errno;
}

// socket() + options + bind(); the caller decides about listen().
int bound(SocketKind kind, const Endpoint& ep, bool reuse_addr, bool reuse_port, int buffer_bytes) {
    const int type = (kind == SocketKind::Udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
    const int fd = ::socket(domain_of(ep), type, 0);
    if (fd < 0) return -errno;
    int err = 0;
    if (ep.ip.family == Family::V6) err = set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY);
    if (err == 0 && reuse_addr) err = set_flag(fd, SOL_SOCKET, SO_REUSEADDR);
    if (err == 0 && reuse_port) err = set_flag(fd, SOL_SOCKET, SO_REUSEPORT);
    if (err == 0 && buffer_bytes > 0) set_buffer_sizes(fd, buffer_bytes);
    if (err == 0) {
        sockaddr_storage sa{};
        const unsigned len = ep.to_sockaddr(sa);
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), len) != 0) err = -errno;
    }
    if (err != 0) {
        ::close(fd);
        return err;
    }
    return fd;
}

}  // namespace

int open_bound_socket(SocketKind kind, const Endpoint& ep, const SocketOptions& opts) {
    // TCP: SO_REUSEADDR so that a restart is not refused while old connections sit in TIME_WAIT.
    const int fd = bound(kind, ep, kind == SocketKind::Tcp, opts.reuse_port, opts.buffer_bytes);
    if (fd < 0 || kind == SocketKind::Udp) return fd;
    if (::listen(fd, kListenBacklog) != 0) {
        const int err = -errno;
        ::close(fd);
        return err;
    }
    return fd;
}

int probe_free(SocketKind kind, const Endpoint& ep) {
    // SO_REUSEADDR on TCP still conflicts with a listening socket on Linux, but not with TIME_WAIT.
    const int fd = bound(kind, ep, kind == SocketKind::Tcp, false, 0);
    if (fd < 0) return fd;
    ::close(fd);
    return 0;
}

void clear_reuse_addr(int fd) {
    const int zero = 0;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof zero);
}

void set_buffer_sizes(int fd, int bytes) {
    // Failure only means a smaller buffer (net.core.rmem_max caps it); never fatal.
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

std::string error_text(int negative_errno) {
    const int e = -negative_errno;
    switch (e) {
        case EADDRINUSE: return "address in use (EADDRINUSE)";
        case EALREADY: return "operation in progress (EALREADY)";
        case EADDRNOTAVAIL: return "address not available on this host (EADDRNOTAVAIL)";
        case EACCES: return "permission denied (EACCES)";
        default: return std::strerror(e);
    }
}

std::string_view to_string(SocketKind k) { return k == SocketKind::Udp ? "udp" : "tcp"; }

std::optional<Endpoint> tcp_peer(const uv_tcp_t* tcp) {
    sockaddr_storage peer{};
    int len = sizeof peer;
    if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return std::nullopt;
    return Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&peer));
}

}  // namespace turnbridge::io
