// SPDX-License-Identifier: Apache-2.0
#pragma once
// WebSocket data framing (RFC 6455 §5): a streaming decoder for client frames (masked, possibly
// fragmented, fed in arbitrary chunks) and an encoder for server frames (unmasked); in the client
// role (toward an AI agent, issue 17) the decoder takes unmasked server frames and every frame we
// send is masked (§5.3). Control frames are answered here: ping -> pong, close -> close echo.
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace turnbridge::sip {

enum class WsOpcode : std::uint8_t { Continuation = 0, Text = 1, Binary = 2, Close = 8, Ping = 9, Pong = 10 };

// RFC 6455 §7.4.1 status codes we send or report.
namespace ws_close {
inline constexpr std::uint16_t Normal = 1000;
inline constexpr std::uint16_t GoingAway = 1001;
inline constexpr std::uint16_t ProtocolError = 1002;
inline constexpr std::uint16_t NoStatus = 1005;        // reported only, never sent
inline constexpr std::uint16_t InvalidPayload = 1007;  // text frame not UTF-8
inline constexpr std::uint16_t TooBig = 1009;
}  // namespace ws_close

// A server frame: FIN set, no mask (RFC 6455 §5.1).
std::string websocket_frame(WsOpcode opcode, std::string_view payload);
std::string websocket_close_frame(std::uint16_t code, std::string_view reason = {});
// A client frame (RFC 6455 §5.3): FIN set, masked with `key` (fresh and unpredictable per frame).
using WsMaskKey = std::array<std::uint8_t, 4>;
std::string websocket_client_frame(WsOpcode opcode, std::string_view payload, const WsMaskKey& key);

struct WsMessage {          // a complete data message (fragments joined)
    bool text = true;
    std::string payload;
};
struct WsReply {            // bytes to send back now (pong, close echo)
    std::string bytes;
};
struct WsClosed {           // the connection is finished: send any WsReply first, then close TCP
    std::uint16_t code = ws_close::NoStatus;
    std::string reason;
    bool by_peer = false;   // the peer sent Close (else we closed for a protocol error)
};
using WsEvent = std::variant<WsMessage, WsReply, WsClosed>;

class WebSocketDecoder {
public:
    // RFC 6455 §10.4: a message over `max_message` bytes (fragments joined) or over
    // `max_fragments` frames is refused with 1009 before it is buffered ([streams] ws_max_message,
    // ws_max_fragments; issue 11: held fragmented messages cost 146 KiB a connection).
    explicit WebSocketDecoder(std::size_t max_message = 64 * 1024, std::size_t max_fragments = 64)
        : max_message_(max_message), max_fragments_(max_fragments) {}
    // The client role: frames from the server must be unmasked (§5.1), and the replies and
    // close() frames are masked with keys from `mask`.
    WebSocketDecoder(std::size_t max_message, std::size_t max_fragments, std::function<WsMaskKey()> mask)
        : max_message_(max_message), max_fragments_(max_fragments), mask_(std::move(mask)) {}

    // Appends events to `out`; after a WsClosed every further byte is ignored.
    void feed(std::string_view bytes, std::vector<WsEvent>& out);
    // Our own Close (e.g. shutdown); the peer's answering Close then ends without an echo.
    std::string close(std::uint16_t code, std::string_view reason = {});
    bool closed() const { return closed_; }
    // Bytes held for an unfinished frame or message (0 between messages).
    std::size_t buffered() const { return closed_ ? 0 : buffer_.size() - pos_ + message_.size() + (in_message_ ? 1 : 0); }

private:
    bool parse_one(std::vector<WsEvent>& out);   // false: need more bytes or closed
    void consume(std::size_t n);                 // marks parsed bytes; feed() drops them once
    void fail(std::uint16_t code, std::string_view why, std::vector<WsEvent>& out);
    void on_control(WsOpcode op, std::string payload, std::vector<WsEvent>& out);
    std::string frame(WsOpcode op, std::string_view payload) const;   // ours, masked if a client
    std::string close_frame(std::uint16_t code, std::string_view reason = {}) const;

    std::size_t max_message_;
    std::size_t max_fragments_;
    std::function<WsMaskKey()> mask_;   // set: the client role
    std::size_t fragments_ = 0;   // frames of the current data message
    std::string buffer_;      // unparsed bytes (from pos_ on, during a feed)
    std::size_t pos_ = 0;
    std::string message_;     // fragments of the current data message
    bool in_message_ = false;
    bool message_text_ = true;
    bool close_sent_ = false;
    bool closed_ = false;
};

bool valid_utf8(std::string_view s);

}  // namespace turnbridge::sip
