// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/host/gateway_host.hpp"

#include "turnbridge/gateway/agent_port.hpp"

#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/random.hpp"
#include "turnbridge/gateway/trunk_choice.hpp"
#include "turnbridge/io/loop_clock.hpp"
#include "turnbridge/gateway/host/sip_tls.hpp"
#include "turnbridge/io/socket_util.hpp"
#include "turnbridge/io/udp_send.hpp"

namespace turnbridge::gateway::host {
namespace {

// A UDP flow nothing uses is forgotten after this long without a datagram (the trunk's, a
// call's and a transaction's flows stay: GatewayHost::flow_busy).
constexpr auto kUdpFlowIdle = std::chrono::seconds(60);
// Timeouts of ws/wss and SIP/TCP connections are [streams] keys (io::StreamGuard), checked here.
constexpr std::uint64_t kSweepMs = 1'000;
// A connection toward a TCP/TLS trunk that is not up (handshake included) by then is closed,
// which fails its queued requests as 503 (the kernel would retry SYNs for minutes).
constexpr std::uint64_t kTrunkConnectTimeoutMs = 10'000;

// `realm`: one trunk of a realm (gateway/trunk_choice.hpp).
std::string trunk_ca_key(const config::Realm& realm) {
    if (realm.gateway.trunk_table.empty()) return fmt::format("realm.\"{}\".gateway.trunk_ca", realm.name);
    return realm.gateway.trunk_table + ".trunk_ca";
}

std::uint64_t random_u64() { return gateway::random_value<std::uint64_t>(gateway::random_bytes); }

[[noreturn]] void cannot(std::string_view what, const Endpoint& ep, int err) {
    throw std::runtime_error(fmt::format("gateway: cannot listen on {} {}: {}", what, ep.to_string(), io::error_text(err)));
}

}  // namespace

GatewayHost::GatewayHost(uv_loop_t* loop, std::shared_ptr<const config::Config> cfg, const turn::NonceMinter& nonces,
                         std::function<SSL_CTX*()> tls, server::MediaExchange* exchange, CallSink calls, unsigned worker,
                         gateway::GatewayShared* shared)
    : loop_(loop), worker_(worker), shared_(shared), cfg_(std::move(cfg)), tls_(std::move(tls)), calls_(std::move(calls)),
      next_id_(gateway::flow_id(worker, 1)), udp_flows_(cfg_->sip_udp_flows) {
    media_ = std::make_unique<GatewayMedia>(loop_, *cfg_, exchange, worker_, [this](const sip::MediaSdp* m, const std::string& why) {
        if (closed_) return;
        std::vector<sip::Action> out;
        router_->hang_up(io::read_clock().mono, m, why, out);
        apply(out);
    });
    gateway::SipLocal local;
    if (!cfg_->sip_listen.empty()) local.sent_by = cfg_->sip_listen.front().to_string();
    if (!cfg_->ws_listen.empty()) local.ws_host = cfg_->ws_listen.front().to_string();
    else if (!cfg_->wss_listen.empty()) local.ws_host = cfg_->wss_listen.front().to_string();
    else local.ws_host = "turnbridge.invalid";
    router_ = std::make_unique<gateway::SipRouter>(
        cfg_, nonces, std::move(local), [this](const config::Realm& realm, bool) { return media_->create(realm); },
        [this](const config::Realm& realm, const Endpoint& to) { return trunk_flow(realm, to); },
        [] { return random_u64(); });
    router_->on_call_ended([this](const gateway::CallSummary& s, sip::MediaSdp* media) { call_ended(s, media); });
    // Our REGISTERs toward trunks leave from worker 0 only.
    router_->set_shared(shared_, worker_, worker_ == 0);
    // Issue 15: trunk INVITEs for browsers registered on other nodes are proxied there over UDP.
    if (cfg_->fleet.enabled() && !cfg_->sip_listen.empty())
        router_->set_fleet(&shared_->fleet(), cfg_->sip_listen.front().to_string(),
                           [this](const Endpoint& to) { return udp_flow(to); });
}

GatewayHost::~GatewayHost() = default;

void GatewayHost::start() {
    media_->start();
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    uv_timer_init(loop_, &sweep_);
    sweep_.data = this;
    uv_timer_init(loop_, &trim_timer_);
    trim_timer_.data = this;
    timer_open_ = true;
    if (shared_ != nullptr) {
        uv_async_init(loop_, &mail_, [](uv_async_t* a) { static_cast<GatewayHost*>(a->data)->on_mail(); });
        mail_.data = this;
        shared_->attach(worker_, [this] { uv_async_send(&mail_); });
    }
    uv_timer_start(&sweep_, [](uv_timer_t* t) { static_cast<GatewayHost*>(t->data)->sweep(); }, kSweepMs, kSweepMs);
    load_trunk_tls(true);
    resolver_ = std::make_unique<TrunkResolver>(loop_, cfg_->dns_servers, [this] { on_trunk_resolved(); });
    router_->set_trunk_hosts(&resolver_->hosts());
    for (const auto& ep : cfg_->ws_listen) listen_tcp(ep, false, false);
    for (const auto& ep : cfg_->wss_listen) listen_tcp(ep, true, false);
    for (const auto& ep : cfg_->sip_listen) {
        bind_udp(ep);
        listen_tcp(ep, false, true);
    }
    start_test_line();
    start_agents();
    if (worker_ != 0) {
        log::debug("gateway: worker {} listens too", worker_);
    } else {
    for (const auto& ep : cfg_->ws_listen) log::info("gateway: SIP over WebSocket on ws://{}/sip", ep.to_string());
    for (const auto& ep : cfg_->wss_listen) log::info("gateway: SIP over WebSocket on wss://{}/sip", ep.to_string());
    for (const auto& ep : cfg_->sip_listen) log::info("gateway: SIP on udp and tcp {}", ep.to_string());
    warn_sdes_in_clear();
    }
    // Names are looked up before the router starts, so registrations to named trunks wait for them.
    resolver_->set_names(trunk_host_names());
    std::vector<sip::Action> out;
    router_->start(io::read_clock().mono, out);
    apply(out);
}

// RFC 4568 §8.3: SDES keys travel in the SDP, so anyone who reads the signalling can decrypt
// the media; only a TLS trunk keeps them secret. Said once, at start (worker 0).
void GatewayHost::warn_sdes_in_clear() const {
    for (const auto& [name, realm] : cfg_->realms)
        for (const auto& trunk : gateway::trunks_of(realm)) {   // srtp is per trunk (issue 14)
            const auto& gw = trunk.gateway;
            if (gw.enabled && gw.srtp != config::Gateway::Srtp::Off && gw.trunk.transport != config::SipTrunk::Transport::Tls)
                log::warn("realm {}: srtp is on but trunk {} ({}) is not TLS: its SDES keys (a=crypto) cross the network "
                          "in clear SIP, and anyone who sees the signalling can decrypt the media", name, gw.trunk_name,
                          gw.trunk.uri);
        }
}

void GatewayHost::start_test_line() {
    const auto& realms = cfg_->realms;
    if (std::none_of(realms.begin(), realms.end(), [](const auto& r) { return r.second.gateway.enabled && r.second.gateway.test_numbers; }))
        return;
    // On loopback, of the family our trunk requests leave from (the first sip_listen address).
    const bool v6 = !cfg_->sip_listen.empty() && cfg_->sip_listen.front().ip.family == Family::V6;
    test_line_ = std::make_unique<TestLineHost>(loop_);
    test_line_->start(*IpAddress::parse(v6 ? "::1" : "127.0.0.1"), cfg_->sip_listen);
    router_->set_test_line(test_line_->sip_address(), [this](const Endpoint& to) { return udp_flow(to); });
    if (worker_ == 0) log::info("gateway: test numbers echo, 9196, tone and dtmf answered by the built-in test line");
}

// Issue 17: AI agent calls. Their RTP sockets are on media_ip (else the first sip_listen
// address, else loopback).
void GatewayHost::start_agents() {
    IpAddress ip = *IpAddress::parse("127.0.0.1");
    if (cfg_->media_ip) ip = *cfg_->media_ip;
    else if (!cfg_->sip_listen.empty() && !cfg_->sip_listen.front().ip.is_unspecified()) ip = cfg_->sip_listen.front().ip;
    agents_ = std::make_unique<AgentHost>(
        loop_, ip,
        [this](const std::string& key, const std::string& sdp) {
            std::vector<sip::Action> out;
            router_->agent_answered(io::read_clock().mono, key, sdp, out);
            apply(out);
        },
        [this](const std::string& key, const std::string& why) {
            std::vector<sip::Action> out;
            router_->agent_failed(io::read_clock().mono, key, why, out);
            apply(out);
        },
        [this](const gateway::CallSummary& s, const gateway::AgentLegStats& leg) {
            GatewayMedia::Summary m;
            m.codecs = gateway::agent_codecs(gateway::to_string(leg.codec), leg.format);   // "PCMU/agent"
            m.stats.trunk_in = {leg.in_packets, leg.in_bytes};
            m.stats.trunk_out = {leg.out_packets, leg.out_bytes};
            record(s, m);
        });
    agents_->on_transfer([this](const std::string& key, const std::string& to) {
        std::vector<sip::Action> out;
        router_->agent_transfer(io::read_clock().mono, key, to, out);
        apply(out);
    });
    agents_->set_dns_servers(cfg_->dns_servers);
    router_->set_agents(agents_.get());
    router_->on_dial_update([this](const gateway::DialUpdate& u) {
        if (dial_reports_ != nullptr) dial_reports_->on_dial_update(u);
    });
}

void GatewayHost::dial(const gateway::AgentDial& d) {
    if (closed_) {
        if (dial_reports_ != nullptr)
            dial_reports_->on_dial_update({d.id, gateway::DialUpdate::State::Failed, 503, "", "shutting down"});
        return;
    }
    std::vector<sip::Action> out;
    router_->dial_agent(io::read_clock().mono, d, out);
    apply(out);
}

void GatewayHost::set_auth_throttle(AuthThrottle* auth) { router_->set_auth_throttle(auth); }

void GatewayHost::set_config(std::shared_ptr<const config::Config> cfg) {
    cfg_ = cfg;
    udp_flows_.set_capacity(cfg_->sip_udp_flows);
    load_trunk_tls(false);
    if (resolver_) resolver_->set_names(trunk_host_names());
    router_->set_config(std::move(cfg));
}

std::vector<gateway::TrunkName> GatewayHost::trunk_host_names() const {
    using T = config::SipTrunk::Transport;
    std::vector<gateway::TrunkName> names;
    for (const auto& [name, base] : cfg_->realms)
    for (const auto& realm : gateway::trunks_of(base)) {   // every trunk's name (issue 14)
        if (!realm.gateway.enabled) continue;
        const auto& t = realm.gateway.trunk;
        // RFC 3263 §4.2: an explicit port means A/AAAA only; otherwise SRV for the transport.
        const std::string service = t.has_port            ? ""
                                    : t.transport == T::Tls ? "_sips._tcp"
                                    : t.transport == T::Tcp ? "_sip._tcp"
                                                            : "_sip._udp";
        names.push_back({t.host, service, t.port});
    }
    return names;
}

void GatewayHost::on_trunk_resolved() {
    if (closed_) return;
    std::vector<sip::Action> out;
    router_->on_trunk_resolved(io::read_clock().mono, out);
    apply(out);
}

void GatewayHost::load_trunk_tls(bool strict) {
    std::map<std::pair<std::string, bool>, io::TlsContextPtr> contexts;
    for (const auto& [name, base] : cfg_->realms)
    for (const auto& realm : gateway::trunks_of(base)) {   // per trunk (issue 14)
        const auto& gw = realm.gateway;
        if (!gw.enabled || gw.trunk.transport != config::SipTrunk::Transport::Tls) continue;
        std::pair<std::string, bool> key{gw.trunk_ca.string(), gw.trunk_tls_verify};
        if (contexts.contains(key)) continue;
        auto loaded = load_trunk_tls_context(gw.trunk_ca, gw.trunk_tls_verify, trunk_ca_key(realm));
        if (auto* e = std::get_if<io::TlsError>(&loaded)) {
            if (strict) throw std::runtime_error(e->to_string());
            log::error("{} (calls to trunk {} will fail)", e->to_string(), gw.trunk.uri);
            continue;
        }
        if (!gw.trunk_tls_verify) log::warn("realm {}: trunk_tls_verify = false: trunk {} is not authenticated", name, gw.trunk.uri);
        contexts.emplace(std::move(key), std::get<io::TlsContextPtr>(std::move(loaded)));
    }
    trunk_tls_ = std::move(contexts);
}

void GatewayHost::listen_tcp(const Endpoint& ep, bool secure, bool sip) {
    if (secure && tls_() == nullptr) throw std::runtime_error("gateway: wss_listen needs tls_cert and tls_key");
    // Every worker binds the same addresses: SO_REUSEPORT spreads the connections.
    const int fd = io::open_bound_socket(io::SocketKind::Tcp, ep, io::SocketOptions{shared_ != nullptr && shared_->workers() > 1});
    const char* what = sip ? "sip tcp" : secure ? "wss" : "ws";
    if (fd < 0) cannot(what, ep, fd);
    auto l = std::make_unique<Listener>();
    l->host = this;
    l->secure = secure;
    l->sip = sip;
    uv_tcp_init(loop_, &l->tcp);
    l->tcp.data = l.get();
    Listener* raw = l.get();
    listeners_.push_back(std::move(l));
    if (int err = uv_tcp_open(&raw->tcp, fd); err != 0) {
        ::close(fd);
        cannot(what, ep, err);
    }
    const int err = uv_listen(reinterpret_cast<uv_stream_t*>(&raw->tcp), 128, [](uv_stream_t* s, int status) {
        auto* l = static_cast<Listener*>(s->data);
        if (status < 0 || l->host->closed_) return;
        GatewayHost& h = *l->host;
        const auto& limits = h.cfg_->streams;
        io::StreamGates* gates = h.streams_;
        if (l->sip) {
            const auto id = h.next_id_++;
            io::ConnectionGate* gate = gates ? &gates->gate(io::StreamKind::Sip) : nullptr;
            if (auto* c = SipTcpConnection::accept(h.loop_, s, h, id, gate, io::guard_limits(limits, io::StreamKind::Sip)))
                h.tcp_.emplace(id, c);
            return;
        }
        SSL_CTX* ctx = nullptr;
        if (l->secure && (ctx = h.tls_()) == nullptr) return;
        const WsLimits ws{gates ? &gates->gate(io::StreamKind::WebSocket) : nullptr,
                          io::guard_limits(limits, io::StreamKind::WebSocket), limits.ws_max_message, limits.ws_max_fragments};
        WsConnection::accept(h.loop_, s, ctx, h, h.next_id_++, ws);
    });
    if (err != 0) cannot(what, ep, err);
}

void GatewayHost::bind_udp(const Endpoint& ep) {
    // ... and the UDP sources (by 4-tuple: one source always reaches the same worker).
    const int fd = io::open_bound_socket(io::SocketKind::Udp, ep, io::SocketOptions{shared_ != nullptr && shared_->workers() > 1});
    if (fd < 0) cannot("sip udp", ep, fd);
    auto u = std::make_unique<Udp>();
    u->host = this;
    u->local = ep;
    uv_udp_init(loop_, &u->udp);
    u->udp.data = u.get();
    Udp* raw = u.get();
    udp_.push_back(std::move(u));
    if (int err = uv_udp_open(&raw->udp, fd); err != 0) {
        ::close(fd);
        cannot("sip udp", ep, err);
    }
    io::clear_reuse_addr(fd);
    const int err = uv_udp_recv_start(
        &raw->udp,
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
            auto* u = static_cast<Udp*>(h->data);
            *buf = uv_buf_init(u->host->udp_buf_, sizeof u->host->udp_buf_);
        },
        [](uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned flags) {
            auto* u = static_cast<Udp*>(h->data);
            if (addr == nullptr || nread <= 0 || (flags & UV_UDP_PARTIAL) != 0 || u->host->closed_) return;
            if (auto from = Endpoint::from_sockaddr(addr))
                u->host->on_udp(*u, *from, std::string_view(buf->base, static_cast<std::size_t>(nread)));
        });
    if (err != 0) cannot("sip udp", ep, err);
}

