// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/server/tcp_connection.hpp"

#include <algorithm>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/stream_limits.hpp"
#include "turnbridge/io/udp_send.hpp"
#include "turnbridge/server/worker.hpp"

namespace turnbridge::server {
namespace {

std::string_view text(stun::Bytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Relayed data from a client: ChannelData (first byte 0x40-0x7F, RFC 8656 §12) or a Send
// indication (STUN type 0x0016). A record is judged by the frame it starts with; clients write
// one message per record.
bool carries_relayed_data(std::string_view plain) {
    if (plain.size() < 2) return false;
    const auto b0 = static_cast<std::uint8_t>(plain[0]);
    if (b0 >= 0x40 && b0 <= 0x7F) return true;
    return b0 == 0x00 && plain[1] == 0x16;
}

}  // namespace

TcpConnection::TcpConnection(Worker& worker, const Endpoint& local, Transport transport)
    : worker_(worker), framer_(kMaxFrameBuffer),
      conn_(worker.loop(), io::StreamKind::Turn, io::guard_limits(worker.config().streams, io::StreamKind::Turn),
            worker.stream_stats(), *this, *this) {
    five_tuple_.transport = transport;
    five_tuple_.server = local;
    const uv_buf_t shared = worker.stream_buffer();   // reads of every connection of the worker
    conn_.use_read_buffer(shared.base, shared.len);
}

TcpConnection::~TcpConnection() = default;

void TcpConnection::accept(Worker& worker, uv_stream_t* server, const Endpoint& local, Transport transport,
                           SSL_CTX* tls) {
    auto* c = new TcpConnection(worker, local, transport);
    // Refused by the gate: counted in /metrics, no log line (the refusals are what an attack looks like).
    io::ConnectionGate* gate = worker.stream_gates() ? &worker.stream_gates()->gate(io::StreamKind::Turn) : nullptr;
    if (!c->conn_.accept(server, gate, transport == Transport::Tls ? tls : nullptr)) return;   // on_closed frees it
    if (transport == Transport::Tls && tls == nullptr) {
        log::warn("tls {}: no TLS context for a new connection; closing it", local.to_string());
        return c->conn_.close();
    }
    c->five_tuple_.client = c->conn_.peer();
    c->conn_.set_name(c->five_tuple_.to_string());
    c->registered_ = true;
    worker.add_connection(c);
    log::debug("connection opened: {}", c->five_tuple_.to_string());
}

void TcpConnection::send(stun::Bytes head, stun::Bytes body, std::uint8_t pad) {
    if (conn_.closing()) return;
    std::string_view pieces[3];
    std::size_t n = 0;
    pieces[n++] = text(head);
    if (!body.empty()) pieces[n++] = text(body);
    if (pad != 0) pieces[n++] = std::string_view(io::kZeroPad, pad & 3u);
    if (body.empty()) {
        // A response: at once, after what was relayed before it.
        conn_.send({pieces, n});
        return;
    }
    // Relayed data may be lost like on UDP when the client does not read.
    if (conn_.unsent() > kMaxRelayBacklog) return;
    // The record's header and tag are wire bytes of relayed data too.
    if (const std::size_t overhead = conn_.append({pieces, n}); overhead > 0)
        worker_.add_wire_overhead(five_tuple_, turn::Direction::RelayToClient, overhead);
    if (!listed_ && conn_.has_batch()) {
        listed_ = true;
        worker_.stream_pending(this);
    }
}

void TcpConnection::flush_pending() {
    listed_ = false;
    conn_.flush();
}

void TcpConnection::sweep(std::uint64_t now_ms, bool allocated) {
    conn_.guard().set_idle_exempt(allocated);
    conn_.sweep(now_ms);
}

bool TcpConnection::on_bytes(std::string_view in) {
    stun::Bytes data(reinterpret_cast<const std::uint8_t*>(in.data()), in.size());
    while (!data.empty() && !conn_.closing()) {
        // Feed no more than the framer holds, so a burst of small frames never looks like overflow.
        const std::size_t chunk = std::min(data.size(), kMaxFrameBuffer - framer_.buffered());
        if (chunk == 0 || !framer_.feed(data.first(chunk))) {
            log::debug("connection {}: frame too large; closing", five_tuple_.to_string());
            return false;
        }
        data = data.subspan(chunk);
        for (;;) {
            stun::Bytes frame;
            const auto status = framer_.next(frame);
            if (status == turn::StreamFramer::Status::NeedMore) break;
            if (status == turn::StreamFramer::Status::Error) {
                // RFC 8656 §12.5: neither STUN nor ChannelData; the stream cannot be resynchronised.
                log::debug("connection {}: framing error; closing", five_tuple_.to_string());
                worker_.flush_sends();  // earlier frames' payloads point into the framer
                return false;
            }
            conn_.guard().on_message(uv_now(worker_.loop()));
            // The frames of one read share a batch: what they relay leaves together below.
            worker_.on_client_data(five_tuple_, frame, true);
            if (conn_.closing()) break;
        }
        // Queued payloads point into this read or the framer, which the next feed may move.
        worker_.flush_sends();
    }
    return true;
}

// Wire bytes include TLS framing: a record that carried relayed data adds its header and tag
// to the allocation's client leg.
void TcpConnection::on_tls_record(std::string_view plain, std::size_t record_bytes) {
    if (record_bytes > plain.size() && carries_relayed_data(plain))
        worker_.add_wire_overhead(five_tuple_, turn::Direction::ClientToRelay, record_bytes - plain.size());
}

void TcpConnection::on_closed(io::StreamConnection&) {
    if (listed_) worker_.stream_gone(this);
    if (registered_) {
        worker_.remove_connection(this);
        // RFC 8656 §5: the allocation of a stream 5-tuple ends with the connection.
        worker_.connection_closed(five_tuple_);
    }
    delete this;
}

}  // namespace turnbridge::server
