// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include "turnbridge/base/base64.hpp"
#include "turnbridge/base/json_reader.hpp"
#include "turnbridge/gateway/agent_stream.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;
using namespace std::chrono_literals;

namespace {

AgentStream make(std::size_t frames = 500, config::AgentMediaFormat format = config::AgentMediaFormat::Mulaw) {
    AgentStart s;
    s.format = format;
    s.account_sid = "AC" + std::string(32, '0');
    s.call_sid = "CA" + std::string(32, '1');
    s.stream_sid = "MZ" + std::string(32, '2');
    s.parameters = {{"from", "+15550100"}, {"to", "+15550177"}, {"realm", "example.org"}};
    return AgentStream(s, AgentLimits{frames, 4});
}

JsonValue json(const std::string& s) {
    auto v = parse_json(s);
    REQUIRE(v);
    return *v;
}

std::string media_msg(std::size_t bytes, std::uint8_t fill = 0x10) {
    const std::vector<std::uint8_t> audio(bytes, fill);
    return R"({"event":"media","streamSid":"MZ","media":{"payload":")" + base64_encode(audio) + R"("}})";
}

std::string mark_msg(const std::string& name) {
    return R"({"event":"mark","streamSid":"MZ","mark":{"name":")" + name + R"("}})";
}

}  // namespace

TEST_CASE("agent_sid is a prefix and 32 hex digits, as Twilio's SIDs") {
    std::array<std::uint8_t, 16> r{};
    r[0] = 0xAB;
    r[15] = 0x01;
    const auto sid = agent_sid("MZ", r);
    CHECK(sid.size() == 34);
    CHECK(sid.starts_with("MZab"));
    CHECK(sid.ends_with("01"));
}

TEST_CASE("connected and start carry the fields and types of Twilio Media Streams v1") {
    auto s = make();
    const auto c = json(s.connected());
    CHECK(c.text("event") == "connected");
    CHECK(c.text("protocol") == "Call");
    CHECK(c.text("version") == "1.0.0");
    const auto st = json(s.start(AgentStream::Time{} + 5s));
    CHECK(st.text("event") == "start");
    CHECK(st.text("sequenceNumber") == "1");   // a string, from 1
    CHECK(st.text("streamSid") == s.info().stream_sid);
    const auto* b = st.find("start");
    REQUIRE(b);
    CHECK(b->text("accountSid") == s.info().account_sid);
    CHECK(b->text("callSid") == s.info().call_sid);
    CHECK(b->text("streamSid") == s.info().stream_sid);
    REQUIRE(b->find("tracks"));
    REQUIRE(b->find("tracks")->items.size() == 1);
    CHECK(b->find("tracks")->items[0].string == "inbound");
    CHECK(b->find("customParameters")->text("from") == "+15550100");
    CHECK(b->find("customParameters")->text("to") == "+15550177");
    const auto* f = b->find("mediaFormat");
    REQUIRE(f);
    CHECK(f->text("encoding") == "audio/x-mulaw");
    CHECK(f->find("sampleRate")->type == JsonValue::Type::Number);
    CHECK(f->find("sampleRate")->number == 8000);
    CHECK(f->find("channels")->number == 1);
}

TEST_CASE("media has string sequenceNumber, chunk counting from 1 and timestamp in ms since start") {
    auto s = make();
    const auto t0 = AgentStream::Time{} + 10s;
    s.start(t0);
    const std::vector<std::uint8_t> frame(160, 0x7F);
    for (int i = 0; i < 3; ++i) {
        const auto m = json(s.media(t0 + 20ms * i, frame));
        CHECK(m.text("event") == "media");
        CHECK(m.text("sequenceNumber") == std::to_string(2 + i));
        CHECK(m.text("streamSid") == s.info().stream_sid);
        const auto* b = m.find("media");
        CHECK(b->text("track") == "inbound");
        CHECK(b->text("chunk") == std::to_string(1 + i));
        CHECK(b->text("timestamp") == std::to_string(20 * i));
        CHECK(base64_decode(*b->text("payload")) == frame);
    }
}

