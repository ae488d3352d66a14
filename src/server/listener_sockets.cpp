// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/server/listener_sockets.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include "turnbridge/io/socket_util.hpp"

namespace turnbridge::server {
namespace {

// Client-facing UDP sockets take bursts from many clients at once. TCP sockets keep the
// kernel's autotuning (a fixed SO_RCVBUF would switch it off for every accepted connection).
constexpr int kListenerBufferBytes = 4 << 20;

struct Wanted {
    Transport transport;
    io::SocketKind kind;
    Endpoint local;
};

std::string bind_error(io::SocketKind kind, Transport t, const Endpoint& ep, int err) {
    const std::string_view what = t == Transport::Tls ? "tls" : to_string(kind);
    return fmt::format("cannot bind {} {}: {}", what, ep.to_string(), io::error_text(err));
}

}  // namespace

std::variant<ListenerFds, std::string> open_listeners(const config::Config& cfg, unsigned workers) {
    std::vector<Wanted> wanted;
    for (const auto& ep : cfg.listen) {
        wanted.push_back({Transport::Udp, io::SocketKind::Udp, ep});
        wanted.push_back({Transport::Tcp, io::SocketKind::Tcp, ep});
    }
    for (const auto& ep : cfg.tls_listen) wanted.push_back({Transport::Tls, io::SocketKind::Tcp, ep});

    ListenerFds fds(workers);
    for (const auto& w : wanted) {
        if (int err = io::probe_free(w.kind, w.local); err != 0) {
            close_listeners(fds);
            return bind_error(w.kind, w.transport, w.local, err);
        }
        for (unsigned i = 0; i < workers; ++i) {
            const int buffer = w.kind == io::SocketKind::Udp ? kListenerBufferBytes : 0;
            const int fd = io::open_bound_socket(w.kind, w.local, io::SocketOptions{true, buffer});
            if (fd < 0) {
                close_listeners(fds);
                return bind_error(w.kind, w.transport, w.local, fd);
            }
            fds[i].push_back(ListenerFd{w.transport, w.local, fd});
        }
    }
    return fds;
}

void close_listeners(ListenerFds& fds) {
    for (auto& per_worker : fds)
        for (auto& l : per_worker)
            if (l.fd >= 0) ::close(l.fd);
    fds.clear();
}

}  // namespace turnbridge::server
