// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: bytes after a WebSocket connection opens, fed to the handshake and then to
// the frame decoder in chunks (sizes from the first byte), checking what comes out.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "turnbridge/sip/websocket_frame.hpp"
#include "turnbridge/sip/websocket_handshake.hpp"

using namespace turnbridge::sip;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t chunk = (data[0] & 0x3F) + 1;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    const auto h = websocket_handshake(in);
    if (h.consumed > in.size()) __builtin_trap();
    if (h.kind == Handshake::Kind::Upgrade) in.remove_prefix(h.consumed);
    constexpr std::size_t kMax = 4096;
    WebSocketDecoder d(kMax);
    std::vector<WsEvent> out;
    bool closed = false;
    while (!in.empty()) {
        const auto n = std::min(chunk, in.size());
        out.clear();
        d.feed(in.substr(0, n), out);
        in.remove_prefix(n);
        for (const auto& e : out) {
            if (closed) __builtin_trap();  // nothing after WsClosed
            if (auto* m = std::get_if<WsMessage>(&e)) {
                if (m->payload.size() > kMax) __builtin_trap();
                if (m->text && !valid_utf8(m->payload)) __builtin_trap();
            }
            if (auto* r = std::get_if<WsReply>(&e); r && (r->bytes.size() < 2 || (r->bytes[0] & 0x80) == 0)) __builtin_trap();
            if (std::holds_alternative<WsClosed>(e)) closed = true;
        }
    }
    if (closed != d.closed()) __builtin_trap();
    return 0;
}
