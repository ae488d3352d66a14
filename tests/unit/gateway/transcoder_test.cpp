// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <opus/opus.h>

#include <cmath>
#include <vector>

#include "turnbridge/gateway/transcoder.hpp"
#include "tone.hpp"

using namespace turnbridge::gateway;
using namespace turnbridge::gateway::test;

namespace {
// A browser-like Opus sender: 48 kHz mono, VOIP, in-band FEC on, 20 ms packets.
struct BrowserOpus {
    OpusEncoder* enc;
    std::size_t sent = 0;
    BrowserOpus() {
        int err = 0;
        enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
        REQUIRE(err == OPUS_OK);
        opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
        opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(20));
        opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000));
    }
    ~BrowserOpus() { opus_encoder_destroy(enc); }
    std::vector<std::uint8_t> next(double f) {
        auto pcm = sine(f, 48000, 960, 8000, sent);
        sent += 960;
        std::vector<std::uint8_t> out(kMaxOpusPacket);
        const int n = opus_encode(enc, pcm.data(), 960, out.data(), static_cast<opus_int32>(out.size()));
        REQUIRE(n > 0);
        out.resize(static_cast<std::size_t>(n));
        return out;
    }
};

std::vector<double> decode_all(G711Law law, const std::vector<std::uint8_t>& g711) {
    std::vector<double> out;
    for (auto b : g711) out.push_back(law == G711Law::Pcmu ? ulaw_to_linear(b) : alaw_to_linear(b));
    return out;
}

double rms(const std::vector<double>& x, std::size_t from, std::size_t n) {
    double s = 0;
    for (std::size_t i = from; i < from + n; ++i) s += x[i] * x[i];
    return std::sqrt(s / static_cast<double>(n));
}
}  // namespace

TEST_CASE("jitter buffer: target delay, reordering, late and duplicate packets, sequence wrap") {
    JitterBuffer jb(3);
    using K = JitterBuffer::Frame::Kind;
    CHECK(jb.pop().kind == K::Waiting);  // nothing yet
    const std::uint8_t a[] = {1}, b[] = {2}, c[] = {3}, d[] = {4};
    jb.push(65535, a);
    CHECK(jb.pop().kind == K::Waiting);
    jb.push(1, c);  // arrives before 0
    jb.push(0, b);
    CHECK(jb.pop().kind == K::Waiting);
    auto f = jb.pop();  // third tick: 60 ms of delay reached
    REQUIRE(f.kind == K::Packet);
    CHECK(f.payload[0] == 1);
    CHECK(jb.pop().payload[0] == 2);  // 0 after 65535
    jb.push(0, b);                     // already played: late
    CHECK(jb.stats().late == 1);
    CHECK(jb.pop().payload[0] == 3);
    jb.push(3, d);                     // 2 is lost
    jb.push(3, d);
    CHECK(jb.stats().duplicate == 1);
    f = jb.pop();
    CHECK(f.kind == K::Missing);
    REQUIRE(f.next.size() == 1);       // the next packet is offered for FEC
    CHECK(f.next[0] == 4);
    CHECK(jb.pop().payload[0] == 4);
    CHECK(jb.stats().played == 4);
    CHECK(jb.stats().missing == 1);
}

TEST_CASE("jitter buffer: a late packet after an underrun still plays; a fast sender gets a frame skipped") {
    using K = JitterBuffer::Frame::Kind;
    JitterBuffer jb(2);
    const std::uint8_t p[] = {9};
    jb.push(10, p);
    CHECK(jb.pop().kind == K::Waiting);
    CHECK(jb.pop().kind == K::Packet);  // 10
    // 11 is late: nothing is buffered, so the frame is concealed and 11 is still expected.
    auto f = jb.pop();
    CHECK(f.kind == K::Missing);
    CHECK(f.next.empty());
    CHECK(jb.stats().underruns == 1);
    jb.push(11, p);
    CHECK(jb.pop().kind == K::Packet);
    CHECK(jb.stats().late == 0);
    // Real loss: 12 missing while 13 is here -> Missing, then 13 plays.
    jb.push(13, p);
    CHECK(jb.pop().kind == K::Missing);
    CHECK(jb.pop().kind == K::Packet);
    CHECK(jb.stats().played == 3);
    // A burst far above the target delay: one frame is skipped to bring the delay back.
    for (std::uint16_t s = 14; s < 24; ++s) jb.push(s, p);
    CHECK(jb.pop().kind == K::Packet);
    CHECK(jb.stats().skipped == 1);
}

TEST_CASE("Opus 1 kHz from the browser comes out as PCMU at 1 kHz (Goertzel within 2 %)") {
    for (G711Law law : {G711Law::Pcmu, G711Law::Pcma}) {
        CAPTURE(static_cast<int>(law));
        BrowserOpus browser;
        BrowserToTrunk pipe(AudioCodec::Opus, trunk_codec(law));
        std::vector<std::uint8_t> trunk;
        for (std::uint16_t seq = 100; seq < 150; ++seq) {
            pipe.on_packet(seq, browser.next(1000));
            std::array<std::uint8_t, kFrameSamples> frame{};
            pipe.tick(frame);
            trunk.insert(trunk.end(), frame.begin(), frame.end());
        }
        CHECK(pipe.stats().silence == 2);  // the jitter buffer's 40 ms before playout
        CHECK(pipe.stats().decoded == 48);
        const auto pcm = decode_all(law, trunk);
        const std::vector<double> steady(pcm.begin() + 160 * 10, pcm.end());
        const double f = dominant_frequency(steady, 8000);
        CHECK(std::abs(f - 1000) <= 20);
        CHECK(rms(pcm, 160 * 10, 160 * 30) > 2000);  // 8000 peak sine: about 5600 RMS
    }
}

