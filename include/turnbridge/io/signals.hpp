// SPDX-License-Identifier: Apache-2.0
#pragma once
// SIGTERM/SIGINT (stop) and SIGHUP (reload) on the main loop. libuv turns the signal into a
// loop callback, so the handlers may do real work (reload files, join threads).
#include <functional>
#include <uv.h>

namespace turnbridge::io {

class Signals {
public:
    Signals(uv_loop_t* loop, std::function<void(const char*)> on_stop, std::function<void()> on_reload);
    void close();

private:
    static void on_signal(uv_signal_t* h, int signum);

    uv_signal_t term_{};
    uv_signal_t intr_{};
    uv_signal_t hup_{};
    std::function<void(const char*)> on_stop_;
    std::function<void()> on_reload_;
    bool open_ = true;
};

}  // namespace turnbridge::io