TEST_CASE("dtmf and stop are as Twilio sends them") {
    auto s = make();
    s.start({});
    const auto d = json(s.dtmf('#'));
    CHECK(d.text("event") == "dtmf");
    CHECK(d.text("sequenceNumber") == "2");
    CHECK(d.find("dtmf")->text("track") == "inbound_track");
    CHECK(d.find("dtmf")->text("digit") == "#");
    const auto st = json(s.stop());
    CHECK(st.text("event") == "stop");
    CHECK(st.text("sequenceNumber") == "3");
    CHECK(st.find("stop")->text("accountSid") == s.info().account_sid);
    CHECK(st.find("stop")->text("callSid") == s.info().call_sid);
}

TEST_CASE("agent media is played out 160 bytes a tick, in order, with a short tail padded with silence") {
    auto s = make();
    std::vector<std::string> out;
    s.on_message(media_msg(400, 0x11), out);
    CHECK(s.queued_bytes() == 400);
    std::array<std::uint8_t, 160> f{};
    CHECK(s.next_frame(f, out));
    CHECK(f[0] == 0x11);
    CHECK(s.next_frame(f, out));
    CHECK(s.next_frame(f, out));
    CHECK(f[79] == 0x11);
    CHECK(f[80] == AgentStream::kSilence);
    CHECK(!s.next_frame(f, out));
    CHECK(s.counters().frames_played == 3);
    CHECK(out.empty());
}

TEST_CASE("L16 (issue 17): start names audio/x-l16 at 16000 Hz; 640-byte frames, silence 0, bound in frames, odd sizes refused") {
    auto s = make(10, config::AgentMediaFormat::L16);   // 10 frames: 6400 bytes
    const auto st = json(s.start(AgentStream::Time{}));
    const auto* f = st.find("start")->find("mediaFormat");
    REQUIRE(f);
    CHECK(f->text("encoding") == "audio/x-l16");
    CHECK(f->find("sampleRate")->number == 16000);
    CHECK(f->find("channels")->number == 1);
    CHECK(s.frame_bytes() == 640);
    std::vector<std::string> out;
    s.on_message(media_msg(7, 0x11), out);   // half a sample: refused
    CHECK(s.counters().bad_messages == 1);
    CHECK(s.queued_bytes() == 0);
    s.on_message(media_msg(1000, 0x11), out);   // any even size
    std::array<std::uint8_t, 640> fr{};
    CHECK(s.next_frame(fr, out));
    CHECK(fr[639] == 0x11);
    CHECK(s.next_frame(fr, out));
    CHECK(fr[359] == 0x11);
    CHECK(fr[360] == 0);   // L16 silence
    for (int i = 0; i < 20; ++i) s.on_message(media_msg(640), out);
    CHECK(s.queued_bytes() == 6400);
    CHECK(s.counters().frames_dropped == 10);
}

TEST_CASE("the playout buffer is bounded: audio past agent_playout_frames is dropped and counted") {
    auto s = make(10);   // 1600 bytes
    std::vector<std::string> out;
    for (int i = 0; i < 100; ++i) s.on_message(media_msg(800), out);   // a flood: 50 s sent at once
    CHECK(s.queued_bytes() == 1600);
    CHECK(s.counters().bytes_dropped == 98 * 800);
    CHECK(s.counters().frames_dropped == 98 * 5);
    CHECK(s.counters().media_in == 100);
}

TEST_CASE("a mark comes back when the audio queued before it has played") {
    auto s = make();
    std::vector<std::string> out;
    s.on_message(mark_msg("first"), out);   // nothing queued: at once
    REQUIRE(out.size() == 1);
    CHECK(json(out[0]).find("mark")->text("name") == "first");
    CHECK(json(out[0]).text("event") == "mark");
    CHECK(json(out[0]).text("streamSid") == s.info().stream_sid);
    out.clear();
    s.on_message(media_msg(320), out);
    s.on_message(mark_msg("after-two"), out);
    s.on_message(media_msg(160), out);
    CHECK(out.empty());
    std::array<std::uint8_t, 160> f{};
    s.next_frame(f, out);
    CHECK(out.empty());
    s.next_frame(f, out);   // the second frame, the mark's audio, has now played
    REQUIRE(out.size() == 1);
    CHECK(json(out[0]).find("mark")->text("name") == "after-two");
    CHECK(s.pending_marks() == 0);
}

