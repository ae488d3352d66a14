// SPDX-License-Identifier: Apache-2.0
#pragma once
// Binds every client-facing socket of every worker before any worker starts, so that a bad
// listener address fails startup with one message naming it.
#include <string>
#include <variant>
#include <vector>

#include "turnbridge/config/config.hpp"
#include "turnbridge/server/worker.hpp"

namespace turnbridge::server {

// Per worker: for each `listen` address a UDP and a TCP socket, for each `tls_listen` address a
// TCP socket (transport Tls), all with SO_REUSEPORT so the kernel spreads clients over workers.
using ListenerFds = std::vector<std::vector<ListenerFd>>;

std::variant<ListenerFds, std::string> open_listeners(const config::Config& cfg, unsigned workers);
void close_listeners(ListenerFds& fds);

}  // namespace turnbridge::server