TEST_CASE("lost Opus packets are concealed: continuous, non-silent output, FEC when the next packet is here") {
    BrowserOpus browser;
    BrowserToTrunk pipe(AudioCodec::Opus, TrunkCodec::Pcmu);
    std::vector<std::uint8_t> trunk;
    for (std::uint16_t seq = 0; seq < 100; ++seq) {
        auto pkt = browser.next(440);
        const bool lost = seq > 20 && (seq % 7 == 0 || seq == 50 || seq == 51);  // singles and a pair
        if (!lost) pipe.on_packet(seq, pkt);
        std::array<std::uint8_t, kFrameSamples> frame{};
        pipe.tick(frame);
        trunk.insert(trunk.end(), frame.begin(), frame.end());
    }
    CHECK(pipe.stats().fec + pipe.stats().concealed == pipe.jitter().stats().missing);
    CHECK(pipe.jitter().stats().missing >= 12);
    CHECK(pipe.stats().fec >= 10);       // single losses: the following packet was buffered
    CHECK(pipe.stats().concealed >= 1);  // 50 is lost together with 51: PLC
    const auto pcm = decode_all(G711Law::Pcmu, trunk);
    // Every 20 ms frame after start-up carries signal, and no sample jumps like a click would:
    // a 440 Hz sine of peak 8000 moves at most about 2800 per 8 kHz sample.
    double max_step = 0;
    for (std::size_t frame = 10; frame < pcm.size() / 160; ++frame) {
        CAPTURE(frame);
        // Normal frames are about 5600 RMS; a double loss concealed by PLC then FEC measured
        // about 400. Silence would be 0.
        CHECK(rms(pcm, frame * 160, 160) > 250);
    }
    for (std::size_t i = 160 * 10; i < pcm.size(); ++i) max_step = std::max(max_step, std::abs(pcm[i] - pcm[i - 1]));
    CHECK(max_step < 4500);
    const std::vector<double> steady(pcm.begin() + 160 * 10, pcm.end());
    CHECK(std::abs(dominant_frequency(steady, 8000) - 440) <= 10);
}

TEST_CASE("same G.711 law on both legs passes bytes through; different laws are converted") {
    BrowserToTrunk same(AudioCodec::Pcmu, TrunkCodec::Pcmu, 1);
    BrowserToTrunk other(AudioCodec::Pcma, TrunkCodec::Pcmu, 1);
    std::vector<std::uint8_t> frame(kFrameSamples);
    for (std::size_t i = 0; i < frame.size(); ++i) frame[i] = static_cast<std::uint8_t>(i * 7 + 3);
    same.on_packet(1, frame);
    other.on_packet(1, frame);
    std::array<std::uint8_t, kFrameSamples> out{}, conv{};
    same.tick(out);
    other.tick(conv);
    CHECK(std::equal(out.begin(), out.end(), frame.begin()));
    for (std::size_t i = 0; i < frame.size(); ++i) CHECK(conv[i] == linear_to_ulaw(alaw_to_linear(frame[i])));
    // A lost G.711 frame repeats the last one at half level instead of dropping to silence.
    same.tick(out);
    CHECK(same.stats().concealed == 1);
    for (std::size_t i = 0; i < frame.size(); ++i) {
        CAPTURE(i);
        CHECK(std::abs(ulaw_to_linear(out[i]) - ulaw_to_linear(frame[i]) / 2) <= 256);
    }

    TrunkToBrowser pass(TrunkCodec::Pcma, AudioCodec::Pcma);
    std::array<std::uint8_t, kFrameSamples> in{};
    std::copy(frame.begin(), frame.end(), in.begin());
    std::vector<std::uint8_t> payload(kMaxOpusPacket);
    REQUIRE(pass.on_frame(in, payload) == kFrameSamples);
    CHECK(std::equal(in.begin(), in.end(), payload.begin()));
    CHECK(pass.ticks_per_frame() == 160);
}

TEST_CASE("PCMU from the trunk is Opus for the browser: an independent 48 kHz decoder hears 1 kHz") {
    TrunkToBrowser pipe(TrunkCodec::Pcmu, AudioCodec::Opus);
    CHECK(pipe.ticks_per_frame() == 960);  // RFC 7587 §4.1
    int err = 0;
    OpusDecoder* dec = opus_decoder_create(48000, 1, &err);
    REQUIRE(err == OPUS_OK);
    std::vector<double> heard;
    for (int frame = 0; frame < 40; ++frame) {
        const auto pcm = sine(1000, 8000, kFrameSamples, 8000, static_cast<std::size_t>(frame) * kFrameSamples);
        std::array<std::uint8_t, kFrameSamples> g711{};
        g711_encode(G711Law::Pcmu, pcm, g711);
        std::vector<std::uint8_t> packet(kMaxOpusPacket);
        const auto n = pipe.on_frame(g711, packet);
        REQUIRE(n > 0);
        std::vector<std::int16_t> out(960);
        REQUIRE(opus_decode(dec, packet.data(), static_cast<opus_int32>(n), out.data(), 960, 0) == 960);
        if (frame >= 10) heard.insert(heard.end(), out.begin(), out.end());
    }
    opus_decoder_destroy(dec);
    CHECK(std::abs(dominant_frequency(heard, 48000) - 1000) <= 20);
}
