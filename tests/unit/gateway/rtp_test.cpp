// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <set>
#include <vector>

#include "turnbridge/gateway/demux.hpp"
#include "turnbridge/gateway/rtp_packet.hpp"
#include "turnbridge/gateway/rtp_stream.hpp"
#include "turnbridge/gateway/telephone_event.hpp"
#include "turnbridge/stun/message.hpp"

using namespace turnbridge::gateway;
using V = std::vector<std::uint8_t>;

TEST_CASE("RTP header fields parse from wire bytes (RFC 3550 §5.1)") {
    // V=2 X=0 CC=0, M=1 PT=111, seq 0x1234, ts 0x01020304, ssrc 0xDEADBEEF, payload "abc"
    const V d = {0x80, 0xEF, 0x12, 0x34, 1, 2, 3, 4, 0xDE, 0xAD, 0xBE, 0xEF, 'a', 'b', 'c'};
    auto p = RtpPacket::parse(d);
    REQUIRE(p);
    CHECK(p->header.marker);
    CHECK(p->header.payload_type == 111);
    CHECK(p->header.sequence == 0x1234);
    CHECK(p->header.timestamp == 0x01020304);
    CHECK(p->header.ssrc == 0xDEADBEEF);
    REQUIRE(p->payload.size() == 3);
    CHECK(p->payload[0] == 'a');
}

TEST_CASE("RTP CSRCs, header extension and padding are skipped (RFC 3550 §5.1, §5.3.1)") {
    // CC=1, X=1, P=1: csrc, one-word extension (0xBEDE profile, RFC 8285), payload "xy", 2 bytes pad
    const V d = {0xB1, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9,
                 0xAA, 0xBB, 0xCC, 0xDD,              // CSRC
                 0xBE, 0xDE, 0x00, 0x01, 0x10, 0x55, 0, 0,  // extension header + 1 word
                 'x', 'y', 0x00, 0x02};
    auto p = RtpPacket::parse(d);
    REQUIRE(p);
    CHECK(p->csrc_count == 1);
    CHECK(p->has_extension);
    REQUIRE(p->payload.size() == 2);
    CHECK(p->payload[0] == 'x');
    CHECK(p->payload[1] == 'y');
}

TEST_CASE("malformed RTP is rejected") {
    struct Row { const char* name; V bytes; };
    const Row rows[] = {
        {"short", {0x80, 0, 0, 1}},
        {"version 1", {0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}},
        {"CSRCs past end", {0x82, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}},
        {"extension past end", {0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xBE, 0xDE, 0, 2, 0, 0, 0, 0}},
        {"padding too large", {0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 'x', 9}},
        {"padding zero", {0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 'x', 0}},
    };
    for (const auto& r : rows) {
        CAPTURE(r.name);
        CHECK_FALSE(RtpPacket::parse(r.bytes));
    }
}

TEST_CASE("written RTP header round-trips through the parser") {
    RtpHeader h{true, 0, 65535, 0xFFFFFFF0u, 42};
    V buf(12 + 160, 0xFF);
    REQUIRE(write_rtp_header(h, buf) == 12);
    CHECK(buf[0] == 0x80);
    CHECK(buf[1] == 0x80);
    auto p = RtpPacket::parse(buf);
    REQUIRE(p);
    CHECK(p->header.marker == h.marker);
    CHECK(p->header.sequence == h.sequence);
    CHECK(p->header.timestamp == h.timestamp);
    CHECK(p->header.ssrc == h.ssrc);
    CHECK(p->payload.size() == 160);
    V small(11);
    CHECK(write_rtp_header(h, small) == 0);
}

