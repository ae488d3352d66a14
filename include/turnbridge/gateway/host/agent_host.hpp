// SPDX-License-Identifier: Apache-2.0
#pragma once
// The I/O of AI agent calls (issue 17) on a gateway worker's loop: per call, a WebSocket client
// toward the agent's ws:// or wss:// URL (an io::StreamConnection; TLS with SNI and the system
// CA store; the RFC 6455 §4.1 client handshake, then masked frames, §5.3) and one UDP socket for
// the trunk's RTP; one 20 ms timer paces every call's playout (gateway::AgentMedia) and checks
// connect deadlines (gateway.agent_connect_timeout). Agent host names are resolved (A/AAAA)
// through io::DnsResolver when a call needs them. A slow agent never stalls other calls: a
// message for an agent whose connection has more than kMaxUnsent bytes unsent is dropped and
// counted (and the connection's own hard write bound closes it).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <uv.h>

#include "turnbridge/base/address.hpp"
#include "turnbridge/gateway/agent_media.hpp"
#include "turnbridge/gateway/agent_port.hpp"
#include "turnbridge/io/dns_resolver.hpp"
#include "turnbridge/io/tls_context.hpp"

namespace turnbridge::gateway::host {

// Process-wide counts for /metrics (summed over workers by the caller).
struct AgentCounts {
    std::uint64_t calls = 0;              // agent streams opened
    std::uint64_t failed = 0;             // refused, timed out, or closed by the agent
    std::uint64_t frames_dropped = 0;     // agent audio over the playout bound, 20 ms frames
    std::uint64_t messages_dropped = 0;   // toward a slow agent (send queue full)
    std::uint64_t bad_messages = 0;       // unreadable messages from agents
};

class AgentHost final : public gateway::AgentPort {
public:
    static constexpr std::size_t kMaxUnsent = 64 * 1024;   // about 1.5 s of media messages
    static constexpr std::size_t kMaxMessage = 256 * 1024;  // one agent message (3 s of audio in base64)
    using Answered = std::function<void(const std::string& key, const std::string& sdp)>;
    using Failed = std::function<void(const std::string& key, const std::string& why)>;
    using Ended = std::function<void(const gateway::CallSummary& s, const gateway::AgentLegStats& leg)>;

    // `rtp_ip`: where the calls' RTP sockets are bound (and what the SDP answers name).
    AgentHost(uv_loop_t* loop, IpAddress rtp_ip, Answered answered, Failed failed, Ended ended);
    ~AgentHost() override;

    using Transfer = std::function<void(const std::string& key, const std::string& to)>;
    // The agent asked for a hand-over ({"event":"transfer","to":"..."}); unset: logged only.
    void on_transfer(Transfer f) { transfer_ = std::move(f); }

    bool open_agent(const gateway::AgentOpen& open) override;
    std::optional<std::string> offer_agent(const gateway::AgentOpen& open) override;
    bool connect_agent(const std::string& key, const std::string& answer_sdp) override;
    void close_agent(const std::string& key, const gateway::CallSummary& summary) override;
    std::optional<std::string> hand_over(const std::string& key) override;   // agent_relay.cpp
    void relay_to(const std::string& key, const std::string& sdp) override;
    void close();   // shutdown: every handle
    // Where agent host names are looked up (server.dns_servers; empty: /etc/resolv.conf).
    void set_dns_servers(std::vector<Endpoint> servers) { dns_servers_ = std::move(servers); }
    std::size_t calls() const { return sessions_.size(); }
    const AgentCounts& counts() const { return counts_; }

private:
    struct Session;
    void on_tick();
    Session* open_session(const gateway::AgentOpen& o, gateway::TrunkLocal& local);   // + its RTP socket
    void start_session(Session& s, const gateway::TrunkMedia& media);                 // RTP in, agent connect
    void connect(Session& s);                                 // resolves a host name first
    void connect_to(Session& s, const Endpoint& to);
    void arm();
    void schedule();
    void finish(Session& s);   // both handles gone: forget it
    void close_udp(Session& s);
    SSL_CTX* client_tls();

    uv_loop_t* loop_;
    IpAddress rtp_ip_;
    Answered answered_;
    Failed failed_;
    Ended ended_;
    Transfer transfer_;
    uv_timer_t tick_{};
    bool ticking_ = false;
    std::uint64_t origin_ns_ = 0;   // uv_hrtime() of tick 0
    std::uint64_t ticks_ = 0;       // ticks run since origin_ns_
    bool closed_ = false;
    std::map<std::string, std::unique_ptr<Session>> sessions_;
    io::TlsContextPtr tls_;
    std::vector<Endpoint> dns_servers_;
    std::unique_ptr<io::DnsResolver> dns_;   // made on the first agent host name
    AgentCounts counts_;
    friend struct Session;
};

}  // namespace turnbridge::gateway::host
