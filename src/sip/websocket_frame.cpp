// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/websocket_frame.hpp"

#include <algorithm>

namespace turnbridge::sip {
namespace {

std::string header(WsOpcode opcode, std::size_t len, bool masked = false) {
    std::string h;
    const char mask_bit = masked ? static_cast<char>(0x80) : 0;
    h.push_back(static_cast<char>(0x80 | static_cast<std::uint8_t>(opcode)));
    if (len < 126) {
        h.push_back(static_cast<char>(len | (masked ? 0x80 : 0)));
    } else if (len <= 0xFFFF) {
        h.push_back(static_cast<char>(126 | mask_bit));
        h.push_back(static_cast<char>(len >> 8));
        h.push_back(static_cast<char>(len & 0xFF));
    } else {
        h.push_back(static_cast<char>(127 | mask_bit));
        for (int i = 7; i >= 0; --i) h.push_back(static_cast<char>((static_cast<std::uint64_t>(len) >> (8 * i)) & 0xFF));
    }
    return h;
}

// RFC 6455 §7.4.1/§7.4.2: codes a peer may put on the wire.
bool valid_close_code(std::uint16_t c) {
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

std::uint8_t byte(std::string_view s, std::size_t i) { return static_cast<std::uint8_t>(s[i]); }

}  // namespace

bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const std::uint8_t c = byte(s, i);
        std::size_t n;
        std::uint32_t cp;
        if (c < 0x80) { ++i; continue; }
        if ((c & 0xE0) == 0xC0) n = 1, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0) n = 2, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0) n = 3, cp = c & 0x07;
        else return false;
        if (i + n >= s.size()) return false;  // truncated sequence
        for (std::size_t k = 1; k <= n; ++k) {
            const std::uint8_t d = byte(s, i + k);
            if ((d & 0xC0) != 0x80) return false;
            cp = cp << 6 | (d & 0x3F);
        }
        // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are all invalid.
        static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n + 1;
    }
    return true;
}

std::string websocket_frame(WsOpcode opcode, std::string_view payload) {
    std::string f = header(opcode, payload.size());
    f.append(payload);
    return f;
}

static std::string close_payload(std::uint16_t code, std::string_view reason) {
    std::string payload;
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xFF));
    payload.append(reason.substr(0, 123));  // §5.5: control payloads are at most 125 bytes
    return payload;
}

std::string websocket_close_frame(std::uint16_t code, std::string_view reason) {
    return websocket_frame(WsOpcode::Close, close_payload(code, reason));
}

std::string websocket_client_frame(WsOpcode opcode, std::string_view payload, const WsMaskKey& key) {
    std::string f = header(opcode, payload.size(), true);
    f.append(reinterpret_cast<const char*>(key.data()), key.size());
    const std::size_t at = f.size();
    f.append(payload);
    for (std::size_t i = 0; i < payload.size(); ++i) f[at + i] = static_cast<char>(f[at + i] ^ key[i & 3]);
    return f;
}

std::string WebSocketDecoder::frame(WsOpcode op, std::string_view payload) const {
    return mask_ ? websocket_client_frame(op, payload, mask_()) : websocket_frame(op, payload);
}

std::string WebSocketDecoder::close_frame(std::uint16_t code, std::string_view reason) const {
    return frame(WsOpcode::Close, close_payload(code, reason));
}

std::string WebSocketDecoder::close(std::uint16_t code, std::string_view reason) {
    close_sent_ = true;
    return close_frame(code, reason);
}

void WebSocketDecoder::feed(std::string_view bytes, std::vector<WsEvent>& out) {
    if (closed_) return;
    buffer_.append(bytes);
    std::size_t guard = buffer_.size() + 1;  // each parsed frame consumes at least 2 bytes
    while (!closed_ && guard-- > 0 && parse_one(out)) {
    }
    // Parsed frames leave in one erase per feed: erasing each small frame at once moved the rest
    // of a 16 KiB read hundreds of times (a ping flood, issue 11).
    buffer_.erase(0, std::min(pos_, buffer_.size()));
    pos_ = 0;
    // A large frame's buffer is not kept for the next small ones.
    if (buffer_.empty() && buffer_.capacity() > 4096) std::string().swap(buffer_);
}

void WebSocketDecoder::fail(std::uint16_t code, std::string_view why, std::vector<WsEvent>& out) {
    if (!close_sent_) out.push_back(WsReply{close_frame(code, why)});
    close_sent_ = true;
    closed_ = true;
    buffer_.clear();
    message_.clear();
    out.push_back(WsClosed{code, std::string(why), false});
}

void WebSocketDecoder::consume(std::size_t n) { pos_ += n; }

