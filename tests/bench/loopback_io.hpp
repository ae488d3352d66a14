// SPDX-License-Identifier: Apache-2.0
#pragma once
// The load generators' sockets, on loopback only: nonblocking UDP sockets and a WebSocket client
// (RFC 6455) for SIP over WebSocket (RFC 7118). Plain POSIX calls; the callers poll (epoll).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <string_view>

#include "turnbridge/base/address.hpp"
#include "turnbridge/sip/websocket_handshake.hpp"

namespace turnbridge::bench {

inline void nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// A nonblocking UDP socket bound to `bind_to`; -1 (errno set) if it cannot be.
inline int udp_socket(const Endpoint& bind_to) {
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_storage sa{};
    const auto len = bind_to.to_sockaddr(sa);
    if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
        const int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

inline Endpoint local_endpoint(int fd) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    return *Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&sa));
}

inline bool connect_to(int fd, const Endpoint& to) {
    sockaddr_storage sa{};
    const auto len = to.to_sockaddr(sa);
    return connect(fd, reinterpret_cast<sockaddr*>(&sa), len) == 0 || errno == EINPROGRESS;
}

inline bool loopback(const Endpoint& e) { return e.ip.to_string().rfind("127.", 0) == 0; }

// The browser's WebSocket (RFC 6455, client side): masked text frames out, server frames in, the
// complete messages (SIP, RFC 7118) in `inbox`.
struct WebSocketClient {
    int fd = -1;
    bool open = false, closed = false;
    std::string in;                  // bytes not yet framed
    std::deque<std::string> inbox;   // SIP messages received
    static constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 §1.3's example
    std::mt19937 mask_rng{std::random_device{}()};

    void write_all(std::string_view bytes) {
        while (!bytes.empty()) {
            const auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n > 0) bytes.remove_prefix(static_cast<std::size_t>(n));
            else if (n < 0 && errno == EAGAIN) usleep(200);   // loopback: the server drains it at once
            else {
                closed = true;
                return;
            }
        }
    }
    // The opening handshake toward ws://HOST/sip (RFC 7118 §4: subprotocol "sip"); false if the
    // connection is refused.
    bool start(const Endpoint& ws, const std::string& host) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return false;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (!connect_to(fd, ws)) return false;   // a blocking connect on loopback
        nonblocking(fd);
        write_all("GET /sip HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: " + std::string(kKey) + "\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Protocol: sip\r\n\r\n");
        return !closed;
    }
    // A masked text frame (§5.3: a client masks every frame).
    void send_text(std::string_view text, std::uint8_t opcode = 0x1) {
        std::string f(1, static_cast<char>(0x80 | opcode));
        const std::uint64_t n = text.size();
        if (n < 126) f += static_cast<char>(0x80 | n);
        else if (n < 65536) f += {static_cast<char>(0x80 | 126), static_cast<char>(n >> 8), static_cast<char>(n & 255)};
        else {
            closed = true;   // no SIP message of ours comes near 64 KiB
            return;
        }
        const std::uint32_t mask = static_cast<std::uint32_t>(mask_rng());
        const auto m = reinterpret_cast<const char*>(&mask);
        f.append(m, 4);
        for (std::size_t i = 0; i < text.size(); ++i) f += static_cast<char>(text[i] ^ m[i % 4]);
        write_all(f);
    }
    // Reads what is there; returns a problem, or empty.
    std::string on_readable() {
        char buf[16384];
        for (;;) {
            const auto n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0) in.append(buf, static_cast<std::size_t>(n));
            else if (n < 0 && errno == EAGAIN) break;
            else {
                closed = true;
                break;
            }
        }
        if (!open) {
            const auto end = in.find("\r\n\r\n");
            if (end == std::string::npos) return {};
            const auto head = in.substr(0, end);
            in.erase(0, end + 4);
            if (head.rfind("HTTP/1.1 101", 0) != 0 ||
                head.find("Sec-WebSocket-Accept: " + sip::websocket_accept(kKey)) == std::string::npos)
                return "WebSocket handshake refused: " + head.substr(0, head.find('\r'));
            open = true;
        }
        while (in.size() >= 2) {   // server frames: unmasked (§5.1)
            const auto b0 = static_cast<std::uint8_t>(in[0]), b1 = static_cast<std::uint8_t>(in[1]);
            std::size_t at = 2;
            std::uint64_t n = b1 & 0x7f;
            if (n == 126) {
                if (in.size() < 4) break;
                n = static_cast<std::uint8_t>(in[2]) << 8 | static_cast<std::uint8_t>(in[3]);
                at = 4;
            } else if (n == 127) {
                return "a server frame of over 64 KiB";
            }
            if (in.size() < at + n) break;
            const auto payload = in.substr(at, n);
            in.erase(0, at + n);
            const auto op = b0 & 0x0f;
            if (op == 0x1 || op == 0x2) inbox.push_back(payload);
            else if (op == 0x9) send_text(payload, 0xA);
            else if (op == 0x8) closed = true;
        }
        return {};
    }
};

}  // namespace turnbridge::bench
