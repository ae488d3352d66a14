// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/app/app.hpp"

#include <chrono>
#include <latch>
#include <stdexcept>
#include <thread>

#include "turnbridge/accounting/store.hpp"
#include "turnbridge/base/log.hpp"
#include "turnbridge/app/config_reload.hpp"
#include "turnbridge/server/listener_sockets.hpp"

namespace turnbridge::app {
namespace {

constexpr std::uint64_t kPurgeMs = 5000;  // reservations live 30 s; a few seconds late is fine

}  // namespace

unsigned worker_count(unsigned threads) {
    if (threads != 0) return threads;
    const unsigned cores = std::thread::hardware_concurrency();
    return cores == 0 ? 1 : cores;
}

App::App(std::shared_ptr<const config::Config> cfg)
    : cfg_(std::move(cfg)),
      nonces_(turn::NonceMinter::with_random_key(cfg_->nonce_lifetime)),
      auth_(cfg_->auth_failures_per_minute, AuthThrottle::random_seed()) {}

App::~App() = default;

int App::run() {
    log::set_level(parse_log_level(cfg_->log_level));
    io::TlsContextPtr tls;
    if (!cfg_->tls_listen.empty() || !cfg_->wss_listen.empty()) {
        auto loaded = io::load_tls_context(cfg_->tls_cert, cfg_->tls_key);
        if (auto* why = std::get_if<io::TlsError>(&loaded)) {
            log::error("{}", why->to_string());
            return 1;
        }
        tls = std::get<io::TlsContextPtr>(loaded);
    }
    // Every connection is a descriptor: take all the kernel allows (issue 11: 1,024 ran out).
    const io::FdLimit fds = io::raise_fd_limit();
    fd_limit_ = fds.after;
    if (fds.after != fds.before)
        log::info("file descriptors: {} (raised from {})", fds.after, fds.before);
    else
        log::info("file descriptors: {}", fds.after);
    const unsigned count = worker_count(cfg_->threads);
    uv_loop_init(&loop_);
    if (!open_accounting(count) || !start_workers(count, std::move(tls)) || !start_admin()) {
        admin_.reset();
        workers_.clear();
        if (hub_) hub_->close();
        uv_run(&loop_, UV_RUN_DEFAULT);
        uv_loop_close(&loop_);
        return 1;
    }
    apply_stream_limits();  // before any listener accepts: the workers start below

    signals_.emplace(&loop_, [this](const char* why) { stop(why); }, [this] { reload(); });
    uv_timer_init(&loop_, &purge_);
    purge_.data = this;
    uv_timer_start(&purge_, [](uv_timer_t* t) { static_cast<App*>(t->data)->relays_.purge(); }, kPurgeMs, kPurgeMs);

    std::latch up(static_cast<std::ptrdiff_t>(workers_.size()));
    for (auto& w : workers_) w->start(up);
    up.wait();
    for (const auto& [name, realm] : cfg_->realms)
        if (realm.gateway.enabled) log::info("realm {}: gateway mode, trunk {}", name, realm.gateway.trunk.uri);
    log::info("ready: {} worker{}", count, count == 1 ? "" : "s");

    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    workers_.clear();
    log::info("stopped");
    return 0;
}

bool App::open_accounting(unsigned workers) {
    instance_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
    std::unique_ptr<accounting::Store> store;
    if (cfg_->accounting.enabled) {
        try {
            store = accounting::Store::open(cfg_->accounting.database, true);
        } catch (const std::exception& e) {
            log::error("accounting: {}", e.what());
            return false;
        }
    }
    hub_ = std::make_unique<AccountingHub>(&loop_, std::move(store), cfg_, workers,
                                           [this](unsigned worker, std::uint64_t id) {
                                               if (worker >= workers_.size()) return false;
                                               workers_[worker]->post_kick(id);
                                               return true;
                                           });
    hub_->set_auth_throttle(&auth_);
    if (cfg_->accounting.enabled)
        log::info("accounting to {} every {} s", cfg_->accounting.database.string(),
                  cfg_->accounting.flush_interval.count());
    else
        log::warn("accounting is off ([accounting] enabled = false): nothing relayed is recorded");
    return true;
}

bool App::start_admin() {
    if (!cfg_->admin.listen) return true;
    admin_ = std::make_unique<admin::HttpServer>(&loop_, *hub_, cfg_->admin.token);
    admin_->set_auth_throttle(&auth_);
    try {
        admin_->start(*cfg_->admin.listen);
    } catch (const std::exception& e) {
        log::error("admin: {}", e.what());
        return false;
    }
    return true;
}

bool App::start_workers(unsigned count, io::TlsContextPtr tls) {
    auto opened = server::open_listeners(*cfg_, count);
    if (auto* why = std::get_if<std::string>(&opened)) {
        log::error("{}", *why);
        return false;
    }
    auto fds = std::move(std::get<server::ListenerFds>(opened));
    for (const auto& l : fds.front()) log::info("listening {} {}", to_string(l.transport), l.local.to_string());
    if (cfg_->any_gateway()) {
        media_ = std::make_unique<server::MediaExchange>(*cfg_, count);
        gateway_ = std::make_unique<gateway::GatewayShared>(count, cfg_->sip_transactions);
    }
    const server::ProcessShared shared{&nonces_, &quota_, &relays_, cfg_->accounting.enabled ? hub_.get() : nullptr,
                               instance_ms_, media_.get(), gateway_.get(), &auth_, &streams_};
    for (unsigned i = 0; i < count; ++i) {
        try {
            workers_.push_back(std::make_unique<server::Worker>(i, cfg_, shared, tls, std::move(fds[i])));
        } catch (const std::exception& e) {
            log::error("{}", e.what());
            for (unsigned j = i + 1; j < count; ++j) {
                server::ListenerFds rest{std::move(fds[j])};
                server::close_listeners(rest);
            }
            workers_.clear();
            return false;
        }
    }
    return true;
}

void App::stop(const char* why) {
    if (stopping_) return;
    stopping_ = true;
    log::info("{}: shutting down", why);
    for (auto& w : workers_) w->post_stop();
    for (auto& w : workers_) w->join();
    if (admin_) admin_->close();
    if (hub_) {
        hub_->drain();  // the workers' final records
        hub_->close();
    }
    signals_->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&purge_), nullptr);
}

