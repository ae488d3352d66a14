// SPDX-License-Identifier: Apache-2.0
#pragma once
// A client-facing UDP socket of one worker (one of the SO_REUSEPORT group for a `listen`
// address). Each datagram is handed whole to turn::Server::on_client_data.
#include <uv.h>

#include "turnbridge/base/address.hpp"
#include "turnbridge/io/send_batch.hpp"
#include "turnbridge/stun/message.hpp"

namespace turnbridge::server {

class Worker;

class UdpListener {
public:
    UdpListener(Worker& worker, const Endpoint& local) : worker_(worker), local_(local) {}
    // Adopts the bound socket `fd` (closing it on failure) and starts reading; libuv error or 0.
    int start(int fd);
    // head + body + pad zero bytes as one datagram, gathered by the kernel (no copy).
    void send(const Endpoint& to, stun::Bytes head, stun::Bytes body, std::uint8_t pad);
    io::UdpTarget& target() { return target_; }  // for the worker's io::SendBatch
    void close();
    const Endpoint& local() const { return local_; }

private:
    static void on_alloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf);
    static void on_recv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned flags);

    uv_udp_t udp_{};
    io::UdpTarget target_;
    Worker& worker_;
    Endpoint local_;
    bool open_ = false;
};

}  // namespace turnbridge::server
