// SPDX-License-Identifier: Apache-2.0
#pragma once
// The WebSocket opening handshake, client side (below) and the server side (RFC 6455 §4.2) for SIP over WebSocket
// (RFC 7118 §4: subprotocol "sip"). Takes the bytes buffered so far on a new connection and
// says what to do: wait, upgrade, reject, or hand a plain GET to the page server.
#include <cstddef>
#include <string>
#include <string_view>

namespace turnbridge::sip {

// RFC 6455 §4.2.2: base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
std::string websocket_accept(std::string_view key);

struct HandshakeOptions {
    std::string_view path = "/sip";           // where WebSocket upgrades are accepted
    std::size_t max_header_bytes = 8192;      // a header block longer than this is refused
};

struct Handshake {
    enum class Kind {
        NeedMore,   // no blank line yet: keep reading
        Upgrade,    // send `response` (101), then speak WebSocket frames
        PlainGet,   // GET/HEAD without Upgrade: the caller serves `target` (e.g. the call page)
        Reject,     // send `response` (4xx) and close
    };
    Kind kind = Kind::NeedMore;
    std::string response;     // complete HTTP response bytes for Upgrade and Reject
    std::size_t consumed = 0; // bytes of the request header block; frames start after it
    std::string method;
    std::string target;       // request-target, e.g. "/sip" or "/"
    std::string origin;       // Origin header, for the caller's allow-list (RFC 6455 §10.2)
    std::string reason;       // why a Reject, naming the header
};

Handshake websocket_handshake(std::string_view buffered, const HandshakeOptions& options = {});

// The client side (RFC 6455 §4.1), toward an AI agent's Media Streams URL (issue 17).
// `key`: base64 of 16 fresh random bytes; `extra_headers`: complete lines ("Authorization: ...\r\n").
std::string websocket_client_request(std::string_view host, std::string_view target, std::string_view key,
                                     std::string_view extra_headers = {});
struct ClientHandshake {
    enum class Kind { NeedMore, Open, Fail };
    Kind kind = Kind::NeedMore;
    std::size_t consumed = 0;   // bytes of the response header block; frames start after it
    int status = 0;
    std::string reason;         // why a Fail, naming the header
};
ClientHandshake websocket_client_response(std::string_view buffered, std::string_view key,
                                          std::size_t max_header_bytes = 8192);

}  // namespace turnbridge::sip
