// SPDX-License-Identifier: Apache-2.0
#pragma once
// A client-facing TCP listener of one worker (one of the SO_REUSEPORT group for a `listen` or
// `tls_listen` address). Accepted connections stay on this worker for their whole life.
#include <uv.h>

#include "turnbridge/base/address.hpp"

namespace turnbridge::server {

class Worker;

class TcpListener {
public:
    // `transport` is Tcp, or Tls for a tls_listen address.
    TcpListener(Worker& worker, const Endpoint& local, Transport transport)
        : worker_(worker), local_(local), transport_(transport) {}
    // Adopts the bound, listening socket `fd` (closing it on failure); libuv error or 0.
    int start(int fd);
    void close();

private:
    static void on_connection(uv_stream_t* server, int status);

    uv_tcp_t tcp_{};
    Worker& worker_;
    Endpoint local_;
    Transport transport_;
    bool open_ = false;
};

}  // namespace turnbridge::server
