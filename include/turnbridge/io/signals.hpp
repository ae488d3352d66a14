// SPDX-License-Identifier: Apache-2.0
#pragma once
// SIGTERM/SIGINT (stop), SIGHUP (reload) and SIGUSR1 (drain) on the main loop. libuv turns the signal into a
// loop callback, so the handlers may do real work (reload files, join threads).
#include <functional>
#include <uv.h>

namespace turnbridge::io {

class Signals {
public:
    // SIGUSR1 calls `on_drain` (issue 15: a fleet node drains); ignored without one.
    Signals(uv_loop_t* loop, std::function<void(const char*)> on_stop, std::function<void()> on_reload,
            std::function<void()> on_drain = {});
    void close();

private:
    static void on_signal(uv_signal_t* h, int signum);

    uv_signal_t term_{};
    uv_signal_t intr_{};
    uv_signal_t hup_{};
    uv_signal_t usr1_{};
    std::function<void(const char*)> on_stop_;
    std::function<void()> on_reload_;
    std::function<void()> on_drain_;
    bool open_ = true;
};

}  // namespace turnbridge::io
