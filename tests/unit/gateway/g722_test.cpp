// SPDX-License-Identifier: Apache-2.0
// G.722 (spandsp) frame by frame, and in-band DTMF detection, as the trunk leg uses them.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tone.hpp"
#include "turnbridge/gateway/g722.hpp"
#include "turnbridge/gateway/inband_dtmf.hpp"

using namespace turnbridge::gateway;
using namespace turnbridge::gateway::test;

namespace {

double rms(const std::vector<double>& x) {
    double s = 0;
    for (double v : x) s += v * v;
    return std::sqrt(s / static_cast<double>(x.size()));
}

// `frames` 20 ms frames of `hz` through encoder and decoder; what the decoder gave after the first 100 ms.
std::vector<double> round_trip(bool wideband, double hz, double amplitude, std::size_t frames) {
    G722Encoder enc(wideband);
    G722Decoder dec(wideband);
    const std::size_t n = enc.frame_samples();
    const double rate = wideband ? 16000 : 8000;
    std::vector<double> heard;
    std::array<std::uint8_t, kTrunkFrameBytes> frame{};
    std::array<std::int16_t, kWideFrameSamples> pcm{};
    for (std::size_t f = 0; f < frames; ++f) {
        const auto in = sine(hz, rate, n, amplitude, f * n);
        REQUIRE(enc.encode(in, frame));
        REQUIRE(dec.decode(frame, pcm) == n);
        if (f >= 5) heard.insert(heard.end(), pcm.begin(), pcm.begin() + static_cast<long>(n));
    }
    return heard;
}

// DTMF row and column frequencies (ITU-T Q.23) for the digits used here.
std::pair<double, double> dtmf_pair(char d) {
    switch (d) {
    case '1': return {697, 1209};
    case '5': return {770, 1336};
    case '9': return {852, 1477};
    case '#': return {941, 1477};
    default: return {0, 0};
    }
}

}  // namespace

TEST_CASE("G.722 at 64 kbit/s: a 1 kHz tone comes back at 1 kHz (2 %) and its level (1 dB); 160 bytes per 20 ms") {
    for (bool wideband : {true, false}) {
        CAPTURE(wideband);
        const auto heard = round_trip(wideband, 1000, 8000, 50);
        const double rate = wideband ? 16000 : 8000;
        CHECK(std::abs(dominant_frequency(heard, rate) - 1000) <= 20);
        const double level_db = 20 * std::log10(rms(heard) / (8000 / std::sqrt(2.0)));
        CHECK(std::abs(level_db) <= 1.0);
    }
    // Wideband keeps what G.711 cannot carry: a 6 kHz tone.
    const auto high = round_trip(true, 6000, 8000, 50);
    CHECK(std::abs(dominant_frequency(high, 16000) - 6000) <= 120);
    CHECK(20 * std::log10(rms(high) / (8000 / std::sqrt(2.0))) > -3);
}

TEST_CASE("G.722 frames of the wrong size are refused, not overrun") {
    G722Encoder enc(true);
    std::array<std::uint8_t, kTrunkFrameBytes> frame{};
    const std::vector<std::int16_t> short_pcm(160);
    CHECK_FALSE(enc.encode(short_pcm, frame));
    G722Decoder dec(true);
    std::vector<std::int16_t> small(160);
    CHECK(dec.decode(frame, small) == 0);
}

TEST_CASE("in-band DTMF: the digits 159# in tones become RFC 4733 events, one update per frame, three end packets") {
    InbandDtmf det;
    // Each digit 100 ms at about -10 dBm0 per tone, 60 ms apart, as a carrier's IVR sends them.
    std::vector<std::int16_t> audio(8000 * 20 / 1000 * 5, 0);  // 100 ms of silence first
    for (char d : std::string("159#")) {
        const auto [lo, hi] = dtmf_pair(d);
        const auto a = sine(lo, 8000, 800, 7000), b = sine(hi, 8000, 800, 7000);
        for (std::size_t i = 0; i < a.size(); ++i) audio.push_back(static_cast<std::int16_t>(a[i] + b[i]));
        audio.insert(audio.end(), 480, 0);
    }
    audio.insert(audio.end(), 1600, 0);
    struct Seen { std::uint8_t event; std::uint32_t start; std::uint16_t duration; int updates = 0, ends = 0; };
    std::vector<Seen> seen;
    const std::uint32_t base = 123456;
    for (std::size_t f = 0; f + kTrunkFrameBytes <= audio.size(); f += kTrunkFrameBytes) {
        const auto frame = std::span<const std::int16_t>(audio).subspan(f).first<kTrunkFrameBytes>();
        for (const auto& e : det.on_frame(frame, base + static_cast<std::uint32_t>(f))) {
            if (seen.empty() || seen.back().start != e.start) seen.push_back({e.event.event, e.start, 0});
            auto& s = seen.back();
            CHECK(s.event == e.event.event);
            CHECK(e.event.duration >= s.duration);  // grows, never shrinks (RFC 4733 §2.5.1.2)
            s.duration = e.event.duration;
            (e.event.end ? s.ends : s.updates) += 1;
        }
    }
    REQUIRE(seen.size() == 4);
    const std::uint8_t want[] = {1, 5, 9, 11};
    for (std::size_t i = 0; i < 4; ++i) {
        CAPTURE(i);
        CHECK(seen[i].event == want[i]);
        CHECK(seen[i].ends == 3);
        // 100 ms is 800 ticks; the detector needs a block or two to be sure of the start and end.
        CHECK(seen[i].duration >= 640);
        CHECK(seen[i].duration <= 1120);
        CHECK(seen[i].updates >= 3);
        // Starts on a frame boundary near where the tone began: 100 ms + i * 160 ms.
        const std::uint32_t tone_at = base + 800 + static_cast<std::uint32_t>(i) * 1280;
        CHECK(seen[i].start >= tone_at);
        CHECK(seen[i].start <= tone_at + 320);
    }
}

TEST_CASE("in-band DTMF: speech-like tones and silence give no events") {
    InbandDtmf det;
    std::size_t events = 0;
    for (std::size_t f = 0; f < 100; ++f) {
        auto a = sine(440, 8000, kTrunkFrameBytes, 9000, f * kTrunkFrameBytes);
        const auto b = sine(1000, 8000, kTrunkFrameBytes, 3000, f * kTrunkFrameBytes);
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::int16_t>(a[i] + b[i]);
        events += det.on_frame(std::span<const std::int16_t, kTrunkFrameBytes>(a.data(), kTrunkFrameBytes),
                               static_cast<std::uint32_t>(f * kTrunkFrameBytes)).size();
    }
    CHECK(events == 0);
}
