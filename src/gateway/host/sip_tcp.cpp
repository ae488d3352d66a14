// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/host/sip_tcp.hpp"

#include "turnbridge/base/log.hpp"

namespace turnbridge::gateway::host {

SipTcpConnection::SipTcpConnection(uv_loop_t* loop, SipTcpOwner& owner, std::uint64_t id, const io::GuardLimits& limits,
                                   io::StreamStats* stats)
    : loop_(loop), owner_(owner), id_(id), conn_(loop, io::StreamKind::Sip, limits, stats, *this, *this) {}

SipTcpConnection::~SipTcpConnection() = default;

SipTcpConnection* SipTcpConnection::accept(uv_loop_t* loop, uv_stream_t* server, SipTcpOwner& owner, std::uint64_t id,
                                           io::ConnectionGate* gate, const io::GuardLimits& limits) {
    auto* c = new SipTcpConnection(loop, owner, id, limits, gate ? &gate->stats() : nullptr);
    if (!c->conn_.accept(server, gate)) return nullptr;   // it frees itself when its handle is gone
    c->reported_ = true;
    return c;
}

SipTcpConnection* SipTcpConnection::connect(uv_loop_t* loop, const Endpoint& to, SipTcpOwner& owner, std::uint64_t id,
                                            const SipTlsClient* tls) {
    // Our own connection toward a trunk: no gate, no idle timeout (the trunk may send inbound
    // calls over it); its connect and handshake have kTrunkConnectTimeoutMs in the host.
    io::GuardLimits limits;
    limits.handshake_ms = 0;
    auto* c = new SipTcpConnection(loop, owner, id, limits, nullptr);
    c->outbound_ = true;
    std::optional<io::TlsClient> client;
    if (tls != nullptr) {
        c->conn_.set_name(tls->trunk);
        client = io::TlsClient{tls->ctx, tls->server_name};
    }
    if (!c->conn_.connect(to, client ? &*client : nullptr)) return nullptr;   // it frees itself
    c->reported_ = true;
    return c;
}

bool SipTcpConnection::on_bytes(std::string_view in) {
    framer_.feed(in);
    std::string message;
    while (!conn_.closing()) {
        const auto st = framer_.next(message);
        if (st == sip::SipStreamFramer::Status::NeedMore) return true;
        if (st == sip::SipStreamFramer::Status::Error) {
            log::debug("sip {} {}: unframeable stream (Content-Length); closing", secure() ? "tls" : "tcp", conn_.name());
            return false;
        }
        conn_.guard().on_message(uv_now(loop_));
        owner_.on_sip_tcp_message(*this, message);
    }
    return true;
}

void SipTcpConnection::on_closed(io::StreamConnection&) {
    if (reported_) owner_.on_sip_tcp_closed(*this);
    delete this;
}

}  // namespace turnbridge::gateway::host
