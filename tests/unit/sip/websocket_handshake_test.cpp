// SPDX-License-Identifier: Apache-2.0
// WebSocket opening handshake for SIP (RFC 6455 §4.2, RFC 7118 §4).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "turnbridge/sip/websocket_handshake.hpp"

using namespace turnbridge::sip;

namespace {

// What Chromium sends for `new WebSocket("ws://127.0.0.1:8080/sip", "sip")` (JsSIP's socket).
std::string chromium_upgrade(const std::string& path = "/sip", const std::string& protocol = "sip",
                             const std::string& version = "13", const std::string& key = "dGhlIHNhbXBsZSBub25jZQ==") {
    std::string r = "GET " + path + " HTTP/1.1\r\n"
                    "Host: 127.0.0.1:8080\r\n"
                    "Connection: Upgrade\r\n"
                    "Pragma: no-cache\r\n"
                    "Cache-Control: no-cache\r\n"
                    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0.0.0 Safari/537.36\r\n"
                    "Upgrade: websocket\r\n"
                    "Origin: http://127.0.0.1:8080\r\n"
                    "Sec-WebSocket-Version: " + version + "\r\n"
                    "Accept-Encoding: gzip, deflate, br\r\n"
                    "Sec-WebSocket-Key: " + key + "\r\n"
                    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    if (!protocol.empty()) r += "Sec-WebSocket-Protocol: " + protocol + "\r\n";
    return r + "\r\n";
}

}  // namespace

