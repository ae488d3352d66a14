// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/app/systemd_notify.hpp"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>

namespace turnbridge::app {
namespace {

// "@name" is the abstract namespace (sun_path starting with a NUL byte), anything else a path.
bool to_sockaddr(const std::string& path, sockaddr_un& sa, socklen_t& len) {
    sa = {};
    sa.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof sa.sun_path) return false;
    if (path[0] != '/' && path[0] != '@') return false;
    std::memcpy(sa.sun_path, path.data(), path.size());
    if (path[0] == '@') sa.sun_path[0] = '\0';
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '/' ? 1 : 0));
    return true;
}

}  // namespace

SystemdNotify SystemdNotify::from_environment() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    std::chrono::microseconds watchdog{0};
    // sd_watchdog_enabled(3): WATCHDOG_PID, when set, must be ours.
    const char* pid = std::getenv("WATCHDOG_PID");
    const char* usec = std::getenv("WATCHDOG_USEC");
    long long mine = 0, value = 0;
    const bool pid_ok = !pid || (std::from_chars(pid, pid + std::strlen(pid), mine).ec == std::errc() && mine == getpid());
    if (usec && pid_ok && std::from_chars(usec, usec + std::strlen(usec), value).ec == std::errc() && value > 0)
        watchdog = std::chrono::microseconds(value);
    std::string path = socket ? socket : "";
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    if (path.empty()) return {};
    return SystemdNotify(std::move(path), watchdog);
}

SystemdNotify::SystemdNotify(std::string socket_path, std::chrono::microseconds watchdog)
    : path_(std::move(socket_path)), watchdog_(watchdog) {
    sockaddr_un sa;
    socklen_t len = 0;
    if (!to_sockaddr(path_, sa, len)) return;
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

SystemdNotify::~SystemdNotify() {
    if (fd_ >= 0) close(fd_);
}

SystemdNotify::SystemdNotify(SystemdNotify&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)), watchdog_(o.watchdog_) {}

SystemdNotify& SystemdNotify::operator=(SystemdNotify&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) close(fd_);
        fd_ = std::exchange(o.fd_, -1);
        path_ = std::move(o.path_);
        watchdog_ = o.watchdog_;
    }
    return *this;
}

bool SystemdNotify::send(std::string_view state) const {
    if (fd_ < 0) return false;
    sockaddr_un sa;
    socklen_t len = 0;
    if (!to_sockaddr(path_, sa, len)) return false;
    ssize_t n;
    do {
        n = sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&sa), len);
    } while (n < 0 && errno == EINTR);
    return n == static_cast<ssize_t>(state.size());
}

}  // namespace turnbridge::app
