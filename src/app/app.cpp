// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/app/app.hpp"

#include <algorithm>
#include <chrono>
#include <latch>
#include <stdexcept>
#include <thread>
#include <unistd.h>

#include <fmt/ranges.h>

#include "turnbridge/accounting/store.hpp"
#include "turnbridge/base/log.hpp"
#include "turnbridge/app/config_reload.hpp"
#include "turnbridge/app/privileges.hpp"
#include "turnbridge/server/listener_sockets.hpp"

namespace turnbridge::app {
namespace {

constexpr std::uint64_t kPurgeMs = 5000;  // reservations live 30 s; a few seconds late is fine
// STATUS= every this often, or a third of WatchdogSec= if shorter (but above the workers' 1 s tick).
constexpr std::uint64_t kStatusMs = 10000;
constexpr std::uint64_t kMinWatchdogCheckMs = 1500;

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
    log::set_format(cfg_->log_format == "json" ? log::Format::Json : log::Format::Text);
    if (const std::string why = check_identity(*cfg_, geteuid()); !why.empty()) {
        log::error("{}", why);
        return 1;
    }
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
    // Everything that needs root (ports below 1024, a root-only key file) is done before the drop.
    if (!open_accounting(count) || !start_workers(count, std::move(tls)) || !start_admin() || !switch_user()) {
        admin_.reset();
        workers_.clear();
        if (hub_) hub_->close();
        uv_run(&loop_, UV_RUN_DEFAULT);
        uv_loop_close(&loop_);
        return 1;
    }
    apply_stream_limits();  // before any listener accepts: the workers start below

    signals_.emplace(&loop_, [this](const char* why) { stop(why); }, [this] { reload(); }, [this] { drain(); });
    uv_timer_init(&loop_, &purge_);
    purge_.data = this;
    uv_timer_start(&purge_, [](uv_timer_t* t) { static_cast<App*>(t->data)->relays_.purge(); }, kPurgeMs, kPurgeMs);

