// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/app/config_reload.hpp"

namespace turnbridge::app {
namespace {

// Keeps `running`'s value of one restart-only setting in `merged`, warning when they differ.
template <class T>
bool keep(const char* key, const T& running, T& merged) {
    if (running == merged) return false;
    log::warn("configuration reload: {} changed; restart turnbridge to apply it (keeping the running value)", key);
    merged = running;
    return true;
}

}  // namespace

std::shared_ptr<const config::Config> merge_reload(const config::Config& running,
                                                   const std::shared_ptr<const config::Config>& fresh) {
    auto merged = std::make_shared<config::Config>(*fresh);
    bool changed = false;
    changed |= keep("server.listen", running.listen, merged->listen);
    changed |= keep("server.tls_listen", running.tls_listen, merged->tls_listen);
    changed |= keep("server.relay_ips", running.relay_ips, merged->relay_ips);
    changed |= keep("server.external_ip", running.external_ip, merged->external_ip);
    changed |= keep("server.relay_ports (min)", running.relay_port_min, merged->relay_port_min);
    changed |= keep("server.relay_ports (max)", running.relay_port_max, merged->relay_port_max);
    changed |= keep("server.threads", running.threads, merged->threads);
    // The nonce minter is shared by all workers and immutable while they run.
    changed |= keep("server.nonce_lifetime", running.nonce_lifetime, merged->nonce_lifetime);
    // The store and the admin listener are opened once at start.
    changed |= keep("accounting.database", running.accounting.database, merged->accounting.database);
    changed |= keep("accounting.flush_interval", running.accounting.flush_interval, merged->accounting.flush_interval);
    changed |= keep("admin.listen", running.admin.listen, merged->admin.listen);
    changed |= keep("accounting.enabled", running.accounting.enabled, merged->accounting.enabled);
    if (!changed) return fresh;
    return merged;
}

log::Level parse_log_level(std::string_view name) {
    if (name == "debug") return log::Level::Debug;
    if (name == "warn") return log::Level::Warn;
    if (name == "error") return log::Level::Error;
    return log::Level::Info;
}

}  // namespace turnbridge::app
