// SPDX-License-Identifier: Apache-2.0
#pragma once
// SIP over TCP on the trunk side (RFC 3261 §18.3): a connection a trunk opened to sip_listen, or
// one we opened toward a TCP trunk, or toward a TLS trunk (RFC 3261 §26.2.1). The connection
// itself (TCP, the client TlsSession on memory BIOs, the write queue, sends held until it is up,
// the [streams] bounds) is an io::StreamConnection; this class is its SIP framer: messages are
// cut by SipStreamFramer and handed to the owner. Signaling only: plain copies.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <uv.h>

#include "turnbridge/base/address.hpp"
#include "turnbridge/io/stream_connection.hpp"
#include "turnbridge/sip/sip_stream.hpp"

typedef struct ssl_ctx_st SSL_CTX;

namespace turnbridge::gateway::host {

class SipTcpConnection;

// What a connection toward a TLS trunk needs.
struct SipTlsClient {
    SSL_CTX* ctx = nullptr;      // load_trunk_tls_context(); the session keeps its own reference
    std::string server_name;     // the trunk URI's host: SNI and the name its certificate must carry
    std::string trunk;           // the trunk URI, for log lines
};

class SipTcpOwner {
public:
    virtual ~SipTcpOwner() = default;
    virtual void on_sip_tcp_message(SipTcpConnection& c, std::string_view sip) = 0;
    virtual void on_sip_tcp_closed(SipTcpConnection& c) = 0;   // the object is freed after this returns
};

class SipTcpConnection final : private io::Framer, private io::StreamEvents {
public:
    // Accepts the pending connection on `server`; nullptr on failure or when `gate` refuses it
    // ([streams] sip_max_connections, sip_max_connections_per_ip).
    static SipTcpConnection* accept(uv_loop_t* loop, uv_stream_t* server, SipTcpOwner& owner, std::uint64_t id,
                                    io::ConnectionGate* gate, const io::GuardLimits& limits);
    // Starts connecting to `to` (over TLS when `tls` is given); nullptr on immediate failure.
    static SipTcpConnection* connect(uv_loop_t* loop, const Endpoint& to, SipTcpOwner& owner, std::uint64_t id,
                                     const SipTlsClient* tls = nullptr);
    ~SipTcpConnection() override;

    void send(std::string_view message) { conn_.send(message); }
    void close() { conn_.close(); }
    // The host's sweep (about once a second): [streams] message_timeout (a SIP message started
    // and not finished: slowloris), sip_idle_timeout on inbound connections, write_timeout.
    void sweep(std::uint64_t now_ms) { conn_.sweep(now_ms); }
    std::uint64_t id() const { return id_; }
    const Endpoint& peer() const { return conn_.peer(); }
    // Our end of an outbound connection (bound when connecting starts): the Via sent-by and
    // Contact a TLS trunk can reach us at over this connection.
    const std::optional<Endpoint>& local() const { return conn_.local(); }
    bool outbound() const { return outbound_; }
    bool secure() const { return conn_.secure(); }
    // Connected, and for TLS the handshake done: what was queued has left.
    bool ready() const { return conn_.ready(); }
    std::uint64_t started_ms() const { return conn_.started_ms(); }   // uv_now() at connect/accept

private:
    SipTcpConnection(uv_loop_t* loop, SipTcpOwner& owner, std::uint64_t id, const io::GuardLimits& limits,
                     io::StreamStats* stats);
    bool on_bytes(std::string_view in) override;
    std::size_t buffered() const override { return framer_.buffered(); }
    void on_closed(io::StreamConnection&) override;

    uv_loop_t* loop_;
    SipTcpOwner& owner_;
    std::uint64_t id_;
    bool outbound_ = false;
    bool reported_ = false;   // the owner knows it: its close is reported
    sip::SipStreamFramer framer_;
    io::StreamConnection conn_;
};

}  // namespace turnbridge::gateway::host
