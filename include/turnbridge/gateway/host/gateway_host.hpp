// SPDX-License-Identifier: Apache-2.0
#pragma once
// Gateway mode's signaling I/O (issue 4). When any realm has gateway mode on, every worker hosts
// one GatewayHost on its loop (issue 12), each with its own listeners bound with SO_REUSEPORT
// (the kernel spreads connections and UDP sources over workers), its own SipRouter, media and
// timers. A SIP message is handled by the worker that owns its Call-ID (GatewayShared: the
// placement, the mailboxes); answers on another worker's flow are written by that worker:
//  - ws_listen (TCP) and wss_listen (TLS with the server's tls_cert/tls_key): WsConnection per
//    browser; GET / serves a placeholder page, GET /sip upgrades to SIP over WebSocket;
//  - sip_listen (UDP): trunk-side SIP, both the trunks' requests to us and ours to them (our
//    requests leave from this socket, so the trunk sees one address for us);
//  - sip_listen (TCP): trunks' connections to us; toward a TCP trunk we connect from an
//    ephemeral port and reuse that connection (RFC 3261 §18.1.1); toward a TLS trunk the same,
//    over TLS (SipTlsClient: SNI, certificate checked against trunk_ca or the system store);
//  - trunk host names: resolved by a TrunkResolver (c-ares: SRV, A/AAAA), kept fresh in the background;
//  - one uv_timer for every SIP timer (the router's next_wake()).
// Each flow gets a TransportId: a WebSocket, a SIP/TCP connection, or (UDP socket, remote
// address), the last kept in a bounded sip::UdpFlows (server.sip_udp_flows) that a datagram
// only adds to for good when something comes of it (issue 11). The SipRouter (sans-I/O) makes every SIP decision; each call's media is a
// gateway::CallMedia run by GatewayMedia (gateway_media.hpp) on the same loop, and every call
// leaves an accounting::CallRecord when it ends.
// Not yet: listeners and media ports re-bound on SIGHUP (a restart applies them); RFC 3263
// NAPTR/SRV for trunk host names (A/AAAA only).
#include <map>
#include <memory>
#include <unordered_map>
#include <uv.h>
#include <vector>

#include "turnbridge/accounting/record.hpp"
#include "turnbridge/admin/backend.hpp"
#include "turnbridge/config/config.hpp"
#include "turnbridge/io/heap_trim.hpp"
#include "turnbridge/io/stream_limits.hpp"
#include "turnbridge/gateway/host/agent_host.hpp"
#include "turnbridge/gateway/host/gateway_media.hpp"
#include "turnbridge/gateway/host/test_line_host.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/gateway/host/sip_tcp.hpp"
#include "turnbridge/io/tls_context.hpp"
#include "turnbridge/gateway/host/trunk_resolver.hpp"
#include "turnbridge/gateway/host/ws_connection.hpp"
#include "turnbridge/sip/udp_flows.hpp"

typedef struct ssl_ctx_st SSL_CTX;

namespace turnbridge::gateway::host {

class GatewayHost final : public WsOwner, public SipTcpOwner {
public:
    // Where each ended call's record goes (the accounting hub); may be empty.
    using CallSink = std::function<void(accounting::CallRecord)>;
    // `tls` gives the current TLS context for a new wss connection (nullptr: none loaded).
    // `exchange` brings relayed media from every worker's TURN allocations (null: direct only).
    // `worker`: this worker's index; `shared`: what the workers' gateways share (null: one worker).
    GatewayHost(uv_loop_t* loop, std::shared_ptr<const config::Config> cfg, const turn::NonceMinter& nonces,
                std::function<SSL_CTX*()> tls, server::MediaExchange* exchange, CallSink calls, unsigned worker = 0,
                gateway::GatewayShared* shared = nullptr);
    ~GatewayHost() override;

    // Connection caps and counters for ws/wss and SIP/TCP ([streams]); call before start().
    void set_streams(io::StreamGates* streams) { streams_ = streams; }
    // Binds every listener; throws std::runtime_error naming the address that failed.
    void start();
    void set_config(std::shared_ptr<const config::Config> cfg);
    // security.auth_failures_per_minute for the browsers' digest checks (SipRouter).
    void set_auth_throttle(AuthThrottle* auth);
    // Hangs up calls, closes every handle (the loop then finishes them).
    void close();
    // Issue 17: an outbound agent call from the admin API (POST /api/v1/calls), placed on this
    // worker; its progress goes to `reports` (null: nowhere), set before start().
    void dial(const gateway::AgentDial& d);
    void set_dial_reports(gateway::DialReports* reports) { dial_reports_ = reports; }
    // AI agent calls' counts (issue 17), for /metrics.
    AgentCounts agent_counts() const { return agents_ ? agents_->counts() : AgentCounts{}; }
    // Agents' transfers (issue 17), in admin::kAgentTransferResults order.
    std::array<std::uint64_t, 4> agent_transfers() const { return router_->agent_transfers(); }
    // Media datagrams from strangers dropped since start (for /metrics).
    GatewayMedia::Strangers media_strangers() const { return media_->strangers(); }

