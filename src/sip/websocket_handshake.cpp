// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/websocket_handshake.hpp"

#include <openssl/sha.h>

#include <optional>
#include <vector>

#include "text.hpp"
#include "turnbridge/base/base64.hpp"

namespace turnbridge::sip {
namespace {

using text::has_token;
using text::iequal;
using text::trim;

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 §1.3

struct Request {
    std::string_view method, target, version;
    std::vector<std::pair<std::string_view, std::string_view>> headers;
    std::optional<std::string_view> get(std::string_view name) const {
        for (const auto& [k, v] : headers)
            if (iequal(k, name)) return v;
        return std::nullopt;
    }
};

// The header fields after the start line (RFC 9112 §5); false on a malformed one.
bool parse_fields(std::string_view head, Request& r) {
    while (!head.empty()) {
        auto eol = head.find("\r\n");
        eol = head.find("\r\n");
        const auto h = head.substr(0, eol);
        head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
        if (h.empty()) continue;
        const auto colon = h.find(':');
        if (colon == std::string_view::npos || colon == 0 || h.front() == ' ' || h.front() == '\t') return false;
        r.headers.emplace_back(h.substr(0, colon), trim(h.substr(colon + 1)));
    }
    return true;
}

bool parse_request(std::string_view head, Request& r) {
    auto eol = head.find("\r\n");
    const auto line = head.substr(0, eol);
    const auto sp1 = line.find(' ');
    const auto sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return false;
    r.method = line.substr(0, sp1);
    r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    r.version = line.substr(sp2 + 1);
    if (r.target.empty() || r.version.substr(0, 5) != "HTTP/") return false;
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
    return parse_fields(head, r);
}

Handshake reject(Handshake h, int status, std::string_view phrase, std::string_view reason,
                 std::string_view extra_headers = {}) {
    h.kind = Handshake::Kind::Reject;
    h.reason = std::string(reason);
    const std::string body = std::string(reason) + "\n";
    h.response = "HTTP/1.1 " + std::to_string(status) + " " + std::string(phrase) + "\r\n" + std::string(extra_headers) +
                 "Content-Type: text/plain\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"
                 "Content-Length: " + std::to_string(body.size()) +
                 "\r\nConnection: close\r\n\r\n" + body;
    return h;
}

bool valid_key(std::string_view key) {
    // RFC 6455 §4.2.1: base64 of 16 random bytes, so 24 characters ending in "==".
    if (key.size() != 24 || key.substr(22) != "==") return false;
    const auto bytes = base64_decode(key);
    return bytes && bytes->size() == 16;
}

}  // namespace

std::string websocket_accept(std::string_view key) {
    std::string input(key);
    input += kGuid;
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    return base64_encode(digest);
}

Handshake websocket_handshake(std::string_view buffered, const HandshakeOptions& options) {
    Handshake h;
    const auto end = buffered.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (buffered.size() > options.max_header_bytes)
            return reject(h, 431, "Request Header Fields Too Large", "request header block too large");
        return h;
    }
    h.consumed = end + 4;
    if (h.consumed > options.max_header_bytes)
        return reject(h, 431, "Request Header Fields Too Large", "request header block too large");
    Request r;
    if (!parse_request(buffered.substr(0, end + 2), r)) return reject(h, 400, "Bad Request", "malformed request line or header");
    h.method = std::string(r.method);
    h.target = std::string(r.target);
    h.origin = std::string(r.get("Origin").value_or(""));
    const auto upgrade = r.get("Upgrade");
    if (!upgrade || !has_token(*upgrade, "websocket")) {
        if (r.method != "GET" && r.method != "HEAD") return reject(h, 405, "Method Not Allowed", "only GET is served", "Allow: GET, HEAD\r\n");
        h.kind = Handshake::Kind::PlainGet;
        return h;
    }
    // RFC 6455 §4.2.1: the checks in the order the RFC lists them, each naming its header.
    if (r.method != "GET") return reject(h, 405, "Method Not Allowed", "WebSocket upgrade needs GET", "Allow: GET\r\n");
    if (r.version != "HTTP/1.1") return reject(h, 400, "Bad Request", "WebSocket upgrade needs HTTP/1.1");
    const auto query = h.target.find('?');
    if (std::string_view(h.target).substr(0, query) != options.path)
        return reject(h, 404, "Not Found", "no WebSocket endpoint at this path");
    if (!r.get("Host")) return reject(h, 400, "Bad Request", "missing Host");
    const auto connection = r.get("Connection");
    if (!connection || !has_token(*connection, "upgrade")) return reject(h, 400, "Bad Request", "Connection must include Upgrade");
    const auto version = r.get("Sec-WebSocket-Version");
    if (!version || *version != "13")
        return reject(h, 426, "Upgrade Required", "Sec-WebSocket-Version must be 13", "Sec-WebSocket-Version: 13\r\n");
    const auto key = r.get("Sec-WebSocket-Key");
    if (!key || !valid_key(*key)) return reject(h, 400, "Bad Request", "bad Sec-WebSocket-Key");
    // RFC 7118 §4: SIP clients offer "sip"; we speak nothing else.
    const auto protocol = r.get("Sec-WebSocket-Protocol");
    if (!protocol || !has_token(*protocol, "sip"))
        return reject(h, 400, "Bad Request", "Sec-WebSocket-Protocol must include sip (RFC 7118)");
    h.kind = Handshake::Kind::Upgrade;
    h.response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
                 websocket_accept(*key) + "\r\nSec-WebSocket-Protocol: sip\r\n\r\n";
    return h;
}

