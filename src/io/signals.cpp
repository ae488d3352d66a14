// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/io/signals.hpp"

#include <csignal>
#include <pthread.h>

namespace turnbridge::io {

Signals::Signals(uv_loop_t* loop, std::function<void(const char*)> on_stop, std::function<void()> on_reload,
                 std::function<void()> on_drain)
    : on_stop_(std::move(on_stop)), on_reload_(std::move(on_reload)), on_drain_(std::move(on_drain)) {
    for (auto [h, signum] : {std::pair{&term_, SIGTERM}, std::pair{&intr_, SIGINT}, std::pair{&hup_, SIGHUP},
                             std::pair{&usr1_, SIGUSR1}}) {
        uv_signal_init(loop, h);
        h->data = this;
        uv_signal_start(h, on_signal, signum);
    }
}

void Signals::close() {
    if (!open_) return;
    open_ = false;
    // Closing the last uv_signal_t of a signal puts back its default action, so a second SIGTERM
    // (systemd's, a supervisor's) or a SIGHUP during shutdown would kill the process before the
    // last accounting flush. Ignore both until exit. They stay blocked in this thread (the only
    // one left: the workers are joined) from before the close until they are ignored, so one that
    // arrives in between stays pending and is then discarded. SIGINT keeps its default, so a
    // second Ctrl-C still forces an interactive run to quit.
    sigset_t both, before;
    sigemptyset(&both);
    sigaddset(&both, SIGTERM);
    sigaddset(&both, SIGHUP);
    sigaddset(&both, SIGUSR1);  // a drain request during shutdown: nothing left to drain
    pthread_sigmask(SIG_BLOCK, &both, &before);
    for (auto* h : {&term_, &intr_, &hup_, &usr1_}) uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
    std::signal(SIGTERM, SIG_IGN);
    std::signal(SIGHUP, SIG_IGN);
    std::signal(SIGUSR1, SIG_IGN);
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

void Signals::on_signal(uv_signal_t* h, int signum) {
    auto* self = static_cast<Signals*>(h->data);
    if (signum == SIGUSR1) {
        if (self->on_drain_) self->on_drain_();
    } else if (signum == SIGHUP) {
        self->on_reload_();
    } else {
        self->on_stop_(signum == SIGTERM ? "SIGTERM" : "SIGINT");
    }
}

}  // namespace turnbridge::io
