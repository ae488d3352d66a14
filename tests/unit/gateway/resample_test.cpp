// SPDX-License-Identifier: Apache-2.0
// The 2:1 resampler (resample.hpp) and the agent leg's audio (agent_audio.hpp, issue 17).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tone.hpp"
#include "turnbridge/gateway/agent_audio.hpp"
#include "turnbridge/gateway/resample.hpp"

using namespace turnbridge::gateway;
using turnbridge::gateway::test::dominant_frequency;
using turnbridge::gateway::test::sine;

namespace {

// Frequency and amplitude of a tone, skipping the filter's start-up.
struct Measured {
    double hz = 0, amplitude = 0;
};
Measured measure(const std::vector<std::int16_t>& v, double rate, std::size_t skip) {
    std::vector<double> x(v.begin() + static_cast<std::ptrdiff_t>(skip), v.end());
    double sum = 0;
    for (double s : x) sum += s * s;
    return {dominant_frequency(x, rate), std::sqrt(2 * sum / static_cast<double>(x.size()))};
}

// 20 ms frames through `f` one at a time, as a call does.
template <class F>
std::vector<std::int16_t> by_frames(const std::vector<std::int16_t>& in, std::size_t frame, F f) {
    std::vector<std::int16_t> out;
    for (std::size_t i = 0; i + frame <= in.size(); i += frame) f(std::span(in).subspan(i, frame), out);
    return out;
}

}  // namespace

TEST_CASE("resample: a 1 kHz tone survives 8 -> 16 kHz within 2 % (frequency and level), frame by frame") {
    Resampler2x r;
    const auto in = sine(1000, 8000, 8000, 10000);
    const auto out = by_frames(in, 160, [&](std::span<const std::int16_t> f, std::vector<std::int16_t>& o) {
        std::array<std::int16_t, 320> up{};
        r.up(f, up);
        o.insert(o.end(), up.begin(), up.end());
    });
    REQUIRE(out.size() == 16000);
    const auto m = measure(out, 16000, 320);
    CHECK(std::abs(m.hz - 1000) <= 20);
    CHECK(std::abs(m.amplitude - 10000) <= 200);
    // Interpolated, not repeated: the image a sample repeat leaves at 8 - 1 = 7 kHz is gone.
    std::vector<double> x(out.begin() + 320, out.end());
    CHECK(turnbridge::gateway::test::goertzel(x, 7000, 16000) < 1e-4 * turnbridge::gateway::test::goertzel(x, 1000, 16000));
}

TEST_CASE("resample: a 1 kHz tone survives 16 -> 8 kHz within 2 %; a 6 kHz tone is filtered out, not aliased") {
    Resampler2x r;
    auto down = [&](const std::vector<std::int16_t>& in) {
        return by_frames(in, 320, [&](std::span<const std::int16_t> f, std::vector<std::int16_t>& o) {
            std::array<std::int16_t, 160> d{};
            const auto n = r.down(f, d);
            o.insert(o.end(), d.begin(), d.begin() + static_cast<std::ptrdiff_t>(n));
        });
    };
    const auto tone = down(sine(1000, 16000, 16000, 10000));
    REQUIRE(tone.size() == 8000);
    const auto m = measure(tone, 8000, 160);
    CHECK(std::abs(m.hz - 1000) <= 20);
    CHECK(std::abs(m.amplitude - 10000) <= 200);
    // 6 kHz is above 8 kHz's Nyquist: decimated without the filter it would alias to 2 kHz at
    // full level. What is left is under 1 % of it (-40 dB).
    Resampler2x fresh;
    r = fresh;
    const auto high = down(sine(6000, 16000, 16000, 10000));
    CHECK(measure(high, 8000, 160).amplitude < 100);
}

TEST_CASE("resample: odd 16 kHz input keeps its last sample for the next call") {
    Resampler2x r;
    const auto in = sine(500, 16000, 640, 8000);
    std::array<std::int16_t, 320> out{};
    std::size_t n = r.down(std::span(in).first(301), out);
    n += r.down(std::span(in).subspan(301), std::span(out).subspan(n));
    CHECK(n == 320);
}

TEST_CASE("agent audio: PCMU to a mu-law agent passes through untouched, both ways") {
    AgentAudio a(TrunkCodec::Pcmu, AgentMediaFormat::Mulaw);
    std::vector<std::uint8_t> frame(160);
    for (std::size_t i = 0; i < frame.size(); ++i) frame[i] = static_cast<std::uint8_t>(i);
    const auto out = a.to_agent(frame);
    CHECK(out.data() == frame.data());
    std::array<std::uint8_t, 160> trunk{};
    a.to_trunk(frame, trunk);
    CHECK(std::equal(trunk.begin(), trunk.end(), frame.begin()));
    CHECK(agent_codecs("PCMU", AgentMediaFormat::Mulaw) == "PCMU/agent");
    CHECK(agent_codecs("opus", AgentMediaFormat::L16) == "opus/agent-l16");
}

namespace {

std::vector<std::int16_t> from_le(std::span<const std::uint8_t> b) {
    std::vector<std::int16_t> v(b.size() / 2);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::int16_t>(b[2 * i] | (b[2 * i + 1] << 8));
    return v;
}

}  // namespace

