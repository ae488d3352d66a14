// SPDX-License-Identifier: Apache-2.0
#pragma once
// One worker: a thread with its own uv loop, its own turn::Server and everything that lives on
// it (listener sockets of its SO_REUSEPORT groups, TCP/TLS connections, relay sockets). Nothing
// on its packet path is shared with other workers, so nothing there takes a lock
// (ARCHITECTURE.md). Other threads talk to it only through post_*().
#include <atomic>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <uv.h>
#include <vector>

#include "turnbridge/config/config.hpp"
#include "turnbridge/gateway/agent_dial.hpp"
#include "turnbridge/io/loop_clock.hpp"
#include "turnbridge/io/stream_limits.hpp"
#include "turnbridge/server/relay_binder.hpp"
#include "turnbridge/io/send_batch.hpp"
#include "turnbridge/io/tls_context.hpp"
#include "turnbridge/server/worker_accounting.hpp"
#include "turnbridge/turn/server.hpp"

namespace turnbridge::app {
class AccountingHub;
}
namespace turnbridge::gateway::host {
class GatewayHost;
}
namespace turnbridge::gateway {
class GatewayShared;
}

namespace turnbridge::server {

class MediaExchange;
struct MediaHandoff;
class RelayRegistry;
class TcpConnection;
class TcpListener;
class UdpListener;

// A listening socket bound by the main thread for this worker (see listener_sockets.hpp).
struct ListenerFd {
    Transport transport = Transport::Udp;  // Udp; Tcp; Tls (a TCP socket that speaks TLS)
    Endpoint local;
    int fd = -1;
};

// The process-wide pieces every worker points to; all outlive the workers.
struct ProcessShared {
    const turn::NonceMinter* nonces = nullptr;
    turn::QuotaTracker* quota = nullptr;
    RelayRegistry* relays = nullptr;
    app::AccountingHub* hub = nullptr;   // null: no accounting
    std::int64_t instance_ms = 0;   // start of this process, part of every accounting record id
    MediaExchange* media = nullptr; // gateway mode: hands relayed media to and from the gateways
    gateway::GatewayShared* gateway = nullptr;   // gateway mode: placement, registrar, SIP mailboxes
    AuthThrottle* auth = nullptr;   // security.auth_failures_per_minute (TURN and SIP digest)
    io::StreamGates* streams = nullptr;  // connection caps and counters of every stream kind (null: none)
    gateway::DialReports* dials = nullptr;  // outbound agent calls' progress (issue 17; null: none)
};

class Worker {
public:
    // Builds the loop and its handles on the calling thread; start() runs them on a new one.
    // Takes ownership of the fds. Throws std::runtime_error when a handle cannot be set up.
    Worker(unsigned index, std::shared_ptr<const config::Config> cfg, const ProcessShared& shared,
           io::TlsContextPtr tls, std::vector<ListenerFd> fds);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    void start(std::latch& up);
    void join();

    // Thread-safe: picked up by the worker on its own loop.
    void post_config(std::shared_ptr<const config::Config> cfg);
    void post_tls(io::TlsContextPtr ctx);
    void post_stop();
    void post_kick(std::uint64_t allocation_id);
    // Issue 17: an outbound agent call for this worker's gateway (POST /api/v1/calls); false
    // without gateway mode (nothing posted).
    bool post_dial(const gateway::AgentDial& d);
    // Timer ticks of this worker's loop so far (any thread): the systemd watchdog checks that
    // every loop still turns.
    std::uint64_t ticks() const { return ticks_.load(std::memory_order_relaxed); }

    // --- Used by the worker's own handles, on its thread. ---
    uv_loop_t* loop() { return &loop_; }
    unsigned index() const { return index_; }
    const config::Config& config() const { return *cfg_; }
    SSL_CTX* tls_context() const { return tls_.get(); }
    bool stopping() const { return stopping_; }
    io::StreamGates* stream_gates() const { return shared_.streams; }
    io::StreamStats* stream_stats() const { return shared_.streams ? &shared_.streams->stats() : nullptr; }

    // Scratch buffers, reused for every read: callbacks run one at a time on this thread.
    uv_buf_t udp_buffer();
    uv_buf_t stream_buffer();
    std::span<std::uint8_t> tls_plain_in();
    std::span<std::uint8_t> tls_plain_out();
    std::span<std::uint8_t> tls_cipher_out();

