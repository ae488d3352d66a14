// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/server/tcp_listener.hpp"

#include <unistd.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/socket_util.hpp"
#include "turnbridge/server/tcp_connection.hpp"
#include "turnbridge/server/worker.hpp"

namespace turnbridge::server {
namespace {
constexpr int kBacklog = 1024;
}

int TcpListener::start(int fd) {
    int err = uv_tcp_init(worker_.loop(), &tcp_);
    if (err != 0) {
        ::close(fd);
        return err;
    }
    open_ = true;
    tcp_.data = this;
    err = uv_tcp_open(&tcp_, fd);
    if (err != 0) {
        ::close(fd);
        return err;
    }
    return uv_listen(reinterpret_cast<uv_stream_t*>(&tcp_), kBacklog, on_connection);
}

void TcpListener::close() {
    if (!open_) return;
    open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), nullptr);  // memory is the worker's
}

void TcpListener::on_connection(uv_stream_t* server, int status) {
    auto* self = static_cast<TcpListener*>(server->data);
    if (status < 0) {
        log::debug("{} {}: accept error: {}", to_string(self->transport_), self->local_.to_string(), io::error_text(status));
        return;
    }
    if (!self->open_ || self->worker_.stopping()) return;
    SSL_CTX* tls = nullptr;
    if (self->transport_ == Transport::Tls) tls = self->worker_.tls_context();
    TcpConnection::accept(self->worker_, server, self->local_, self->transport_, tls);
}

}  // namespace turnbridge::server