    void on_ws_opened(WsConnection& c) override;
    void on_ws_message(WsConnection& c, std::string_view sip) override;
    void on_ws_closed(WsConnection& c) override;
    void on_sip_tcp_message(SipTcpConnection& c, std::string_view sip) override;
    void on_sip_tcp_closed(SipTcpConnection& c) override;
    // How often each SIP bound bit, for /metrics.
    sip::LimitCounts limits() const;
    // The trunk targets' OPTIONS health (issue 14), as the admin API shows it.
    std::vector<admin::TrunkTargetStatus> trunk_health(sip::Time now) const;

private:
    struct Listener {
        GatewayHost* host = nullptr;
        uv_tcp_t tcp{};
        bool secure = false;
        bool sip = false;   // a sip_listen TCP socket (else ws/wss)
    };
    struct Udp {
        GatewayHost* host = nullptr;
        uv_udp_t udp{};
        Endpoint local;
    };

    void listen_tcp(const Endpoint& ep, bool secure, bool sip);
    void bind_udp(const Endpoint& ep);
    std::optional<sip::TransportId> udp_flow(const Endpoint& remote, Udp* via = nullptr);
    std::optional<sip::TransportId> tcp_flow(const Endpoint& trunk);
    std::optional<gateway::TrunkFlowInfo> trunk_flow(const config::Realm& realm, const Endpoint& to);
    std::optional<gateway::TrunkFlowInfo> tls_flow(const config::Realm& realm, const Endpoint& to);
    // One client SSL_CTX per (trunk_ca, trunk_tls_verify) of the TLS trunks; `strict`: throw on
    // a bad CA file (startup) instead of logging it (reload).
    void load_trunk_tls(bool strict);
    void warn_sdes_in_clear() const;
    std::vector<gateway::TrunkName> trunk_host_names() const;
    void on_trunk_resolved();
    void apply(std::vector<sip::Action>& out);
    void rearm();
    void sweep();
    void on_udp(Udp& u, const Endpoint& from, std::string_view bytes);
    // A message that reached this worker: screened here, handled here or by its Call-ID's worker.
    void deliver(const gateway::SipFlow& flow, std::string_view bytes, const Udp* via);
    void on_mail();   // gateway::GatewayShared mailbox: other workers' messages, sends and closed flows
    void send_local(sip::Send& s);
    void flow_closed(sip::TransportId id);
    bool flow_busy(const sip::UdpFlows::Flow& f) const;
    void call_ended(const gateway::CallSummary& s, sip::MediaSdp* media);
    void record(const gateway::CallSummary& s, const GatewayMedia::Summary& m);   // the call record

    uv_loop_t* loop_;
    unsigned worker_ = 0;
    gateway::GatewayShared* shared_ = nullptr;
    uv_async_t mail_{};
    std::vector<gateway::SipMail> mail_in_;
    std::shared_ptr<const config::Config> cfg_;
    std::function<SSL_CTX*()> tls_;
    CallSink calls_;
    io::StreamGates* streams_ = nullptr;
    io::HeapTrim trim_;   // after many ws/SIP connections closed (an attack's buffers)
    uv_timer_t trim_timer_{};
    void connection_gone();
    std::unique_ptr<GatewayMedia> media_;   // before router_: the router's calls hold its media
    std::unique_ptr<gateway::SipRouter> router_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::vector<std::unique_ptr<Udp>> udp_;
    uv_timer_t timer_{};
    uv_timer_t sweep_{};   // [streams] timeouts of ws/wss and SIP/TCP connections, trunk connects
    bool timer_open_ = false;
    bool closed_ = false;
    std::uint64_t next_id_ = 1;
    std::unordered_map<sip::TransportId, WsConnection*> ws_;
    sip::UdpFlows udp_flows_;
    std::unordered_map<sip::TransportId, SipTcpConnection*> tcp_;
    std::unordered_map<Endpoint, sip::TransportId> tcp_out_;   // our connections toward TCP trunks
    std::map<std::string, sip::TransportId> tls_out_;          // ... toward TLS trunks, by tls_key()
    std::map<std::pair<std::string, bool>, io::TlsContextPtr> trunk_tls_;   // (trunk_ca, verify) -> context
    std::unique_ptr<TrunkResolver> resolver_;
    std::unique_ptr<TestLineHost> test_line_;   // when a realm has gateway.test_numbers
    void start_test_line();
    std::unique_ptr<AgentHost> agents_;   // AI agent calls (issue 17)
    gateway::DialReports* dial_reports_ = nullptr;
    void start_agents();
    char udp_buf_[64 * 1024];
};

}  // namespace turnbridge::gateway::host