bool GatewayHost::flow_busy(const sip::UdpFlows::Flow& f) const {
    return router_->is_trunk(f.remote.ip) || router_->uses_flow(f.id);
}

std::vector<admin::TrunkTargetStatus> GatewayHost::trunk_health(sip::Time now) const {
    std::vector<admin::TrunkTargetStatus> out;
    for (const auto& t : router_->trunk_health()) {
        admin::TrunkTargetStatus s{t.realm, t.trunk, t.to.to_string(), t.up, t.misses, t.last_status};
        if (t.last_response) s.last_response_age = std::chrono::duration<double>(now - *t.last_response).count();
        if (t.rtt) s.rtt_ms = static_cast<double>(t.rtt->count());
        out.push_back(std::move(s));
    }
    return out;
}

sip::LimitCounts GatewayHost::limits() const {
    auto c = router_->limits();
    c[static_cast<std::size_t>(sip::Limit::UdpFlowEvicted)] += udp_flows_.evicted();
    c[static_cast<std::size_t>(sip::Limit::UdpFlowFull)] += udp_flows_.refused();
    return c;
}

std::optional<sip::TransportId> GatewayHost::udp_flow(const Endpoint& remote, Udp* via) {
    if (udp_.empty()) return std::nullopt;
    if (via == nullptr) {
        // Our requests leave from a sip_listen socket of the trunk's address family.
        for (auto& u : udp_)
            if (u->local.ip.family == remote.ip.family) {
                via = u.get();
                break;
            }
        if (via == nullptr) return std::nullopt;
    }
    std::uint32_t socket = 0;
    while (udp_[socket].get() != via) ++socket;
    // An existing flow is found (and marked used) whatever `via` is.
    auto opened = udp_flows_.open(io::read_clock().mono, remote, socket, next_id_,
                                  [this](const sip::UdpFlows::Flow& f) { return flow_busy(f); });
    if (!opened) return std::nullopt;
    if (opened->created) ++next_id_;
    return opened->id;
}

