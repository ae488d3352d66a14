// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <vector>

#include "turnbridge/gateway/g711.hpp"
#include "turnbridge/gateway/g722.hpp"
#include "turnbridge/gateway/trunk_join.hpp"
#include "tone.hpp"

using namespace turnbridge::gateway;
using namespace turnbridge::gateway::test;

namespace {

// `frames` 20 ms frames of a tone of `hz` in `codec` (G.722 in its narrowband mode).
std::vector<std::array<std::uint8_t, kTrunkFrameBytes>> tone_frames(TrunkCodec codec, double hz, std::size_t frames) {
    std::vector<std::array<std::uint8_t, kTrunkFrameBytes>> out(frames);
    G722Encoder g722(false);
    for (std::size_t k = 0; k < frames; ++k) {
        const auto pcm = sine(hz, 8000, kTrunkFrameBytes, 8000, k * kTrunkFrameBytes);
        if (const auto law = g711_law(codec)) g711_encode(*law, pcm, out[k]);
        else g722.encode(pcm, out[k]);
    }
    return out;
}

std::vector<double> decode(TrunkCodec codec, const std::vector<std::array<std::uint8_t, kTrunkFrameBytes>>& frames) {
    std::vector<double> x;
    G722Decoder g722(false);
    std::array<std::int16_t, kTrunkFrameBytes> pcm{};
    for (const auto& f : frames) {
        if (const auto law = g711_law(codec)) g711_decode(*law, f, pcm);
        else g722.decode(f, pcm);
        x.insert(x.end(), pcm.begin(), pcm.end());
    }
    return x;
}

}  // namespace

TEST_CASE("TrunkJoin: one party's tone reaches the other in its codec (issue 14, attended transfer)") {
    const TrunkCodec codecs[] = {TrunkCodec::Pcmu, TrunkCodec::Pcma, TrunkCodec::G722};
    for (const auto from : codecs)
        for (const auto to : codecs) {
            CAPTURE(static_cast<int>(from));
            CAPTURE(static_cast<int>(to));
            TrunkJoin join(from, to);
            std::vector<std::array<std::uint8_t, kTrunkFrameBytes>> got;
            for (const auto& f : tone_frames(from, 1000, 50)) {
                join.push(f);
                got.emplace_back();
                CHECK(join.pop(got.back()));
            }
            const auto x = decode(to, got);
            CHECK(dominant_frequency(x, 8000) == doctest::Approx(1000).epsilon(0.02));
            if (from == to) CHECK(got == tone_frames(from, 1000, 50));   // passed as it is
        }
}

TEST_CASE("TrunkJoin: silence when nothing is queued, bounded delay when the sender runs ahead") {
    TrunkJoin ulaw(TrunkCodec::Pcma, TrunkCodec::Pcmu);
    std::array<std::uint8_t, kTrunkFrameBytes> out{};
    CHECK_FALSE(ulaw.pop(out));
    CHECK(out[0] == 0xff);   // PCMU silence
    TrunkJoin g722(TrunkCodec::Pcmu, TrunkCodec::G722);
    CHECK_FALSE(g722.pop(out));
    const auto frames = tone_frames(TrunkCodec::Pcma, 440, 20);
    for (const auto& f : frames) ulaw.push(f);
    CHECK(ulaw.queued() == TrunkJoin::kMaxFrames);
    CHECK(ulaw.overflowed() == 20 - TrunkJoin::kMaxFrames);
    // The newest frames are the ones kept.
    std::array<std::uint8_t, kTrunkFrameBytes> want{};
    g711_convert(G711Law::Pcma, frames[20 - TrunkJoin::kMaxFrames], want);
    CHECK(ulaw.pop(out));
    CHECK(out == want);
}
