// SPDX-License-Identifier: Apache-2.0
// WebSocket framing, server side (RFC 6455 §5, §7).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "samples.hpp"
#include "turnbridge/sip/websocket_frame.hpp"

using namespace turnbridge::sip;

namespace {

// A client frame as a browser builds it: masked with `key`.
std::string client_frame(std::uint8_t first_byte, const std::string& payload, std::uint32_t key = 0x37fa213d,
                         bool masked = true) {
    std::string f;
    f.push_back(static_cast<char>(first_byte));
    const std::uint8_t m = masked ? 0x80 : 0;
    if (payload.size() < 126) {
        f.push_back(static_cast<char>(m | payload.size()));
    } else if (payload.size() <= 0xFFFF) {
        f.push_back(static_cast<char>(m | 126));
        f.push_back(static_cast<char>(payload.size() >> 8));
        f.push_back(static_cast<char>(payload.size() & 0xFF));
    } else {
        f.push_back(static_cast<char>(m | 127));
        for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((static_cast<std::uint64_t>(payload.size()) >> (8 * i)) & 0xFF));
    }
    const std::uint8_t k[4] = {std::uint8_t(key >> 24), std::uint8_t(key >> 16), std::uint8_t(key >> 8), std::uint8_t(key)};
    if (masked) f.append(reinterpret_cast<const char*>(k), 4);
    for (std::size_t i = 0; i < payload.size(); ++i)
        f.push_back(masked ? static_cast<char>(payload[i] ^ static_cast<char>(k[i & 3])) : payload[i]);
    return f;
}

std::string text(const std::string& p) { return client_frame(0x81, p); }

std::vector<WsEvent> feed(WebSocketDecoder& d, const std::string& bytes) {
    std::vector<WsEvent> out;
    d.feed(bytes, out);
    return out;
}

const WsClosed* closed_in(const std::vector<WsEvent>& ev) {
    for (const auto& e : ev)
        if (auto* c = std::get_if<WsClosed>(&e)) return c;
    return nullptr;
}

std::uint16_t close_code_sent(const std::vector<WsEvent>& ev) {
    for (const auto& e : ev)
        if (auto* r = std::get_if<WsReply>(&e); r && r->bytes.size() >= 4 && static_cast<std::uint8_t>(r->bytes[0]) == 0x88)
            return static_cast<std::uint16_t>(static_cast<std::uint8_t>(r->bytes[2]) << 8 | static_cast<std::uint8_t>(r->bytes[3]));
    return 0;
}

}  // namespace

TEST_CASE("the RFC 6455 §5.7 masked \"Hello\" decodes, and the server encodes it unmasked") {
    const std::string masked = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    WebSocketDecoder d;
    auto ev = feed(d, masked);
    REQUIRE(ev.size() == 1);
    const auto& m = std::get<WsMessage>(ev[0]);
    CHECK(m.text);
    CHECK(m.payload == "Hello");
    CHECK(websocket_frame(WsOpcode::Text, "Hello") == std::string("\x81\x05\x48\x65\x6c\x6c\x6f"));
    CHECK(text("Hello") == masked);  // the test helper agrees with the RFC example
}

