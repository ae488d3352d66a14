// SPDX-License-Identifier: Apache-2.0
#pragma once
// The serving process: binds the listeners, starts the workers, then runs the control loop on
// the main thread (signals: stop and reload; expiry of relay port reservations).
#include <memory>
#include <optional>
#include <uv.h>
#include <vector>

#include "turnbridge/admin/http_server.hpp"
#include "turnbridge/base/auth_throttle.hpp"
#include "turnbridge/config/config.hpp"
#include "turnbridge/io/stream_limits.hpp"
#include "turnbridge/app/accounting_hub.hpp"
#include "turnbridge/app/fleet_leases.hpp"
#include "turnbridge/app/fleet_shipper.hpp"
#include "turnbridge/app/outbound_calls.hpp"
#include "turnbridge/app/systemd_notify.hpp"
#include "turnbridge/gateway/gateway_shared.hpp"
#include "turnbridge/server/media_exchange.hpp"
#include "turnbridge/server/relay_registry.hpp"
#include "turnbridge/io/signals.hpp"
#include "turnbridge/io/tls_context.hpp"
#include "turnbridge/server/worker.hpp"
#include "turnbridge/turn/nonce.hpp"
#include "turnbridge/turn/quota.hpp"

namespace turnbridge::app {

class App {
public:
    explicit App(std::shared_ptr<const config::Config> cfg);
    ~App();
    App(const App&) = delete;
    App& operator=(const App&) = delete;

    // Serves until SIGTERM/SIGINT. Returns the exit status: 0 after a clean stop, 1 when
    // startup failed (the reason has been logged).
    int run();

private:
    bool start_workers(unsigned count, io::TlsContextPtr tls);
    bool open_accounting(unsigned workers);
    bool start_admin();
    bool switch_user();
    void stop(const char* why);
    void reload();
    void reload_tls(const config::Config& cfg);
    void apply_stream_limits();
    // systemd (Type=notify): STATUS= now, and WATCHDOG=1 when every worker loop has ticked
    // since the last call.
    void start_notify_timer();
    void on_notify_timer();
    std::string status_line();
    // [fleet] (issue 15): the shipper and its 1 s timer that tells it the live allocations.
    void start_fleet();
    // Drain (SIGUSR1, POST /api/v1/drain; issue 15): new Allocates go elsewhere (300), /readyz
    // says 503, and the process stops (exit 0) once no allocation is live, or after
    // fleet.drain_timeout. False without [fleet].
    bool drain();
    void on_drain_timer();

    std::shared_ptr<const config::Config> cfg_;
    turn::NonceMinter nonces_;
    turn::QuotaTracker quota_;
    AuthThrottle auth_;  // failed TURN, SIP digest and admin authentications, for every thread
    server::RelayRegistry relays_;
    std::int64_t instance_ms_ = 0;
    io::StreamGates streams_;  // before everything that holds connections: their tickets point here
    std::uint64_t fd_limit_ = 0;
    std::unique_ptr<AccountingHub> hub_;  // before workers_: they post to it until they stop
    std::unique_ptr<server::MediaExchange> media_;  // gateway mode: relayed media between workers' allocations and calls
    std::unique_ptr<gateway::GatewayShared> gateway_;  // gateway mode: what the workers' gateways share
    std::unique_ptr<OutboundCalls> outbound_;  // gateway mode: POST /api/v1/calls (issue 17); workers report to it
    std::vector<std::unique_ptr<server::Worker>> workers_;
    std::unique_ptr<admin::HttpServer> admin_;  // on the control loop; talks to hub_
    uv_loop_t loop_{};
    std::optional<io::Signals> signals_;
    uv_timer_t purge_{};
    SystemdNotify notify_ = SystemdNotify::from_environment();
    uv_timer_t notify_timer_{};
    std::vector<std::uint64_t> worker_ticks_;  // each worker's ticks() at the last watchdog check
    bool stopping_ = false;
    std::unique_ptr<FleetShipper> fleet_;  // [fleet] only
    std::unique_ptr<FleetLeases> leases_;  // [fleet] only: fleet-wide byte quotas
    uv_timer_t fleet_timer_{};
    std::chrono::steady_clock::time_point drain_deadline_{};
    bool draining_ = false;
};

// The workers to run for `threads` (0 = one per CPU).
unsigned worker_count(unsigned threads);

}  // namespace turnbridge::app