std::optional<gateway::TrunkFlowInfo> GatewayHost::trunk_flow(const config::Realm& realm, const Endpoint& to) {
    std::optional<sip::TransportId> id;
    switch (realm.gateway.trunk.transport) {
        case config::SipTrunk::Transport::Udp: id = udp_flow(to); break;
        case config::SipTrunk::Transport::Tcp: id = tcp_flow(to); break;
        case config::SipTrunk::Transport::Tls: return tls_flow(realm, to);
    }
    if (!id) return std::nullopt;
    return gateway::TrunkFlowInfo{*id, std::nullopt};
}

std::optional<gateway::TrunkFlowInfo> GatewayHost::tls_flow(const config::Realm& realm, const Endpoint& to) {
    const auto& gw = realm.gateway;
    // One connection per trunk identity: the address, the name its certificate must carry, and
    // what it is checked against (two realms may trust the same address differently).
    const std::string key = fmt::format("{}|{}|{}|{}", to.to_string(), gw.trunk.host, gw.trunk_ca.string(), gw.trunk_tls_verify);
    if (auto it = tls_out_.find(key); it != tls_out_.end()) {
        if (auto c = tcp_.find(it->second); c != tcp_.end()) return gateway::TrunkFlowInfo{it->second, c->second->local()};
    }
    auto ctx = trunk_tls_.find({gw.trunk_ca.string(), gw.trunk_tls_verify});
    if (ctx == trunk_tls_.end()) {
        log::warn("realm {}: no TLS context for trunk {} (see the {} error above)", realm.name, gw.trunk.uri,
                  trunk_ca_key(realm));
        return std::nullopt;
    }
    const auto id = next_id_++;
    const SipTlsClient tls{ctx->second.get(), gw.trunk.host, fmt::format("{} (realm {})", gw.trunk.uri, realm.name)};
    auto* c = SipTcpConnection::connect(loop_, to, *this, id, &tls);
    if (c == nullptr) return std::nullopt;
    tcp_.emplace(id, c);
    tls_out_.emplace(key, id);
    return gateway::TrunkFlowInfo{id, c->local()};
}

