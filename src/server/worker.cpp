// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/server/worker.hpp"

#include <pthread.h>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/app/accounting_hub.hpp"
#include "turnbridge/gateway/host/gateway_host.hpp"
#include "turnbridge/io/loop_clock.hpp"
#include "turnbridge/server/media_exchange.hpp"
#include "turnbridge/server/relay_registry.hpp"
#include "turnbridge/server/relay_socket.hpp"
#include "turnbridge/io/socket_util.hpp"
#include "turnbridge/server/tcp_connection.hpp"
#include "turnbridge/server/tcp_listener.hpp"
#include "turnbridge/server/udp_listener.hpp"

namespace turnbridge::server {
namespace {

constexpr std::size_t kDatagramMax = 64 * 1024;  // libuv's per-datagram slot (UV__UDP_DGRAM_MAXSIZE)
constexpr std::size_t kBatch = 20;               // libuv reads at most 20 datagrams per recvmmsg
constexpr std::size_t kStreamRead = 64 * 1024;
// TLS scratch: decrypted input, gathered output (<= 64 KiB frame + header + pad), ciphertext out.
constexpr std::size_t kTlsPlainIn = 64 * 1024;
constexpr std::size_t kTlsPlainOut = 66 * 1024;
constexpr std::size_t kTlsCipherOut = 64 * 1024;
constexpr std::uint64_t kTickMs = 1000;  // turn::Server::on_timer wants about one call a second

template <class... F> struct Overloaded : F... { using F::operator()...; };
template <class... F> Overloaded(F...) -> Overloaded<F...>;

void fail(unsigned index, const char* what, int err) {
    throw std::runtime_error(fmt::format("worker {}: {}: {}", index, what, io::error_text(err)));
}

}  // namespace

Worker::Worker(unsigned index, std::shared_ptr<const config::Config> cfg, const ProcessShared& shared,
               io::TlsContextPtr tls, std::vector<ListenerFd> fds)
    : index_(index), cfg_(std::move(cfg)), shared_(shared), tls_(std::move(tls)), binder_(*this, *shared.relays),
      udp_buf_(new std::uint8_t[kDatagramMax * kBatch]), stream_buf_(new std::uint8_t[kStreamRead]),
      tls_buf_(new std::uint8_t[kTlsPlainIn + kTlsPlainOut + kTlsCipherOut]) {
    if (int err = uv_loop_init(&loop_); err != 0) fail(index_, "uv_loop_init", err);
    loop_.data = this;
    uv_async_init(&loop_, &mail_async_, [](uv_async_t* a) { static_cast<Worker*>(a->data)->on_mail(); });
    mail_async_.data = this;
    uv_timer_init(&loop_, &tick_);
    tick_.data = this;
    uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<Worker*>(t->data)->on_tick(); }, kTickMs, kTickMs);
    actions_.reserve(16);
    if (shared_.hub != nullptr) {
        uv_timer_init(&loop_, &flush_soon_);
        flush_soon_.data = this;
        accounting_ = std::make_unique<WorkerAccounting>(cfg_->fleet.enabled() ? cfg_->fleet.node_id : std::string(), shared_.instance_ms, [this] {
            if (!stopping_)
                uv_timer_start(&flush_soon_, [](uv_timer_t* t) { static_cast<Worker*>(t->data)->on_flush(false); }, 0, 0);
        });
        uv_timer_init(&loop_, &flush_);
        flush_.data = this;
        const auto every = static_cast<std::uint64_t>(cfg_->accounting.flush_interval.count()) * 1000;
        uv_timer_start(&flush_, [](uv_timer_t* t) { static_cast<Worker*>(t->data)->on_flush(true); }, every, every);
    }
    last_tick_ms_ = uv_now(&loop_);
    server_ = std::make_unique<turn::Server>(turn::SharedState{cfg_, shared_.nonces, shared_.quota, index_, shared_.hub, shared_.auth, shared_.hub, shared_.hub}, binder_,
                                             accounting_.get());
    if (shared_.media != nullptr) {
        server_->set_local_peers(shared_.media);
        uv_async_init(&loop_, &media_async_, [](uv_async_t* a) { static_cast<Worker*>(a->data)->on_media(); });
        media_async_.data = this;
        shared_.media->attach(index_, &media_async_);
    }

    std::size_t next = 0;  // fds not yet handed to a listener are closed on failure
    try {
        for (; next < fds.size(); ++next) {
            const ListenerFd& l = fds[next];
            int err = 0;
            if (l.transport == Transport::Udp) {
                udp_.push_back(std::make_unique<UdpListener>(*this, l.local));
                err = udp_.back()->start(l.fd);
            } else {
                tcp_.push_back(std::make_unique<TcpListener>(*this, l.local, l.transport));
                err = tcp_.back()->start(l.fd);
            }
            if (err != 0)
                throw std::runtime_error(fmt::format("cannot listen on {} {}: {}", to_string(l.transport),
                                                     l.local.to_string(), io::error_text(err)));
        }
        if (cfg_->any_gateway()) {
            // Every worker hosts a gateway (issue 12); the GatewayShared places each call.
            // Each ended call's record goes to the store with the allocation records.
            gateway::host::GatewayHost::CallSink calls;
            if (shared_.hub != nullptr)
                calls = [hub = shared_.hub](accounting::CallRecord r) { hub->post_call(std::move(r)); };
            gateway_ = std::make_unique<gateway::host::GatewayHost>(&loop_, cfg_, *shared_.nonces, [this] { return tls_context(); },
                                                     shared_.media, std::move(calls), index_, shared_.gateway);
            gateway_->set_auth_throttle(shared_.auth);
            gateway_->set_streams(shared_.streams);
            gateway_->set_dial_reports(shared_.dials);
            gateway_->start();
        }
    } catch (...) {
        for (std::size_t i = next + 1; i < fds.size(); ++i) ::close(fds[i].fd);
        shutdown();
        uv_run(&loop_, UV_RUN_DEFAULT);
        server_.reset();
        uv_loop_close(&loop_);
        throw;
    }
}