TEST_CASE("Sec-WebSocket-Accept of the RFC 6455 §1.3 example key") {
    CHECK(websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(websocket_accept("x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");  // computed independently with Python hashlib
}

TEST_CASE("an upgrade offering sip gets 101 with the accept value and subprotocol sip (RFC 7118 §4)") {
    const auto req = chromium_upgrade();
    const std::string first_frame = "\x81\x80\x01\x02\x03\x04";
    const auto h = websocket_handshake(req + first_frame);
    REQUIRE(h.kind == Handshake::Kind::Upgrade);
    CHECK(h.consumed == req.size());
    CHECK(h.origin == "http://127.0.0.1:8080");
    CHECK(h.response ==
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n");
    // No permessage-deflate in the answer: we negotiate no extension (RFC 6455 §9.1).
    CHECK(h.response.find("Extensions") == std::string::npos);
}

TEST_CASE("a partial header block needs more bytes; a byte at a time reaches the same answer") {
    const auto req = chromium_upgrade();
    for (std::size_t n = 0; n < req.size(); ++n) {
        CAPTURE(n);
        REQUIRE(websocket_handshake(std::string_view(req).substr(0, n)).kind == Handshake::Kind::NeedMore);
    }
    CHECK(websocket_handshake(req).kind == Handshake::Kind::Upgrade);
}

TEST_CASE("sip among several offered subprotocols is chosen") {
    const auto h = websocket_handshake(chromium_upgrade("/sip", "chat, SIP"));
    REQUIRE(h.kind == Handshake::Kind::Upgrade);
    CHECK(h.response.find("Sec-WebSocket-Protocol: sip\r\n") != std::string::npos);
}

TEST_CASE("bad upgrades are refused with a status and a reason naming the header (RFC 6455 §4.2.1)") {
    struct Row { std::string name; std::string request; int status; std::string reason_part; };
    std::string no_conn = chromium_upgrade();
    no_conn.replace(no_conn.find("Connection: Upgrade"), 19, "Connection: keep-alive");
    std::string no_host = chromium_upgrade();
    no_host.erase(no_host.find("Host:"), no_host.find("\r\n", no_host.find("Host:")) + 2 - no_host.find("Host:"));
    std::string post = chromium_upgrade();
    post.replace(0, 3, "POST");
    const std::vector<Row> rows = {
        {"no subprotocol", chromium_upgrade("/sip", ""), 400, "Sec-WebSocket-Protocol must include sip"},
        {"other subprotocol", chromium_upgrade("/sip", "chat"), 400, "Sec-WebSocket-Protocol must include sip"},
        {"version 8", chromium_upgrade("/sip", "sip", "8"), 426, "Sec-WebSocket-Version must be 13"},
        {"short key", chromium_upgrade("/sip", "sip", "13", "c2hvcnQ="), 400, "bad Sec-WebSocket-Key"},
        {"key not base64", chromium_upgrade("/sip", "sip", "13", "!!!!!!!!!!!!!!!!!!!!!!=="), 400, "bad Sec-WebSocket-Key"},
        {"wrong path", chromium_upgrade("/ws"), 404, "no WebSocket endpoint"},
        {"no Connection: Upgrade", no_conn, 400, "Connection must include Upgrade"},
        {"no Host", no_host, 400, "missing Host"},
        {"POST upgrade", post, 405, "needs GET"},
        {"garbage", "\x16\x03\x01\x02\x05\x01\r\n\r\n", 400, "malformed"},
        {"huge header", "GET /sip HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", 431, "too large"},
        {"huge without end", "GET /sip HTTP/1.1\r\nX: " + std::string(9000, 'a'), 431, "too large"},
    };
    for (const auto& r : rows) {
        CAPTURE(r.name);
        const auto h = websocket_handshake(r.request);
        REQUIRE(h.kind == Handshake::Kind::Reject);
        CHECK(h.response.rfind("HTTP/1.1 " + std::to_string(r.status) + " ", 0) == 0);
        CHECK(h.reason.find(r.reason_part) != std::string::npos);
        CHECK(h.response.find(h.reason) != std::string::npos);  // the body says why, for humans
        CHECK(h.response.find("\r\nX-Content-Type-Options: nosniff\r\n") != std::string::npos);
    }
    CHECK(websocket_handshake(chromium_upgrade("/sip", "sip", "8")).response.find("Sec-WebSocket-Version: 13\r\n") !=
          std::string::npos);
}

TEST_CASE("a plain GET is handed to the page server with its target") {
    const auto h = websocket_handshake("GET /call?to=%2B15550123 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    REQUIRE(h.kind == Handshake::Kind::PlainGet);
    CHECK(h.target == "/call?to=%2B15550123");
    CHECK(h.method == "GET");
    CHECK(h.response.empty());
    CHECK(websocket_handshake("DELETE / HTTP/1.1\r\nHost: x\r\n\r\n").kind == Handshake::Kind::Reject);
}

TEST_CASE("an upgrade path may carry a query string") {
    CHECK(websocket_handshake(chromium_upgrade("/sip?token=abc")).kind == Handshake::Kind::Upgrade);
    HandshakeOptions o;
    o.path = "/ws";
    CHECK(websocket_handshake(chromium_upgrade("/ws"), o).kind == Handshake::Kind::Upgrade);
}

TEST_CASE("the client handshake request and the server's 101 checked against the key (RFC 6455 §4.1)") {
    const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";   // the §1.3 example
    const auto req = websocket_client_request("agent.example:8765", "/stream?x=1", key, "Authorization: Bearer t\r\n");
    CHECK(req.starts_with("GET /stream?x=1 HTTP/1.1\r\nHost: agent.example:8765\r\n"));
    CHECK(req.find("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") != std::string::npos);
    CHECK(req.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
    CHECK(req.find("Authorization: Bearer t\r\n") != std::string::npos);
    CHECK(req.ends_with("\r\n\r\n"));
    // The server side of this very code accepts it (subprotocol aside).
    const std::string ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi";
    const auto open = websocket_client_response(ok, key);
    CHECK(open.kind == ClientHandshake::Kind::Open);
    CHECK(ok.substr(open.consumed) == "\x81\x02hi");
    CHECK(websocket_client_response(ok.substr(0, 40), key).kind == ClientHandshake::Kind::NeedMore);
    struct Row {
        const char* name;
        std::string response;
        const char* reason;
    };
    for (const auto& row : std::vector<Row>{
             {"refused", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "status 403, not 101"},
             {"wrong accept", "HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n",
              "Sec-WebSocket-Accept does not match the key"},
             {"no upgrade", "HTTP/1.1 101 X\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
              "Upgrade is not websocket"},
             {"garbage", "SSH-2.0-OpenSSH\r\n\r\n", "malformed status line"},
             {"huge", std::string(9000, 'a'), "response header block too large"}}) {
        CAPTURE(row.name);
        const auto h = websocket_client_response(row.response, key);
        CHECK(h.kind == ClientHandshake::Kind::Fail);
        CHECK(h.reason == row.reason);
    }
}