std::optional<sip::TransportId> GatewayHost::tcp_flow(const Endpoint& trunk) {
    if (auto it = tcp_out_.find(trunk); it != tcp_out_.end()) return it->second;
    const auto id = next_id_++;
    auto* c = SipTcpConnection::connect(loop_, trunk, *this, id);
    if (c == nullptr) return std::nullopt;
    tcp_.emplace(id, c);
    tcp_out_.emplace(trunk, id);
    return id;
}

void GatewayHost::on_sip_tcp_message(SipTcpConnection& c, std::string_view sip) {
    if (closed_) return;
    deliver(gateway::SipFlow{c.id(), false, c.secure(), true, c.peer().ip, c.local()}, sip, nullptr);
}

void GatewayHost::connection_gone() {
    if (!trim_.closed() || !timer_open_ || closed_) return;
    uv_timer_start(&trim_timer_, [](uv_timer_t* t) {
        auto* self = static_cast<GatewayHost*>(t->data);
        self->trim_.trim(uv_now(self->loop_));
    }, io::HeapTrim::kQuietMs, 0);
}

void GatewayHost::on_sip_tcp_closed(SipTcpConnection& c) {
    connection_gone();
    tcp_.erase(c.id());
    if (auto it = tcp_out_.find(c.peer()); it != tcp_out_.end() && it->second == c.id()) tcp_out_.erase(it);
    std::erase_if(tls_out_, [&](const auto& e) { return e.second == c.id(); });
    if (closed_) return;
    flow_closed(c.id());
}