TEST_CASE("clear flushes the playout buffer at once and returns every pending mark") {
    auto s = make();
    std::vector<std::string> out;
    s.on_message(media_msg(1600), out);
    s.on_message(mark_msg("a"), out);
    s.on_message(media_msg(1600), out);
    s.on_message(mark_msg("b"), out);
    s.on_message(R"({"event":"clear","streamSid":"MZ"})", out);
    REQUIRE(out.size() == 2);
    CHECK(json(out[0]).find("mark")->text("name") == "a");
    CHECK(json(out[1]).find("mark")->text("name") == "b");
    CHECK(s.queued_bytes() == 0);
    CHECK(s.counters().bytes_cleared == 3200);
    std::array<std::uint8_t, 160> f{};
    CHECK(!s.next_frame(f, out));   // the next tick plays nothing
    // Audio after the clear plays again.
    s.on_message(media_msg(160, 0x22), out);
    CHECK(s.next_frame(f, out));
    CHECK(f[0] == 0x22);
}

TEST_CASE("pending marks are bounded; the excess is dropped and counted") {
    auto s = make();
    std::vector<std::string> out;
    s.on_message(media_msg(160), out);
    for (int i = 0; i < 10; ++i) s.on_message(mark_msg("m" + std::to_string(i)), out);
    CHECK(s.pending_marks() == 4);
    CHECK(s.counters().marks_dropped == 6);
}

TEST_CASE("garbage from the agent is counted and ignored; transfer is returned") {
    auto s = make();
    std::vector<std::string> out;
    for (const char* bad : {"not json", "{}", R"({"event":1})", R"({"event":"media"})", R"({"event":"media","media":{"payload":"!!"}})",
                            R"({"event":"mark","mark":{}})", R"({"event":"dance"})", R"({"event":"transfer"})", "[[[[[[[[[[]]]]]]]]]]"}) {
        CAPTURE(bad);
        CHECK(!s.on_message(bad, out));
    }
    CHECK(s.counters().bad_messages == 9);
    CHECK(s.queued_bytes() == 0);
    const auto t = s.on_message(R"({"event":"transfer","to":"alice"})", out);
    REQUIRE(t);
    CHECK(t->to == "alice");
}

TEST_CASE("a hostile agent's marks and transfers are bounded: long names and targets, and a transfer loop, are refused and counted") {
    auto s = make();
    std::vector<std::string> out;
    // 64 pending marks of ~256 KiB names held 16 MiB per call: a name is at most 1 KiB.
    s.on_message(media_msg(160), out);
    s.on_message(mark_msg(std::string(1025, 'm')), out);
    CHECK(s.pending_marks() == 0);
    CHECK(s.counters().bad_messages == 1);
    s.on_message(mark_msg(std::string(1024, 'm')), out);
    CHECK(s.pending_marks() == 1);
    // A transfer target goes into log lines: at most 256 bytes.
    CHECK(!s.on_message(R"({"event":"transfer","to":")" + std::string(257, '1') + R"("})", out));
    CHECK(s.counters().bad_messages == 2);
    // Transfer after transfer (each one a registrar lookup and log lines): 8 per call, then ignored.
    for (int i = 0; i < 8; ++i) CHECK(s.on_message(R"({"event":"transfer","to":"nobody"})", out));
    CHECK(!s.on_message(R"({"event":"transfer","to":"nobody"})", out));
    CHECK(!s.on_message(R"({"event":"transfer","to":"+15557001"})", out));
    CHECK(s.counters().bad_messages == 4);
}
