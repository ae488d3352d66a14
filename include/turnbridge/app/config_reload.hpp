// SPDX-License-Identifier: Apache-2.0
#pragma once
// SIGHUP: what a reloaded configuration may change while running. Users, secrets, limits, peer
// rules, lifetimes and the certificate apply at once; sockets, relay addresses and the worker
// count need a restart, so their running values are kept (with a warning naming the key).
#include <memory>

#include "turnbridge/base/log.hpp"
#include "turnbridge/config/config.hpp"

namespace turnbridge::app {

std::shared_ptr<const config::Config> merge_reload(const config::Config& running,
                                                   const std::shared_ptr<const config::Config>& fresh);

// "debug" | "info" | "warn" | "error" (validated by config).
log::Level parse_log_level(std::string_view name);

}  // namespace turnbridge::app