Worker::~Worker() {
    if (thread_.joinable()) thread_.join();
    if (server_ == nullptr) return;  // run() or the constructor finished the loop already
    shutdown();
    uv_run(&loop_, UV_RUN_DEFAULT);
    server_.reset();
    uv_loop_close(&loop_);
}

void Worker::start(std::latch& up) {
    thread_ = std::thread([this, &up] { run(up); });
}

void Worker::join() {
    if (thread_.joinable()) thread_.join();
}

void Worker::run(std::latch& up) {
    // Named for top, perf and /proc/PID/task/*/comm (scripts/bench gateway-server reads it).
    const std::string name = "worker-" + std::to_string(index_);
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    up.count_down();
    uv_run(&loop_, UV_RUN_DEFAULT);
    // Every handle is closed: the server has nothing left to release.
    server_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    if (int err = uv_loop_close(&loop_); err != 0)
        log::warn("worker {}: loop closed with handles still open: {}", index_, io::error_text(err));
}

void Worker::post_config(std::shared_ptr<const config::Config> cfg) {
    {
        std::lock_guard lock(mail_mu_);
        mail_.cfg = std::move(cfg);
    }
    uv_async_send(&mail_async_);
}

void Worker::post_tls(io::TlsContextPtr ctx) {
    {
        std::lock_guard lock(mail_mu_);
        mail_.tls = std::move(ctx);
    }
    uv_async_send(&mail_async_);
}

void Worker::post_stop() {
    {
        std::lock_guard lock(mail_mu_);
        mail_.stop = true;
    }
    uv_async_send(&mail_async_);
}

void Worker::post_kick(std::uint64_t allocation_id) {
    {
        std::lock_guard lock(mail_mu_);
        mail_.kicks.push_back(allocation_id);
    }
    uv_async_send(&mail_async_);
}

bool Worker::post_dial(const gateway::AgentDial& d) {
    if (!gateway_) return false;
    {
        std::lock_guard lock(mail_mu_);
        mail_.dials.push_back(d);
    }
    uv_async_send(&mail_async_);
    return true;
}

void Worker::on_mail() {
    Mail m;
    {
        std::lock_guard lock(mail_mu_);
        std::swap(m, mail_);
    }
    if (stopping_) return;
    if (m.cfg) {
        cfg_ = m.cfg;
        if (gateway_) gateway_->set_config(m.cfg);
        server_->set_config(std::move(m.cfg));
    }
    if (m.tls) tls_ = std::move(m.tls);
    for (auto id : m.kicks) {
        actions_.clear();
        if (server_->close(id, turn::CloseReason::Kicked, actions_)) {
            const std::string hex = fmt::format("{:x}", id);
            log::event(log::Level::Info, "allocation.kicked", {{}, {}, hex, {}, {}, {}, {}, "admin", std::nullopt},
                       fmt::format("allocation {} kicked by admin", hex));
        }
        dispatch();
    }
    for (const auto& d : m.dials)
        if (gateway_) gateway_->dial(d);
    if (m.stop) shutdown();
}