TEST_CASE("rtcp-mux demux: payload types 64-95 are RTCP (RFC 5761 §4)") {
    const V sr = {0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const V rr = {0x81, 201, 0, 1, 0, 0, 0, 7};
    const V pcmu = {0x80, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
    const V opus_marker = {0x80, 0x80 | 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
    const V pt_72_marker = {0x80, 0xC8, 0, 0, 0, 0, 0, 0};  // M=1 PT=72 is SR on the wire
    CHECK(is_rtcp(sr));
    CHECK(is_rtcp(rr));
    CHECK(is_rtcp(pt_72_marker));
    CHECK_FALSE(is_rtcp(pcmu));
    CHECK_FALSE(is_rtcp(opus_marker));
    auto h = RtcpHeader::parse(rr);
    REQUIRE(h);
    CHECK(h->packet_type == 201);
    CHECK(h->count == 1);
    CHECK(h->length_bytes == 8);
    CHECK(h->ssrc == 7);
    const V truncated = {0x80, 200, 0, 6, 0, 0, 0, 1};
    CHECK_FALSE(RtcpHeader::parse(truncated));
}

TEST_CASE("first-octet demux of STUN, DTLS, RTP and RTCP (RFC 7983 §7)") {
    std::uint8_t buf[64];
    turnbridge::stun::TransactionId tid{};
    turnbridge::stun::MessageBuilder b(buf, turnbridge::stun::method::Binding,
                                       turnbridge::stun::Class::Request, tid);
    b.add_fingerprint();
    CHECK(classify({buf, b.size()}) == PacketKind::Stun);
    const V client_hello = {22, 0xFE, 0xFD, 0, 0};       // DTLS handshake record
    const V app_data = {23, 0xFE, 0xFD, 0, 1};
    const V rtp = {0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
    const V rtcp = {0x80, 200, 0, 0};
    const V channel = {0x40, 0x00, 0, 0};
    const V zrtp = {0x10, 0, 0, 0};
    const V junk = {0xFF, 0};
    CHECK(classify(client_hello) == PacketKind::Dtls);
    CHECK(classify(app_data) == PacketKind::Dtls);
    CHECK(classify(rtp) == PacketKind::Rtp);
    CHECK(classify(rtcp) == PacketKind::Rtcp);
    CHECK(classify(channel) == PacketKind::TurnChannel);
    CHECK(classify(zrtp) == PacketKind::Zrtp);
    CHECK(classify(junk) == PacketKind::Unknown);
    CHECK(classify({}) == PacketKind::Unknown);
}

TEST_CASE("each leg's RTP stream owns its SSRC, sequence and timestamp") {
    std::uint8_t counter = 0;
    RandomSource rng = [&](std::span<std::uint8_t> out) { for (auto& b : out) b = ++counter; };
    auto a = RtpStream::random(rng);
    auto b = RtpStream::random(rng);
    CHECK(a.ssrc() != b.ssrc());
    CHECK(a.next_sequence() < 0x8000);
    const auto h1 = a.next(0, 0);
    const auto h2 = a.next(0, 160);
    const auto h3 = a.next(0, 320);
    CHECK(h1.marker);             // first packet starts a talkspurt
    CHECK_FALSE(h2.marker);
    CHECK(h2.sequence == static_cast<std::uint16_t>(h1.sequence + 1));
    CHECK(h3.sequence == static_cast<std::uint16_t>(h1.sequence + 2));
    CHECK(h2.timestamp - h1.timestamp == 160);
    CHECK(h3.timestamp - h1.timestamp == 320);
    CHECK(h1.ssrc == a.ssrc());
    CHECK(a.packets_sent() == 3);
    // Sequence wraps modulo 2^16.
    RtpStream w(1, 65535, 0);
    CHECK(w.next(0, 0).sequence == 65535);
    CHECK(w.next(0, 160).sequence == 0);
}

TEST_CASE("telephone-event payload parse and build (RFC 4733 §2.3)") {
    const V d = {11, 0x8A, 0x03, 0x20};  // '#', E=1, volume 10, duration 800
    auto ev = parse_telephone_event(d);
    REQUIRE(ev);
    CHECK(ev->event == 11);
    CHECK(ev->end);
    CHECK(ev->volume == 10);
    CHECK(ev->duration == 800);
    V out(4);
    REQUIRE(write_telephone_event(*ev, out) == 4);
    CHECK(out == d);
    const V reserved_bit = {1, 0x4A, 0, 0};   // R bit set: ignored by receivers
    CHECK(parse_telephone_event(reserved_bit)->volume == 10);
    CHECK_FALSE(parse_telephone_event(V{1, 2, 3}));
}

TEST_CASE("telephone-event durations rescale between 48 kHz and 8 kHz") {
    CHECK(rescale_duration(960, 48000, 8000) == 160);     // 20 ms
    CHECK(rescale_duration(160, 8000, 48000) == 960);
    CHECK(rescale_duration(4800, 48000, 8000) == 800);    // 100 ms
    CHECK(rescale_duration(15000, 8000, 48000) == 0xFFFF); // saturates
    CHECK(rescale_duration(7, 48000, 8000) == 1);          // rounds to nearest
}

TEST_CASE("a relayed event keeps one start timestamp and a marker on its first packet (RFC 4733 §2.5.1)") {
    TelephoneEventRelay relay(48000, 8000);
    const std::uint32_t in_start = 123456;
    auto p1 = relay.on_packet(in_start, {5, false, 10, 960}, 8000);
    auto p2 = relay.on_packet(in_start, {5, false, 10, 1920}, 8160);
    auto p3 = relay.on_packet(in_start, {5, true, 10, 4800}, 8480);
    auto p4 = relay.on_packet(in_start, {5, true, 10, 4800}, 8480);  // end retransmitted
    CHECK(p1.marker);
    CHECK_FALSE(p2.marker);
    CHECK_FALSE(p4.marker);
    CHECK(p1.media_time == 8000);
    CHECK(p2.media_time == 8000);
    CHECK(p3.media_time == 8000);
    CHECK(p1.event.duration == 160);
    CHECK(p2.event.duration == 320);
    CHECK(p3.event.duration == 800);
    CHECK(p3.event.end);
    auto next = relay.on_packet(in_start + 9600, {6, false, 10, 960}, 9600);
    CHECK(next.marker);
    CHECK(next.media_time == 9600);
}