void GatewayHost::on_udp(Udp& u, const Endpoint& from, std::string_view bytes) {
    const bool known = udp_flows_.find(from).has_value();
    auto id = udp_flow(from, &u);
    if (!id) return;
    deliver(gateway::SipFlow{*id, false, false, false, from.ip, {}}, bytes, &u);
    // A datagram that left nothing behind (garbage, a stranger's request answered statelessly)
    // does not keep its flow: filling the table takes sources that something came of.
    if (!known) {
        if (const auto* f = udp_flows_.find(*id); f != nullptr && !flow_busy(*f)) udp_flows_.close(*id);
    }
}

void GatewayHost::on_ws_message(WsConnection& c, std::string_view sip) {
    if (closed_) return;
    deliver(gateway::SipFlow{c.id(), true, c.secure(), true, c.peer().ip, {}}, sip, nullptr);
}

void GatewayHost::on_ws_opened(WsConnection& c) {
    ws_.emplace(c.id(), &c);
    log::debug("gateway: worker {}: WebSocket {} from {}", worker_, c.id(), c.peer().to_string());
}

void GatewayHost::on_ws_closed(WsConnection& c) {
    connection_gone();
    ws_.erase(c.id());
    if (closed_) return;
    flow_closed(c.id());
}

void GatewayHost::flow_closed(sip::TransportId id) {
    // Every worker's router may use the flow (calls and transactions placed by Call-ID).
    if (shared_ != nullptr)
        for (unsigned w = 0; w < shared_->workers(); ++w)
            if (w != worker_) {
                gateway::SipMail mail;
                mail.kind = gateway::SipMail::Kind::Closed;
                mail.transport = id;
                shared_->post(w, std::move(mail));
            }
    std::vector<sip::Action> out;
    router_->on_flow_closed(io::read_clock().mono, id, out);
    apply(out);
}