    // `in_batch`: more datagrams of the same recvmmsg batch follow and flush_sends() comes at
    // its end, so the sends this produces may wait in the SendBatch; otherwise they go now.
    void on_client_data(const FiveTuple& from, stun::Bytes bytes, bool in_batch = false);
    void on_peer_data(turn::RelayHandle relay, const Endpoint& peer, stun::Bytes bytes, bool in_batch = false);
    // The SendBatch: datagrams queued until flush_sends() (end of a receive batch, before the
    // receive buffer is reused, before a socket closes or changes options).
    void queue_send(io::UdpTarget& t, const Endpoint& to, stun::Bytes head, stun::Bytes body, std::uint8_t pad) {
        batch_.add(t, to, head, body, pad);
    }
    void flush_sends() {
        if (!batch_.empty()) batch_.flush();
        if (!pending_streams_.empty()) flush_streams();
    }
    // A TCP/TLS connection holding relayed data for the client until flush_sends(): one write
    // per connection per receive batch instead of one per ChannelData.
    void stream_pending(TcpConnection* c) { pending_streams_.push_back(c); }
    void stream_gone(TcpConnection* c);  // closing: drop it from the list
    const io::SendBatchStats& send_stats() const { return batch_.stats(); }

    void add_connection(TcpConnection* c);
    void remove_connection(TcpConnection* c);  // closing: no more sends to it
    void add_wire_overhead(const FiveTuple& ft, turn::Direction d, std::size_t bytes);  // TLS framing
    void connection_closed(const FiveTuple& ft);  // handle gone: the allocation goes too

private:
    void flush_streams();
    void run(std::latch& up);
    void on_mail();
    void on_media();  // the gateway's answers for allocations of this worker (MediaExchange)
    void on_tick();
    void on_flush(bool checkpoint);  // false: only the queued creation and end records
    void shutdown();
    void dispatch(bool in_batch = false);
    void send_to_client(const turn::ToClient& c);
    void send_to_peer(const turn::ToPeer& p);
    void close_client(const FiveTuple& ft);

    unsigned index_;
    std::shared_ptr<const config::Config> cfg_;
    ProcessShared shared_;
    io::TlsContextPtr tls_;
    uv_loop_t loop_{};
    io::LoopClock clock_{&loop_};   // per-datagram time from uv_now(), not clock_gettime
    uv_async_t mail_async_{};
    uv_async_t media_async_{};   // gateway mode only (shared_.media)
    uv_timer_t tick_{};
    uv_timer_t flush_{};
    uv_timer_t flush_soon_{};  // an allocation ended: post its final record on the next turn
    std::uint64_t last_tick_ms_ = 0;
    double loop_lag_seconds_ = 0;
    std::atomic<std::uint64_t> ticks_{0};
    WorkerRelayBinder binder_;
    std::unique_ptr<WorkerAccounting> accounting_;  // before server_: the server reports to it
    std::unique_ptr<turn::Server> server_;
    std::vector<turn::Action> actions_;  // reused: no allocation per packet
    io::SendBatch batch_;                    // preallocated: no allocation per packet
    std::vector<TcpConnection*> pending_streams_;  // with relayed data not yet written
    std::vector<TcpConnection*> flushing_streams_;  // pending_streams_ while they are flushed
    std::vector<std::unique_ptr<UdpListener>> udp_;
    std::vector<std::unique_ptr<TcpListener>> tcp_;
    std::vector<MediaHandoff> media_in_;     // taken from the MediaExchange, reused
    std::unique_ptr<gateway::host::GatewayHost> gateway_;  // every worker, when a realm has gateway mode (gateway_host.hpp)
    std::unordered_map<FiveTuple, TcpConnection*> connections_;
    std::vector<TcpConnection*> sweep_;   // reused by on_tick()
    std::unique_ptr<std::uint8_t[]> udp_buf_;
    std::unique_ptr<std::uint8_t[]> stream_buf_;
    std::unique_ptr<std::uint8_t[]> tls_buf_;
    bool stopping_ = false;
    std::thread thread_;

    std::mutex mail_mu_;
    struct Mail {
        std::shared_ptr<const config::Config> cfg;
        io::TlsContextPtr tls;
        bool stop = false;
        std::vector<std::uint64_t> kicks;
        std::vector<gateway::AgentDial> dials;
    } mail_;
};

}  // namespace turnbridge::server