bool WebSocketDecoder::parse_one(std::vector<WsEvent>& out) {
    const std::string_view in = std::string_view(buffer_).substr(pos_);
    if (in.size() < 2) return false;
    const std::uint8_t b0 = byte(in, 0), b1 = byte(in, 1);
    const bool fin = b0 & 0x80;
    const auto op = static_cast<WsOpcode>(b0 & 0x0F);
    // RFC 6455 §5.2: no extension was negotiated, so every RSV bit must be zero.
    if (b0 & 0x70) return fail(ws_close::ProtocolError, "RSV bits set", out), false;
    // §5.1: a client masks every frame; a server masks none.
    const bool masked = (b1 & 0x80) != 0;
    if (!mask_ && !masked) return fail(ws_close::ProtocolError, "client frame not masked", out), false;
    if (mask_ && masked) return fail(ws_close::ProtocolError, "server frame masked", out), false;
    const bool control = (b0 & 0x08) != 0;
    if (op != WsOpcode::Continuation && op != WsOpcode::Text && op != WsOpcode::Binary && op != WsOpcode::Close &&
        op != WsOpcode::Ping && op != WsOpcode::Pong)
        return fail(ws_close::ProtocolError, "unknown opcode", out), false;
    std::uint64_t len = b1 & 0x7F;
    std::size_t at = 2;
    if (len == 126 || len == 127) {
        const std::size_t n = len == 126 ? 2 : 8;
        if (in.size() < at + n) return false;
        len = 0;
        for (std::size_t i = 0; i < n; ++i) len = len << 8 | byte(in, at + i);
        at += n;
        if (n == 8 && (len >> 63)) return fail(ws_close::ProtocolError, "payload length MSB set", out), false;
    }
    // §5.5: control frames are short and never fragmented.
    if (control && (len > 125 || !fin)) return fail(ws_close::ProtocolError, "bad control frame", out), false;
    if (!control) {
        if (op == WsOpcode::Continuation && !in_message_)
            return fail(ws_close::ProtocolError, "continuation without a message", out), false;
        if (op != WsOpcode::Continuation && in_message_)
            return fail(ws_close::ProtocolError, "new message inside a fragmented one", out), false;
        // Refuse before buffering: a header announcing too much is enough.
        if (len > max_message_ || message_.size() + len > max_message_)
            return fail(ws_close::TooBig, "message too big", out), false;
        // Many tiny fragments cost a frame each to parse and keep the message open: cap them.
        if ((op == WsOpcode::Continuation ? fragments_ : 0) + 1 > max_fragments_)
            return fail(ws_close::TooBig, "too many fragments", out), false;
    }
    const std::size_t key_size = masked ? 4 : 0;
    if (in.size() < at + key_size + len) return false;
    std::uint8_t mask[4] = {0, 0, 0, 0};
    for (std::size_t i = 0; i < key_size; ++i) mask[i] = byte(in, at + i);
    at += key_size;
    auto unmask = [&](std::string& s, std::size_t from) {
        for (std::size_t i = 0; from + i < s.size(); ++i) s[from + i] = static_cast<char>(s[from + i] ^ mask[i & 3]);
    };
    if (control) {
        std::string payload(in.substr(at, static_cast<std::size_t>(len)));
        unmask(payload, 0);
        consume(at + static_cast<std::size_t>(len));
        on_control(op, std::move(payload), out);
        return !closed_;
    }
    if (op != WsOpcode::Continuation) {
        in_message_ = true;
        message_text_ = op == WsOpcode::Text;
        fragments_ = 0;
    }
    ++fragments_;
    // Straight into the message, unmasked in place: one copy of a held fragment, not three
    // (issue 11: 146 KiB per connection for a 60 KB unfinished message).
    const std::size_t from = message_.size();
    message_.append(in.substr(at, static_cast<std::size_t>(len)));
    unmask(message_, from);
    consume(at + static_cast<std::size_t>(len));
    if (fin) {
        in_message_ = false;
        if (message_text_ && !valid_utf8(message_)) return fail(ws_close::InvalidPayload, "text message not UTF-8", out), false;
        out.push_back(WsMessage{message_text_, std::move(message_)});
        message_.clear();
    }
    return true;
}

void WebSocketDecoder::on_control(WsOpcode op, std::string payload, std::vector<WsEvent>& out) {
    if (op == WsOpcode::Ping) {
        out.push_back(WsReply{frame(WsOpcode::Pong, payload)});  // §5.5.2
        return;
    }
    if (op == WsOpcode::Pong) return;  // §5.5.3: unsolicited pongs are fine
    // §5.5.1: Close with an optional status code and UTF-8 reason.
    std::uint16_t code = ws_close::NoStatus;
    std::string reason;
    if (payload.size() == 1) return fail(ws_close::ProtocolError, "close payload of 1 byte", out);
    if (payload.size() >= 2) {
        code = static_cast<std::uint16_t>(byte(payload, 0) << 8 | byte(payload, 1));
        reason = payload.substr(2);
        if (!valid_close_code(code)) return fail(ws_close::ProtocolError, "invalid close code", out);
        if (!valid_utf8(reason)) return fail(ws_close::InvalidPayload, "close reason not UTF-8", out);
    }
    if (!close_sent_) out.push_back(WsReply{close_frame(code == ws_close::NoStatus ? ws_close::Normal : code)});
    close_sent_ = true;
    closed_ = true;
    buffer_.clear();
    out.push_back(WsClosed{code, std::move(reason), true});
}

}  // namespace turnbridge::sip