void GatewayHost::deliver(const gateway::SipFlow& flow, std::string_view bytes, const Udp* via) {
    const auto clock = io::read_clock();
    std::vector<sip::Action> out;
    auto m = router_->screen(clock.mono, flow, bytes, out);
    if (m && shared_ != nullptr && shared_->workers() > 1) {
        const bool initial_invite = m->is_request() && m->method() == "INVITE" && m->to_tag().empty();
        const std::string user = initial_invite ? router_->placement_user(flow, *m) : std::string();
        if (const unsigned owner = shared_->route(clock.mono, m->call_id(), initial_invite, user); owner != worker_) {
            gateway::SipMail mail;
            mail.transport = flow.id;
            mail.websocket = flow.websocket;
            mail.secure = flow.secure;
            mail.reliable = flow.reliable;
            mail.peer = flow.peer;
            mail.local = flow.local;
            if (via != nullptr) {
                mail.udp_remote = udp_flows_.find(flow.id) ? std::optional(udp_flows_.find(flow.id)->remote) : std::nullopt;
                while (mail.udp_socket < udp_.size() && udp_[mail.udp_socket].get() != via) ++mail.udp_socket;
            }
            mail.bytes.assign(bytes);
            shared_->post(owner, std::move(mail));
            m.reset();
        }
    }
    if (m) router_->on_screened(clock.mono, clock.unix_seconds, flow, std::move(*m), out);
    apply(out);
}

void GatewayHost::on_mail() {
    if (closed_) return;
    shared_->take(worker_, mail_in_);
    for (auto& mail : mail_in_) {
        if (closed_) break;
        switch (mail.kind) {
            case gateway::SipMail::Kind::Send: {
                sip::Send s{mail.transport, std::move(mail.bytes)};
                send_local(s);
                break;
            }
            case gateway::SipMail::Kind::Closed: {
                std::vector<sip::Action> out;
                router_->on_flow_closed(io::read_clock().mono, mail.transport, out);
                apply(out);
                break;
            }
            case gateway::SipMail::Kind::Message: {
                gateway::SipFlow flow{mail.transport, mail.websocket, mail.secure, mail.reliable, mail.peer, mail.local};
                bool known = true;
                if (mail.udp_remote) {
                    // A UDP source is answered from our own socket of the same address.
                    if (mail.udp_socket >= udp_.size()) break;
                    known = udp_flows_.find(*mail.udp_remote).has_value();
                    auto id = udp_flow(*mail.udp_remote, udp_[mail.udp_socket].get());
                    if (!id) break;
                    flow.id = *id;
                }
                auto m = sip::Message::parse(mail.bytes);
                if (!m) break;
                const auto clock = io::read_clock();
                std::vector<sip::Action> out;
                router_->on_screened(clock.mono, clock.unix_seconds, flow, std::move(*m), out);
                apply(out);
                if (!known)
                    if (const auto* f = udp_flows_.find(flow.id); f != nullptr && !flow_busy(*f)) udp_flows_.close(flow.id);
                break;
            }
        }
    }
    mail_in_.clear();
}