TEST_CASE("server frames use the 16- and 64-bit length forms (RFC 6455 §5.7)") {
    const auto f256 = websocket_frame(WsOpcode::Binary, std::string(256, 'x'));
    CHECK(f256.substr(0, 4) == std::string("\x82\x7E\x01\x00", 4));
    CHECK(f256.size() == 4 + 256);
    const auto f64k = websocket_frame(WsOpcode::Binary, std::string(65536, 'x'));
    CHECK(f64k.substr(0, 10) == std::string("\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10));
    CHECK(websocket_frame(WsOpcode::Text, std::string(125, 'a'))[1] == 125);
    CHECK(static_cast<std::uint8_t>(websocket_frame(WsOpcode::Text, std::string(126, 'a'))[1]) == 126);
}

TEST_CASE("a SIP message fed one byte at a time comes out once, whole") {
    const auto frame = text(samples::kJsSipRegister);
    WebSocketDecoder d;
    std::vector<WsEvent> ev;
    for (char c : frame) d.feed(std::string_view(&c, 1), ev);
    REQUIRE(ev.size() == 1);
    CHECK(std::get<WsMessage>(ev[0]).payload == samples::kJsSipRegister);

    SUBCASE("two frames in one chunk give two messages") {
        WebSocketDecoder d2;
        auto ev2 = feed(d2, text("one") + text("two"));
        REQUIRE(ev2.size() == 2);
        CHECK(std::get<WsMessage>(ev2[1]).payload == "two");
    }
}

TEST_CASE("fragments are joined and a ping between them is answered (RFC 6455 §5.4, §5.5.2)") {
    WebSocketDecoder d;
    auto ev = feed(d, client_frame(0x01, "INVITE sip:") + client_frame(0x89, "hb") + client_frame(0x00, "b@x ") +
                          client_frame(0x80, "SIP/2.0"));
    REQUIRE(ev.size() == 2);
    CHECK(std::get<WsReply>(ev[0]).bytes == std::string("\x8A\x02hb"));
    CHECK(std::get<WsMessage>(ev[1]).payload == "INVITE sip:b@x SIP/2.0");
}

TEST_CASE("binary messages are reported as binary") {
    WebSocketDecoder d;
    auto ev = feed(d, client_frame(0x82, std::string("\x00\xff", 2)));
    REQUIRE(ev.size() == 1);
    CHECK_FALSE(std::get<WsMessage>(ev[0]).text);
}

TEST_CASE("protocol violations close with the RFC 6455 §7.4.1 code") {
    struct Row { std::string name; std::string bytes; std::uint16_t code; };
    const std::vector<Row> rows = {
        {"unmasked client frame (§5.1)", client_frame(0x81, "hi", 0, false), ws_close::ProtocolError},
        {"RSV1 without extension (§5.2)", client_frame(0xC1, "hi"), ws_close::ProtocolError},
        {"reserved opcode 3", client_frame(0x83, "hi"), ws_close::ProtocolError},
        {"reserved control opcode 0xB", client_frame(0x8B, ""), ws_close::ProtocolError},
        {"ping of 126 bytes (§5.5)", client_frame(0x89, std::string(126, 'p')), ws_close::ProtocolError},
        {"fragmented ping (§5.5)", client_frame(0x09, "p"), ws_close::ProtocolError},
        {"continuation first (§5.4)", client_frame(0x80, "x"), ws_close::ProtocolError},
        {"text inside a fragmented message (§5.4)", client_frame(0x01, "a") + client_frame(0x81, "b"), ws_close::ProtocolError},
        {"close with 1-byte payload (§5.5.1)", client_frame(0x88, "\x03"), ws_close::ProtocolError},
        {"close code 1005 on the wire (§7.4.1)", client_frame(0x88, "\x03\xED"), ws_close::ProtocolError},
        {"close code 999", client_frame(0x88, "\x03\xE7"), ws_close::ProtocolError},
        {"text not UTF-8 (§8.1)", text("\xC0\xAF"), ws_close::InvalidPayload},
        {"surrogate in text", text("\xED\xA0\x80"), ws_close::InvalidPayload},
        {"truncated UTF-8", text("ab\xE2\x82"), ws_close::InvalidPayload},
        {"64-bit length with MSB set", std::string("\x81\xFF\x80\x00\x00\x00\x00\x00\x00\x00", 10), ws_close::ProtocolError},
    };
    for (const auto& r : rows) {
        CAPTURE(r.name);
        WebSocketDecoder d;
        auto ev = feed(d, r.bytes);
        const auto* c = closed_in(ev);
        REQUIRE(c);
        CHECK(c->code == r.code);
        CHECK_FALSE(c->by_peer);
        CHECK(close_code_sent(ev) == r.code);
        CHECK(d.closed());
        CHECK(feed(d, text("after")).empty());  // nothing after a close
    }
}

TEST_CASE("a message past the limit closes with 1009 before its payload arrives") {
    WebSocketDecoder d(64 * 1024);
    const auto frame = client_frame(0x82, std::string(64 * 1024 + 1, 'x'));
    auto ev = feed(d, frame.substr(0, 20));
    REQUIRE(closed_in(ev));
    CHECK(closed_in(ev)->code == ws_close::TooBig);

    SUBCASE("exactly the limit is fine") {
        WebSocketDecoder ok(64 * 1024);
        auto ev2 = feed(ok, client_frame(0x82, std::string(64 * 1024, 'x')));
        REQUIRE(ev2.size() == 1);
        CHECK(std::get<WsMessage>(ev2[0]).payload.size() == 64 * 1024);
    }
    SUBCASE("fragments adding up past the limit also get 1009") {
        WebSocketDecoder f(100);
        auto ev3 = feed(f, client_frame(0x01, std::string(60, 'a')) + client_frame(0x80, std::string(41, 'a')));
        REQUIRE(closed_in(ev3));
        CHECK(closed_in(ev3)->code == ws_close::TooBig);
    }
}

TEST_CASE("the peer's Close is echoed with its code and ends the connection (RFC 6455 §5.5.1)") {
    WebSocketDecoder d;
    auto ev = feed(d, client_frame(0x88, "\x03\xE8" "bye") + text("late"));
    REQUIRE(ev.size() == 2);
    CHECK(std::get<WsReply>(ev[0]).bytes == std::string("\x88\x02\x03\xE8", 4));
    const auto& c = std::get<WsClosed>(ev[1]);
    CHECK(c.code == 1000);
    CHECK(c.reason == "bye");
    CHECK(c.by_peer);

    SUBCASE("an empty Close is answered with 1000 and reported as 1005") {
        WebSocketDecoder e;
        auto ev2 = feed(e, client_frame(0x88, ""));
        CHECK(close_code_sent(ev2) == 1000);
        CHECK(closed_in(ev2)->code == ws_close::NoStatus);
    }
    SUBCASE("after our own Close the peer's answer is not echoed") {
        WebSocketDecoder e;
        CHECK(e.close(ws_close::GoingAway, "shutdown") == std::string("\x88\x0A\x03\xE9shutdown", 12));
        auto ev2 = feed(e, client_frame(0x88, "\x03\xE9"));
        REQUIRE(ev2.size() == 1);
        CHECK(std::get<WsClosed>(ev2[0]).by_peer);
    }
}

TEST_CASE("unsolicited pongs are ignored (RFC 6455 §5.5.3)") {
    WebSocketDecoder d;
    CHECK(feed(d, client_frame(0x8A, "x")).empty());
    CHECK_FALSE(d.closed());
}

TEST_CASE("a message of more fragments than ws_max_fragments closes with 1009 (issue 11: fragment hold)") {
    WebSocketDecoder d(64 * 1024, 4);
    std::string frames = client_frame(0x01, "a");
    for (int i = 0; i < 3; ++i) frames += client_frame(0x00, "b");
    auto ev = feed(d, frames);
    CHECK_FALSE(closed_in(ev));
    CHECK(d.buffered() > 0);  // an unfinished message is held: the connection's message clock runs
    ev = feed(d, client_frame(0x00, "c"));
    REQUIRE(closed_in(ev));
    CHECK(closed_in(ev)->code == ws_close::TooBig);
    CHECK(d.buffered() == 0);

    SUBCASE("exactly the cap is fine, and the count starts again with the next message") {
        WebSocketDecoder ok(64 * 1024, 4);
        std::string two = client_frame(0x01, "a") + client_frame(0x00, "b") + client_frame(0x00, "c") + client_frame(0x80, "d");
        auto ev2 = feed(ok, two + two);
        REQUIRE(ev2.size() == 2);
        CHECK(std::get<WsMessage>(ev2[1]).payload == "abcd");
        CHECK(ok.buffered() == 0);
    }
}

TEST_CASE("websocket_client_frame masks the payload with its key (RFC 6455 §5.3, the §5.7 example)") {
    // §5.7: a masked "Hello" text frame from a client, key 37 fa 21 3d.
    const std::string f = websocket_client_frame(WsOpcode::Text, "Hello", {0x37, 0xfa, 0x21, 0x3d});
    CHECK(f == std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11));
    // A 200-byte payload takes the 16-bit length with the mask bit.
    const std::string big = websocket_client_frame(WsOpcode::Binary, std::string(200, 'a'), {1, 2, 3, 4});
    CHECK(static_cast<std::uint8_t>(big[1]) == (0x80 | 126));
    CHECK(big.size() == 2 + 2 + 4 + 200);
    // The server-side decoder reads it back.
    WebSocketDecoder server;
    std::vector<WsEvent> out;
    server.feed(f, out);
    REQUIRE(out.size() == 1);
    CHECK(std::get<WsMessage>(out[0]).payload == "Hello");
}

TEST_CASE("the client-role decoder takes unmasked server frames, refuses masked ones and masks its replies (§5.1)") {
    const WsMaskKey key{9, 8, 7, 6};
    WebSocketDecoder client(1024, 8, [&] { return key; });
    std::vector<WsEvent> out;
    client.feed(websocket_frame(WsOpcode::Text, "{\"event\":\"clear\"}"), out);
    REQUIRE(out.size() == 1);
    CHECK(std::get<WsMessage>(out[0]).payload == "{\"event\":\"clear\"}");
    out.clear();
    client.feed(websocket_frame(WsOpcode::Ping, "hi"), out);
    REQUIRE(out.size() == 1);
    CHECK(std::get<WsReply>(out[0]).bytes == websocket_client_frame(WsOpcode::Pong, "hi", key));
    out.clear();
    client.feed(websocket_frame(WsOpcode::Text, std::string(2000, 'x')), out);   // over max_message
    REQUIRE(out.size() == 2);
    CHECK(std::get<WsClosed>(out[1]).code == ws_close::TooBig);
    WebSocketDecoder strict(1024, 8, [&] { return key; });
    out.clear();
    strict.feed(websocket_client_frame(WsOpcode::Text, "x", key), out);
    REQUIRE(out.size() == 2);
    CHECK(std::get<WsClosed>(out[1]).code == ws_close::ProtocolError);
    CHECK(std::get<WsClosed>(out[1]).reason == "server frame masked");
}