void Worker::shutdown() {
    if (stopping_) return;
    stopping_ = true;
    // Each allocation is deleted (and logged) by the core; its relay sockets are released here.
    server_->close_all(turn::CloseReason::Shutdown);
    if (accounting_ != nullptr) {
        on_flush(true);  // the final records of every allocation reach the store before exit
        uv_close(reinterpret_cast<uv_handle_t*>(&flush_), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&flush_soon_), nullptr);
    }
    binder_.close_all();
    if (gateway_) gateway_->close();
    if (shared_.media != nullptr) {
        shared_.media->detach(index_);
        uv_close(reinterpret_cast<uv_handle_t*>(&media_async_), nullptr);
    }
    for (auto& l : udp_) l->close();
    for (auto& l : tcp_) l->close();
    std::vector<TcpConnection*> open;
    open.reserve(connections_.size());
    for (auto& [ft, c] : connections_) open.push_back(c);
    for (auto* c : open) c->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&mail_async_), nullptr);
}

void Worker::on_flush(bool checkpoint) {
    const auto& s = server_->stats();
    // By name, not by position: WorkerStats grows (clang/gcc -Wmissing-field-initializers).
    app::WorkerStats stats;
    stats.auth_failures = s.auth_failures;
    stats.quota_refusals = s.quota_refusals;
    stats.loop_lag_seconds = loop_lag_seconds_;
    stats.allocate_refused = s.allocate_refused;
    stats.unauthenticated_dropped = s.unauthenticated_dropped;
    stats.user_allocation_refusals = s.user_allocation_refusals;
    stats.permission_cap_refusals = s.permission_cap_refusals;
    stats.channel_cap_refusals = s.channel_cap_refusals;
    if (gateway_) {
        stats.sip_limited = gateway_->limits();
        const auto strangers = gateway_->media_strangers();
        stats.gateway_media_dropped_source = {strangers.browser, strangers.trunk};
        const auto agent = gateway_->agent_counts();
        stats.gateway_agent = {agent.calls, agent.failed, agent.frames_dropped, agent.messages_dropped, agent.bad_messages};
        stats.agent_transfers = gateway_->agent_transfers();
        if (index_ == 0) stats.trunk_targets = gateway_->trunk_health(io::read_clock().mono);
    }
    shared_.hub->post(index_, checkpoint ? accounting_->take(*server_) : accounting_->take_queued(), stats);
}

void Worker::on_media() {
    if (stopping_) return;
    shared_.media->take(index_, media_in_);
    const auto now = clock_.now();
    for (const MediaHandoff& h : media_in_) {
        actions_.clear();
        // As if the gateway's datagram had arrived on the allocation's relay socket (RFC 8656 §11.3).
        server_->on_peer_data(now, h.relay, h.media, h.bytes(), actions_);
        dispatch(true);
    }
    flush_sends();  // the queued payloads point into media_in_: they leave before it is cleared
    media_in_.clear();
}

void Worker::on_tick() {
    // Loop lag: how late this 1 s timer fired, a direct measure of a busy worker.
    const std::uint64_t now_ms = uv_now(&loop_);
    loop_lag_seconds_ = now_ms > last_tick_ms_ + kTickMs ? static_cast<double>(now_ms - last_tick_ms_ - kTickMs) / 1000.0 : 0.0;
    last_tick_ms_ = now_ms;
    ticks_.fetch_add(1, std::memory_order_relaxed);
    const auto now = clock_.now();
    server_->on_timer(now);
    // [streams] timeouts (io::StreamGuard); a close unlinks the connection, so walk a copy.
    sweep_.clear();
    for (const auto& [ft, c] : connections_) sweep_.push_back(c);
    for (TcpConnection* c : sweep_) c->sweep(now_ms, server_->find(c->five_tuple()) != nullptr);
}

uv_buf_t Worker::udp_buffer() {
    flush_sends();  // queued payloads point into this buffer: they leave before it is reused
    return uv_buf_init(reinterpret_cast<char*>(udp_buf_.get()), static_cast<unsigned>(kDatagramMax * kBatch));
}