std::string websocket_client_request(std::string_view host, std::string_view target, std::string_view key,
                                     std::string_view extra_headers) {
    std::string r = "GET " + std::string(target.empty() ? "/" : target) + " HTTP/1.1\r\nHost: " + std::string(host) +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + std::string(key) +
                    "\r\nSec-WebSocket-Version: 13\r\nUser-Agent: turnbridge\r\n";
    r += extra_headers;
    r += "\r\n";
    return r;
}

ClientHandshake websocket_client_response(std::string_view buffered, std::string_view key, std::size_t max_header_bytes) {
    ClientHandshake h;
    auto fail = [&](std::string_view why) {
        h.kind = ClientHandshake::Kind::Fail;
        h.reason = std::string(why);
        return h;
    };
    const auto end = buffered.find("\r\n\r\n");
    if (end == std::string_view::npos || end + 4 > max_header_bytes)
        return buffered.size() > max_header_bytes ? fail("response header block too large") : h;
    h.consumed = end + 4;
    // RFC 6455 §4.1, the client's checks of the server's handshake, each naming its header.
    const auto head = buffered.substr(0, end + 2);
    const auto eol = head.find("\r\n");
    const auto line = head.substr(0, eol);
    if (line.substr(0, 9) != "HTTP/1.1 " || line.size() < 12) return fail("malformed status line");
    h.status = 0;
    for (char c : line.substr(9, 3)) {
        if (c < '0' || c > '9') return fail("malformed status line");
        h.status = h.status * 10 + (c - '0');
    }
    if (h.status != 101) return fail("status " + std::to_string(h.status) + ", not 101");
    Request r;
    if (!parse_fields(head.substr(eol + 2), r)) return fail("malformed header");
    const auto upgrade = r.get("Upgrade");
    if (!upgrade || !has_token(*upgrade, "websocket")) return fail("Upgrade is not websocket");
    const auto connection = r.get("Connection");
    if (!connection || !has_token(*connection, "upgrade")) return fail("Connection does not include Upgrade");
    const auto accept = r.get("Sec-WebSocket-Accept");
    if (!accept || *accept != websocket_accept(key)) return fail("Sec-WebSocket-Accept does not match the key");
    if (r.get("Sec-WebSocket-Extensions")) return fail("Sec-WebSocket-Extensions not offered");
    h.kind = ClientHandshake::Kind::Open;
    return h;
}

}  // namespace turnbridge::sip