    std::latch up(static_cast<std::ptrdiff_t>(workers_.size()));
    for (auto& w : workers_) w->start(up);
    up.wait();
    for (const auto& [name, realm] : cfg_->realms) {
        if (!realm.gateway.enabled) continue;
        if (realm.trunks.size() <= 1) log::info("realm {}: gateway mode, trunk {}", name, realm.gateway.trunk.uri);
        else   // issue 14: [[gateway.trunks]]
            for (const auto& t : realm.trunks)
                log::info("realm {}: gateway mode, trunk {} {}{}{}", name, t.gateway.trunk_name, t.gateway.trunk.uri,
                          t.gateway.prefixes.empty() ? "" : " for ", fmt::join(t.gateway.prefixes, " "));
    }
    log::info("ready: {} worker{}", count, count == 1 ? "" : "s");
    notify_.send("READY=1\nSTATUS=" + status_line());
    start_notify_timer();

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
            accounting::StoreOptions options;
            if (cfg_->fleet.enabled()) options.outbox_max_rows = cfg_->fleet.spool_max_rows;
            store = accounting::Store::open(cfg_->accounting.database, true, options);
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
    if (cfg_->fleet.enabled()) start_fleet();
    if (cfg_->accounting.enabled)
        log::info("accounting to {} every {} s", cfg_->accounting.database.string(),
                  cfg_->accounting.flush_interval.count());
    else
        log::warn("accounting is off ([accounting] enabled = false): nothing relayed is recorded");
    return true;
}

// [fleet]: the outbox goes to PostgreSQL from the shipper's thread; the control loop only tells
// it, every second, how many allocations are live (for the registry's heartbeat row).
void App::start_fleet() {
    accounting::NodeHeartbeat beat;
    beat.node = cfg_->fleet.node_id;
    beat.region = cfg_->fleet.region;
    beat.boot = instance_ms_;
    for (const auto& ep : cfg_->listen) beat.listen += (beat.listen.empty() ? "" : ",") + ep.to_string();
    for (const auto& ip : cfg_->relay_ips) beat.relay += (beat.relay.empty() ? "" : ",") + ip.to_string();
    if (cfg_->any_gateway() && !cfg_->sip_listen.empty()) beat.sip = cfg_->sip_listen.front().to_string();
    fleet_ = std::make_unique<FleetShipper>(cfg_->fleet, cfg_->accounting.database, std::move(beat));
    fleet_->start();
    hub_->set_fleet(fleet_.get());
    // Byte quotas become fleet-wide: leases from PostgreSQL on a thread of their own.
    leases_ = std::make_unique<FleetLeases>(cfg_, instance_ms_);
    leases_->start();
    hub_->set_leases(leases_.get());
    uv_timer_init(&loop_, &fleet_timer_);
    fleet_timer_.data = this;
    uv_timer_start(&fleet_timer_, [](uv_timer_t* t) { static_cast<App*>(t->data)->on_drain_timer(); }, 1000, 1000);
    hub_->set_drainer([this] { return drain(); });
    log::info("fleet: node {} (region \"{}\"), ledger in PostgreSQL, outbox up to {} rows", cfg_->fleet.node_id,
              cfg_->fleet.region, cfg_->fleet.spool_max_rows);
}

bool App::drain() {
    if (!fleet_) {
        log::warn("drain: needs [fleet] (there is no other node to send clients to); ignored");
        return false;
    }
    if (draining_ || stopping_) return true;
    draining_ = true;
    drain_deadline_ = std::chrono::steady_clock::now() + cfg_->fleet.drain_timeout;
    fleet_->set_draining();
    fleet_->wake();
    log::info("drain: new allocations go to another node of region \"{}\"; stopping when the {} live one{} end "
              "(at most {} s)",
              cfg_->fleet.region, hub_->live().size(), hub_->live().size() == 1 ? "" : "s",
              cfg_->fleet.drain_timeout.count());
    return true;
}

// Every second: the live allocations for the heartbeat row, and the end of a drain.
void App::on_drain_timer() {
    const std::size_t live = hub_->live().size();
    fleet_->set_live(live);
    if (!draining_ || stopping_) return;
    if (live == 0) return stop("drain: the last allocation ended");
    if (std::chrono::steady_clock::now() >= drain_deadline_) stop("drain: fleet.drain_timeout");
}

// [server] user: started as root, become that user for good (app/privileges.hpp). The database
// was created as root: it goes to the user first, so that the store keeps writing.
bool App::switch_user() {
    if (cfg_->user.empty() || geteuid() != 0) return true;
    const AccountLookup found = resolve_account(*cfg_);
    if (!found.account) {
        log::error("{}", found.error);
        return false;
    }
    std::vector<std::filesystem::path> own;
    if (cfg_->accounting.enabled) {
        const auto& db = cfg_->accounting.database;
        own = {db, db.string() + "-wal", db.string() + "-shm"};
    }
    if (const std::string why = drop_privileges(*found.account, own); !why.empty()) {
        log::error("{}", why);
        return false;
    }
    log::info("running as user {} (uid {}), group {} (gid {})", found.account->user, found.account->uid,
              found.account->group, found.account->gid);
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
        if (hub_) hub_->set_gateway_shared(gateway_.get());
        if (fleet_) fleet_->locations().attach(gateway_.get());   // issue 15: SIP location across nodes
        outbound_ = std::make_unique<OutboundCalls>(cfg_, count, [this](unsigned w, const gateway::AgentDial& d) {
            return w < workers_.size() && workers_[w]->post_dial(d);
        });
        if (hub_) hub_->set_outbound(outbound_.get());
    }
    const server::ProcessShared shared{&nonces_, &quota_, &relays_, cfg_->accounting.enabled ? hub_.get() : nullptr,
                               instance_ms_, media_.get(), gateway_.get(), &auth_, &streams_, outbound_.get()};
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
    notify_.send("STOPPING=1\nSTATUS=shutting down");
    if (notify_.enabled()) uv_close(reinterpret_cast<uv_handle_t*>(&notify_timer_), nullptr);
    for (auto& w : workers_) w->post_stop();
    for (auto& w : workers_) w->join();
    if (admin_) admin_->close();
    if (hub_) {
        hub_->drain();  // the workers' final records
        hub_->close();
    }
    if (leases_) leases_->stop(std::chrono::seconds(2));  // returns the leases the workers no longer use
    if (fleet_) {
        uv_close(reinterpret_cast<uv_handle_t*>(&fleet_timer_), nullptr);
        fleet_->stop(std::chrono::seconds(3));  // ships the final records, unless PostgreSQL is away
    }
    signals_->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&purge_), nullptr);
}