TEST_CASE("agent audio: PCMU and G.722 trunks to an L16 agent: 640 bytes of 16 kHz little-endian per 20 ms, and back") {
    for (const auto codec : {TrunkCodec::Pcmu, TrunkCodec::Pcma, TrunkCodec::G722}) {
        CAPTURE(to_string(codec));
        AgentAudio trunk_side(codec, AgentMediaFormat::L16);
        // What the trunk sends: a 1 kHz tone in its codec (through another AgentAudio's encoder).
        AgentAudio encoder(codec, AgentMediaFormat::L16);
        const auto tone16 = sine(1000, 16000, 16000, 8000);
        std::vector<std::int16_t> heard;       // the agent's view (16 kHz)
        std::vector<std::int16_t> back;        // the trunk's frames decoded by a third, at 16 kHz
        AgentAudio decoder(codec, AgentMediaFormat::L16);
        for (std::size_t i = 0; i + 320 <= tone16.size(); i += 320) {
            std::array<std::uint8_t, 640> l16{};
            for (std::size_t k = 0; k < 320; ++k) {
                const auto v = static_cast<std::uint16_t>(tone16[i + k]);
                l16[2 * k] = static_cast<std::uint8_t>(v & 0xFF);
                l16[2 * k + 1] = static_cast<std::uint8_t>(v >> 8);
            }
            std::array<std::uint8_t, 160> rtp{};
            encoder.to_trunk(l16, rtp);   // the agent's L16 as the trunk hears it
            const auto b = decoder.to_agent(rtp);
            const auto bv = from_le(b);
            back.insert(back.end(), bv.begin(), bv.end());
            const auto agent = trunk_side.to_agent(rtp);   // the trunk's audio as the agent gets it
            REQUIRE(agent.size() == 640);
            const auto v = from_le(agent);
            heard.insert(heard.end(), v.begin(), v.end());
        }
        const auto m = measure(heard, 16000, 640);
        CHECK(std::abs(m.hz - 1000) <= 20);
        CHECK(std::abs(m.amplitude - 8000) <= 8000 * 0.1);   // G.711/G.722 quantisation, twice
        CHECK(std::abs(measure(back, 16000, 640).hz - 1000) <= 20);
    }
}

TEST_CASE("agent audio: PCMA and G.722 trunks to a mu-law agent: 160 bytes of mu-law per 20 ms, and back") {
    for (const auto codec : {TrunkCodec::Pcma, TrunkCodec::G722}) {
        CAPTURE(to_string(codec));
        AgentAudio trunk_side(codec, AgentMediaFormat::Mulaw);
        AgentAudio encoder(codec, AgentMediaFormat::Mulaw);   // the trunk's RTP, made from the agent's mu-law
        AgentAudio decoder(codec, AgentMediaFormat::Mulaw);
        const auto tone8 = sine(1000, 8000, 8000, 8000);
        std::vector<std::int16_t> heard, back;   // at 8 kHz: the agent's view, the trunk's frames read back
        for (std::size_t i = 0; i + 160 <= tone8.size(); i += 160) {
            std::array<std::uint8_t, 160> mulaw{};
            g711_encode(G711Law::Pcmu, std::span(tone8).subspan(i, 160), mulaw);
            std::array<std::uint8_t, 160> rtp{};
            encoder.to_trunk(mulaw, rtp);
            const auto agent = trunk_side.to_agent(rtp);
            REQUIRE(agent.size() == 160);   // 20 ms of mu-law whatever the trunk's codec
            std::array<std::int16_t, 160> pcm{};
            g711_decode(G711Law::Pcmu, agent, pcm);
            heard.insert(heard.end(), pcm.begin(), pcm.end());
            const auto b = decoder.to_agent(rtp);
            g711_decode(G711Law::Pcmu, b, pcm);
            back.insert(back.end(), pcm.begin(), pcm.end());
        }
        const auto m = measure(heard, 8000, 320);
        CHECK(std::abs(m.hz - 1000) <= 20);
        CHECK(std::abs(m.amplitude - 8000) <= 8000 * 0.1);
        CHECK(std::abs(measure(back, 8000, 320).hz - 1000) <= 20);
    }
}

TEST_CASE("agent audio: sizes an RTP packet may have; G.722 in whole frames only") {
    AgentAudio pcmu(TrunkCodec::Pcmu, AgentMediaFormat::L16);
    std::vector<std::uint8_t> p30(240, 0xFF);   // 30 ms (a=ptime:30)
    CHECK(pcmu.to_agent(p30).size() == 960);
    std::vector<std::uint8_t> big(481, 0xFF);
    CHECK(pcmu.to_agent(big).empty());
    AgentAudio g722(TrunkCodec::G722, AgentMediaFormat::L16);
    std::vector<std::uint8_t> half(80, 0);
    CHECK(g722.to_agent(half).empty());
    AgentAudio g722mu(TrunkCodec::G722, AgentMediaFormat::Mulaw);
    std::vector<std::uint8_t> frame(160, 0);
    CHECK(g722mu.to_agent(frame).size() == 160);
}

TEST_CASE("agent trunk codecs: mu-law agents PCMU first, then PCMA, G.722 last; L16 agents G.722 first when allowed") {
    CHECK(agent_trunk_codecs(AgentMediaFormat::Mulaw, false) == std::vector<TrunkCodec>{TrunkCodec::Pcmu, TrunkCodec::Pcma});
    CHECK(agent_trunk_codecs(AgentMediaFormat::Mulaw, true) ==
          std::vector<TrunkCodec>{TrunkCodec::Pcmu, TrunkCodec::Pcma, TrunkCodec::G722});
    CHECK(agent_trunk_codecs(AgentMediaFormat::L16, false) == std::vector<TrunkCodec>{TrunkCodec::Pcmu, TrunkCodec::Pcma});
    CHECK(agent_trunk_codecs(AgentMediaFormat::L16, true) ==
          std::vector<TrunkCodec>{TrunkCodec::G722, TrunkCodec::Pcmu, TrunkCodec::Pcma});
}
