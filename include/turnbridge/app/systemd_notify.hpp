// SPDX-License-Identifier: Apache-2.0
#pragma once
// sd_notify(3) without libsystemd: one datagram of "KEY=VALUE" lines to the AF_UNIX socket
// named by $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace). READY=1, STATUS=,
// RELOADING=1, STOPPING=1 and WATCHDOG=1 (with $WATCHDOG_USEC) for turnbridge.service.
#include <chrono>
#include <string>
#include <string_view>

namespace turnbridge::app {

class SystemdNotify {
public:
    // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, then unsets them so that no child
    // process inherits them. Without NOTIFY_SOCKET every send() is a no-op.
    static SystemdNotify from_environment();
    SystemdNotify() = default;
    SystemdNotify(std::string socket_path, std::chrono::microseconds watchdog);
    ~SystemdNotify();
    SystemdNotify(SystemdNotify&& o) noexcept;
    SystemdNotify& operator=(SystemdNotify&& o) noexcept;

    bool enabled() const { return fd_ >= 0; }
    // WatchdogSec= as systemd passed it; zero when the watchdog is off.
    std::chrono::microseconds watchdog() const { return watchdog_; }
    // One datagram, e.g. "READY=1\nSTATUS=ready". The socket is opened once, at construction,
    // so this still works after the privileges are dropped. False when it could not be sent.
    bool send(std::string_view state) const;

private:
    int fd_ = -1;
    std::string path_;  // as in NOTIFY_SOCKET ('@' for the abstract namespace)
    std::chrono::microseconds watchdog_{0};
};

}  // namespace turnbridge::app
