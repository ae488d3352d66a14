// SPDX-License-Identifier: Apache-2.0
#pragma once
// One relayed transport address (RFC 8656 §2, §5): a UDP socket on a worker's loop. Datagrams
// from peers go to turn::Server::on_peer_data; ToPeer actions come back through send().
#include <uv.h>

#include "turnbridge/base/address.hpp"
#include "turnbridge/io/send_batch.hpp"
#include "turnbridge/stun/message.hpp"
#include "turnbridge/turn/relay_binder.hpp"

namespace turnbridge::server {

class Worker;

class RelaySocket {
public:
    // Opens the bound socket `fd` on the worker's loop and starts reading. Returns nullptr (and
    // closes `fd`) on failure, with `err` set to the libuv error.
    static RelaySocket* open(Worker& worker, turn::RelayHandle handle, int fd, const Endpoint& local, int& err);

    // Queues `body` toward `peer` on the worker's SendBatch (sent at the end of the batch).
    void send(const Endpoint& peer, stun::Bytes body, bool dont_fragment);
    // Stops reading and frees the object once libuv has let go of the handle.
    void close();
    const Endpoint& local() const { return local_; }

private:
    RelaySocket(Worker& worker, turn::RelayHandle handle, int fd, const Endpoint& local)
        : worker_(worker), handle_(handle), fd_(fd), local_(local) {}
    void set_dont_fragment(bool on);
    static void on_alloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf);
    static void on_recv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned flags);
    static void on_closed(uv_handle_t* h);

    uv_udp_t udp_{};
    io::UdpTarget target_;
    Worker& worker_;
    turn::RelayHandle handle_;
    int fd_;
    Endpoint local_;
    bool dont_fragment_ = false;
    bool closing_ = false;
};

}  // namespace turnbridge::server