void GatewayHost::apply(std::vector<sip::Action>& out) {
    for (auto& a : out) {
        auto* s = std::get_if<sip::Send>(&a);
        if (s == nullptr) continue;
        if (shared_ != nullptr && gateway::flow_owner(s->transport) != worker_) {
            // Another worker's WebSocket or connection: that worker writes it.
            gateway::SipMail mail;
            mail.kind = gateway::SipMail::Kind::Send;
            mail.transport = s->transport;
            mail.bytes = std::move(s->bytes);
            shared_->post(gateway::flow_owner(s->transport), std::move(mail));
            continue;
        }
        send_local(*s);
    }
    out.clear();
    rearm();
}

void GatewayHost::send_local(sip::Send& a) {
    auto* s = &a;
    {
        if (auto it = ws_.find(s->transport); it != ws_.end()) {
            it->second->send_text(s->bytes);
        } else if (auto t = tcp_.find(s->transport); t != tcp_.end()) {
            t->second->send(s->bytes);
        } else if (const auto* f = udp_flows_.find(s->transport); f != nullptr && f->socket < udp_.size()) {
            sockaddr_storage sa{};
            f->remote.to_sockaddr(sa);
            const uv_buf_t b = uv_buf_init(s->bytes.data(), static_cast<unsigned>(s->bytes.size()));
            io::udp_send(&udp_[f->socket]->udp, reinterpret_cast<const sockaddr*>(&sa), {&b, 1});
        } else {
            log::debug("gateway: message for a flow that is gone ({}); dropped", s->transport);
        }
    }
}

void GatewayHost::call_ended(const gateway::CallSummary& s, sip::MediaSdp* media) {
    GatewayMedia::Summary m = media_->finish(media);
    // Issue 17: a browser's call to an agent; its "trunk" leg is the agent's stream.
    if (s.agent && !m.codecs.empty()) m.codecs = gateway::agent_codecs(m.codecs.substr(0, m.codecs.find('/')), s.agent_format);
    if (m.codecs.empty()) m.codecs = s.codecs;   // media not ours (a hand-over's relay): as signaling saw it
    if (!m.failure.empty() && s.end_reason.starts_with("media"))
        log::info("call {} {}: media ended: {}", s.account, s.remote, m.failure);
    // A trunk SDP refused for SRTP (srtp = required without keys, keys we cannot use) ended the
    // call inside the signalling (BYE or 488); the record says why rather than "rejected".
    gateway::CallSummary summary = s;
    if (m.failure.starts_with("SRTP") && !s.end_reason.starts_with("media")) {
        log::warn("call {} {}: ended: {}", s.account, s.remote, m.failure);
        summary.end_reason = "media: " + m.failure;
    }
    record(summary, m);
}