void App::reload() {
    if (stopping_) return;
    log::info("SIGHUP: reloading {}", cfg_->file.string());
    auto loaded = config::load_file(cfg_->file);
    if (auto* err = std::get_if<config::ConfigError>(&loaded)) {
        log::error("reload failed, keeping the running configuration: {}", err->to_string());
        return;
    }
    auto fresh = merge_reload(*cfg_, std::get<std::shared_ptr<const config::Config>>(loaded));
    cfg_ = fresh;
    log::set_level(parse_log_level(cfg_->log_level));
    auth_.set_limit(cfg_->auth_failures_per_minute);
    for (auto& w : workers_) w->post_config(cfg_);
    if (hub_) hub_->set_config(cfg_);
    if (admin_) admin_->set_token(cfg_->admin.token);
    apply_stream_limits();
    if (!cfg_->tls_listen.empty() || !cfg_->wss_listen.empty()) reload_tls(*cfg_);
    log::info("configuration reloaded");
}

// [streams]: the caps of every listener kind, fitted to the descriptor limit, and the admin
// server's own limits. New connections get the new values; open ones keep theirs.
void App::apply_stream_limits() {
    streams_.apply(*cfg_, fd_limit_);
    for (std::size_t k = 0; k < io::kStreamKinds; ++k) {
        const auto kind = static_cast<io::StreamKind>(k);
        const io::GateLimits want = io::gate_limits(cfg_->streams, kind);
        const io::GateLimits got = streams_.gate(kind).limits();
        if (got.max_connections < want.max_connections)
            log::warn("streams: {}_max_connections lowered to {} to fit {} file descriptors", io::to_string(kind),
                      got.max_connections, fd_limit_);
    }
    if (hub_) hub_->set_stream_stats(&streams_.stats());
    if (!admin_) return;
    admin::HttpLimits l;
    l.max_connections = cfg_->streams.admin.max_connections;
    l.reserved = cfg_->streams.admin_reserved_connections;
    l.guard = io::guard_limits(cfg_->streams, io::StreamKind::Admin);
    l.guard.handshake_ms = 0;  // plain HTTP
    admin_->set_limits(&streams_.gate(io::StreamKind::Admin), l);
}

void App::reload_tls(const config::Config& cfg) {
    auto loaded = io::load_tls_context(cfg.tls_cert, cfg.tls_key);
    if (auto* why = std::get_if<io::TlsError>(&loaded)) {
        log::error("TLS reload failed, new connections keep the old certificate: {}", why->to_string());
        return;
    }
    for (auto& w : workers_) w->post_tls(std::get<io::TlsContextPtr>(loaded));
    log::info("TLS certificate reloaded from {}", cfg.tls_cert.string());
}

}  // namespace turnbridge::app