void App::reload() {
    if (stopping_) return;
    log::info("SIGHUP: reloading {}", cfg_->file.string());
    notify_.send("RELOADING=1");
    auto loaded = config::load_file(cfg_->file);
    if (auto* err = std::get_if<config::ConfigError>(&loaded)) {
        log::error("reload failed, keeping the running configuration: {}", err->to_string());
        notify_.send("READY=1\nSTATUS=reload failed, running the previous configuration");
        return;
    }
    auto fresh = merge_reload(*cfg_, std::get<std::shared_ptr<const config::Config>>(loaded));
    cfg_ = fresh;
    log::set_level(parse_log_level(cfg_->log_level));
    log::set_format(cfg_->log_format == "json" ? log::Format::Json : log::Format::Text);
    auth_.set_limit(cfg_->auth_failures_per_minute);
    for (auto& w : workers_) w->post_config(cfg_);
    if (hub_) hub_->set_config(cfg_);
    if (outbound_) outbound_->set_config(cfg_);
    if (admin_) admin_->set_token(cfg_->admin.token);
    apply_stream_limits();
    if (!cfg_->tls_listen.empty() || !cfg_->wss_listen.empty()) reload_tls(*cfg_);
    log::info("configuration reloaded");
    notify_.send("READY=1\nSTATUS=" + status_line());
}

void App::start_notify_timer() {
    if (!notify_.enabled()) return;
    std::uint64_t period = kStatusMs;
    if (notify_.watchdog().count() > 0) {
        const auto third = static_cast<std::uint64_t>(notify_.watchdog().count() / 3000);
        period = std::max(kMinWatchdogCheckMs, std::min(period, third));
        log::info("systemd watchdog: {} ms, checked every {} ms", notify_.watchdog().count() / 1000, period);
    }
    worker_ticks_.assign(workers_.size(), 0);
    for (std::size_t i = 0; i < workers_.size(); ++i) worker_ticks_[i] = workers_[i]->ticks();
    uv_timer_init(&loop_, &notify_timer_);
    notify_timer_.data = this;
    uv_timer_start(&notify_timer_, [](uv_timer_t* t) { static_cast<App*>(t->data)->on_notify_timer(); }, period, period);
}

// sd_watchdog_enabled(3): WATCHDOG=1 only while this loop and every worker's loop turn; a
// stuck worker makes systemd restart the service after WatchdogSec=.
void App::on_notify_timer() {
    std::string state = "STATUS=" + status_line();
    bool alive = true;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        const std::uint64_t now = workers_[i]->ticks();
        if (now == worker_ticks_[i]) {
            alive = false;
            log::warn("worker {}: its loop has not ticked for a while; no watchdog ping", i);
        }
        worker_ticks_[i] = now;
    }
    if (alive && notify_.watchdog().count() > 0) state += "\nWATCHDOG=1";
    notify_.send(state);
}

std::string App::status_line() {
    const std::size_t allocations = cfg_->accounting.enabled && hub_ ? hub_->live().size() : 0;
    std::uint64_t calls = 0;
    if (gateway_)
        for (unsigned w = 0; w < gateway_->workers(); ++w) calls += gateway_->load(w);
    std::string line = fmt::format("{} allocation{}", allocations, allocations == 1 ? "" : "s");
    if (gateway_) line += fmt::format(", {} call{}", calls, calls == 1 ? "" : "s");
    return line + fmt::format(", {} worker{}", workers_.size(), workers_.size() == 1 ? "" : "s");
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