uv_buf_t Worker::stream_buffer() {
    return uv_buf_init(reinterpret_cast<char*>(stream_buf_.get()), static_cast<unsigned>(kStreamRead));
}

std::span<std::uint8_t> Worker::tls_plain_in() { return {tls_buf_.get(), kTlsPlainIn}; }
std::span<std::uint8_t> Worker::tls_plain_out() { return {tls_buf_.get() + kTlsPlainIn, kTlsPlainOut}; }
std::span<std::uint8_t> Worker::tls_cipher_out() {
    return {tls_buf_.get() + kTlsPlainIn + kTlsPlainOut, kTlsCipherOut};
}

void Worker::on_client_data(const FiveTuple& from, stun::Bytes bytes, bool in_batch) {
    if (stopping_) return;
    actions_.clear();
    server_->on_client_data(clock_.now(), from, bytes, actions_);
    dispatch(in_batch);
}

void Worker::on_peer_data(turn::RelayHandle relay, const Endpoint& peer, stun::Bytes bytes, bool in_batch) {
    if (stopping_) return;
    actions_.clear();
    server_->on_peer_data(clock_.now(), relay, peer, bytes, actions_);
    dispatch(in_batch);
}

void Worker::dispatch(bool in_batch) {
    // Spans in the actions point into the server's buffers and our receive buffer: send now.
    for (const auto& a : actions_) {
        std::visit(Overloaded{
                       [this](const turn::ToClient& c) { send_to_client(c); },
                       [this](const turn::ToPeer& p) { send_to_peer(p); },
                       [this](const turn::CloseClient& c) { close_client(c.to); },
                       [this](const turn::ToLocal& l) {
                           // To the call owning that media port, on whichever worker (this one
                           // too: through its own ring, never re-entering the gateway from here),
                           // copied: the body is in our receive buffer. No call: dropped.
                           const unsigned owner = shared_.media->port_owner(l.peer.port);
                           if (owner < shared_.media->workers())
                               shared_.media->post(shared_.media->gateway_box(owner), index_, index_, l.relay, l.relayed,
                                                   l.peer, l.body);
                       },
                   },
                   a);
    }
    actions_.clear();
    if (!in_batch) flush_sends();
}

void Worker::send_to_client(const turn::ToClient& c) {
    if (c.to.transport == Transport::Udp) {
        for (auto& l : udp_) {
            if (l->local() != c.to.server) continue;
            // Relayed data (a short ChannelData or Data indication header before the payload)
            // joins the batch; a STUN response (all in the server's response buffer, which the
            // next request overwrites) goes now, after what was queued before it.
            if (!c.body.empty() && io::SendBatch::fits(c.head)) {
                queue_send(l->target(), c.to.client, c.head, c.body, c.pad);
            } else {
                flush_sends();
                l->send(c.to.client, c.head, c.body, c.pad);
            }
            return;
        }
        return;
    }
    auto it = connections_.find(c.to);
    if (it != connections_.end()) it->second->send(c.head, c.body, c.pad);
}

void Worker::send_to_peer(const turn::ToPeer& p) {
    if (RelaySocket* s = binder_.find(p.relay)) s->send(p.peer, p.body, p.dont_fragment);
}

void Worker::close_client(const FiveTuple& ft) {
    auto it = connections_.find(ft);
    if (it != connections_.end()) it->second->close();
}

void Worker::flush_streams() {
    // A flush may close a connection (write error), which unlists it: walk a swapped copy. A
    // closing connection is only freed by its close callback, after this returns.
    flushing_streams_.swap(pending_streams_);
    for (TcpConnection* c : flushing_streams_) c->flush_pending();
    flushing_streams_.clear();
}

void Worker::stream_gone(TcpConnection* c) {
    std::erase(pending_streams_, c);
}

void Worker::add_connection(TcpConnection* c) { connections_.insert_or_assign(c->five_tuple(), c); }

void Worker::remove_connection(TcpConnection* c) {
    auto it = connections_.find(c->five_tuple());
    if (it != connections_.end() && it->second == c) connections_.erase(it);
}

void Worker::add_wire_overhead(const FiveTuple& ft, turn::Direction d, std::size_t bytes) {
    if (server_) server_->add_wire_overhead(ft, d, bytes);
}

void Worker::connection_closed(const FiveTuple& ft) {
    // RFC 8656 §5: when the client's TCP/TLS connection goes, so does its allocation.
    if (server_) server_->on_client_closed(clock_.now(), ft);
}

}  // namespace turnbridge::server