void GatewayHost::record(const gateway::CallSummary& s, const GatewayMedia::Summary& m) {
    if (!calls_) return;
    // The cores keep monotonic time; the record wants wall-clock milliseconds.
    const auto clock = io::read_clock();
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    const auto unix_ms = [&](sip::Time t) {
        return now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(clock.mono - t).count();
    };
    accounting::CallRecord r;
    r.id = fmt::format("call-{:016x}", random_u64());
    r.realm = s.realm;
    r.account = s.account;
    r.direction = s.outbound ? "outbound" : "inbound";
    r.remote = s.remote;
    r.trunk = s.trunk;
    r.start_ms = unix_ms(s.started);
    r.answer_ms = s.answered ? unix_ms(*s.answered) : 0;
    r.end_ms = unix_ms(s.ended);
    r.status = s.status;
    r.codecs = m.codecs;
    r.end_reason = s.end_reason;
    r.relayed = m.relayed;
    r.browser_in_packets = m.stats.browser_in.packets;
    r.browser_in_bytes = m.stats.browser_in.bytes;
    r.browser_out_packets = m.stats.browser_out.packets;
    r.browser_out_bytes = m.stats.browser_out.bytes;
    r.trunk_in_packets = m.stats.trunk_in.packets;
    r.trunk_in_bytes = m.stats.trunk_in.bytes;
    r.trunk_out_packets = m.stats.trunk_out.packets;
    r.trunk_out_bytes = m.stats.trunk_out.bytes;
    // Issue 14: loss, jitter and the E-model MOS per leg and direction (gateway/call_quality.hpp).
    const gateway::CallMedia::Quality& q = m.quality;
    const gateway::DirectionQuality* dirs[] = {&q.browser_in, &q.browser_out, &q.trunk_in, &q.trunk_out};
    for (std::size_t i = 0; i < r.quality.size(); ++i) {
        const auto& d = *dirs[i];
        auto& k = r.quality[i];
        k.measured = d.measured;
        k.lost = d.lost;
        k.loss_pct = d.loss_pct();
        k.jitter_ms = d.jitter_ms;
        k.mos = d.mos(i < 2 ? q.browser_codec : q.trunk_codec);
    }
    // call.ended: the browser leg's media payload bytes, both directions, like an allocation's.
    log::event(log::Level::Info, "call.ended",
               {r.realm, r.account, {}, s.call_id, {}, {}, r.remote, r.end_reason, r.browser_in_bytes + r.browser_out_bytes},
               fmt::format("call record: {} {} {} {} status {} {} ms codecs {} trunk {} ({}{})", r.realm, r.account,
                           r.direction, r.remote, r.status, r.duration_ms(), r.codecs.empty() ? "-" : r.codecs,
                           r.trunk.empty() ? "-" : r.trunk, r.end_reason, r.relayed ? ", relayed" : ""));
    calls_(std::move(r));
}

void GatewayHost::rearm() {
    if (!timer_open_ || closed_) return;
    const auto next = router_->next_wake();
    if (!next) {
        uv_timer_stop(&timer_);
        return;
    }
    const auto now = io::read_clock().mono;
    const auto ms = *next <= now ? 0 : std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
    uv_timer_start(&timer_, [](uv_timer_t* t) {
        auto* self = static_cast<GatewayHost*>(t->data);
        std::vector<sip::Action> out;
        self->router_->on_timer(io::read_clock().mono, out);
        self->apply(out);
    }, static_cast<std::uint64_t>(ms), 0);
}

void GatewayHost::sweep() {
    udp_flows_.expire(io::read_clock().mono, kUdpFlowIdle, [this](const sip::UdpFlows::Flow& f) { return flow_busy(f); });
    const std::uint64_t now = uv_now(loop_);
    // A close reports to us (and erases from the map): walk copies.
    std::vector<WsConnection*> ws;
    for (auto& [id, c] : ws_) ws.push_back(c);
    for (auto* c : ws) c->sweep(now);
    std::vector<SipTcpConnection*> sip;
    for (auto& [id, c] : tcp_) sip.push_back(c);
    for (auto* c : sip) c->sweep(now);
    trim_.maybe_trim(now);
    std::vector<SipTcpConnection*> slow;
    for (auto& [id, c] : tcp_)
        if (c->outbound() && !c->ready() && c->started_ms() + kTrunkConnectTimeoutMs <= now) slow.push_back(c);
    for (auto* c : slow) {
        log::warn("sip {} {}: not connected within {} s; closing", c->secure() ? "tls" : "tcp", c->peer().to_string(),
                  kTrunkConnectTimeoutMs / 1000);
        c->close();
    }
}

void GatewayHost::close() {
    if (closed_) return;
    // Last words: BYE/CANCEL for live calls and un-REGISTER, sent before the sockets go.
    std::vector<sip::Action> out;
    router_->stop(io::read_clock().mono, out);
    apply(out);
    closed_ = true;
    if (shared_ != nullptr && timer_open_) {
        shared_->detach(worker_);
        uv_close(reinterpret_cast<uv_handle_t*>(&mail_), nullptr);
    }
    if (resolver_) resolver_->close();
    if (test_line_) test_line_->close();
    if (agents_) agents_->close();
    media_->close();
    if (timer_open_) {
        uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&sweep_), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&trim_timer_), nullptr);
    }
    for (auto& l : listeners_) uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), nullptr);
    for (auto& u : udp_) uv_close(reinterpret_cast<uv_handle_t*>(&u->udp), nullptr);
    std::vector<WsConnection*> open;
    for (auto& [id, c] : ws_) open.push_back(c);
    for (auto* c : open) c->close();
    std::vector<SipTcpConnection*> tcp;
    for (auto& [id, c] : tcp_) tcp.push_back(c);
    for (auto* c : tcp) c->close();
}

}  // namespace turnbridge::gateway::host
