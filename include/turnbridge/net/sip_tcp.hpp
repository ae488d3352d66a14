// SPDX-License-Identifier: Apache-2.0
#pragma once
// SIP over TCP on the trunk side (RFC 3261 §18.3): a connection a trunk opened to sip_listen, or
// one we opened toward a TCP trunk. Messages are cut by SipStreamFramer; sends before the
// connect completes wait in a queue. Signaling only: plain copies.
#include <string>
#include <string_view>
#include <uv.h>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/net/sip_stream.hpp"

namespace turnbridge::net {

class SipTcpConnection;

// Queues a copy of `bytes` on `stream` (request and bytes in one malloc); `failed` runs if the
// write later fails (not when cancelled by a close). Returns 0 or the libuv error. Shared by the
// signaling streams (SIP over TCP, WebSocket), where a copy per message is cheap enough.
int write_copy(uv_stream_t* stream, std::string_view bytes, void (*failed)(uv_stream_t*));

class SipTcpOwner {
public:
    virtual ~SipTcpOwner() = default;
    virtual void on_sip_tcp_message(SipTcpConnection& c, std::string_view sip) = 0;
    virtual void on_sip_tcp_closed(SipTcpConnection& c) = 0;   // the object is freed after this returns
};

class SipTcpConnection {
public:
    // Accepts the pending connection on `server`; nullptr on failure.
    static SipTcpConnection* accept(uv_loop_t* loop, uv_stream_t* server, SipTcpOwner& owner, std::uint64_t id);
    // Starts connecting to `to`; nullptr on immediate failure.
    static SipTcpConnection* connect(uv_loop_t* loop, const Endpoint& to, SipTcpOwner& owner, std::uint64_t id);

    void send(std::string_view message);
    void close();
    std::uint64_t id() const { return id_; }
    const Endpoint& peer() const { return peer_; }
    bool outbound() const { return outbound_; }

private:
    SipTcpConnection(SipTcpOwner& owner, std::uint64_t id) : owner_(owner), id_(id) {}
    void write(std::string_view bytes);
    void start_reading();

    uv_tcp_t tcp_{};
    uv_connect_t connect_{};
    SipTcpOwner& owner_;
    std::uint64_t id_;
    Endpoint peer_;
    SipStreamFramer framer_;
    std::vector<std::string> pending_;   // sends before the connection is up
    bool connected_ = false;
    bool outbound_ = false;
    bool closing_ = false;
    char read_buf_[16 * 1024];
};

}  // namespace turnbridge::net
