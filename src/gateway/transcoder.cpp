// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/transcoder.hpp"

#include <opus/opus.h>

#include <algorithm>
#include <cstring>

namespace turnbridge::gateway {
namespace {
constexpr std::uint8_t kUlawSilence = 0xFF, kAlawSilence = 0xD5;

G711Law law_of(AudioCodec c) { return c == AudioCodec::Pcma ? G711Law::Pcma : G711Law::Pcmu; }
}  // namespace

BrowserToTrunk::BrowserToTrunk(AudioCodec browser, G711Law trunk, int jitter_target_frames)
    : browser_(browser), trunk_(trunk), jitter_(jitter_target_frames) {
    if (browser_ == AudioCodec::Opus) {
        int err = 0;
        // Decoding straight to 8 kHz: libopus resamples internally (RFC 6716 §4.3 allows any
        // output rate), so there is no separate resampler.
        opus_ = opus_decoder_create(8000, 1, &err);
        if (err != OPUS_OK) opus_ = nullptr;
    }
}

BrowserToTrunk::~BrowserToTrunk() {
    if (opus_) opus_decoder_destroy(opus_);
}

void BrowserToTrunk::on_packet(std::uint16_t sequence, std::span<const std::uint8_t> payload) {
    if (payload.empty()) return;
    jitter_.push(sequence, payload);
}

void BrowserToTrunk::tick(std::span<std::uint8_t, kFrameSamples> out) {
    const auto f = jitter_.pop();
    if (f.kind == JitterBuffer::Frame::Kind::Waiting) {
        std::fill(out.begin(), out.end(), trunk_ == G711Law::Pcmu ? kUlawSilence : kAlawSilence);
        ++stats_.silence;
        return;
    }
    if (browser_ == AudioCodec::Opus) {
        std::array<std::int16_t, kFrameSamples> pcm{};
        decode_opus(f, pcm);
        g711_encode(trunk_, pcm, out);
        return;
    }
    decode_g711(f, out);
}

void BrowserToTrunk::decode_opus(const JitterBuffer::Frame& f, std::span<std::int16_t, kFrameSamples> pcm) {
    if (!opus_) {
        ++stats_.errors;
        return;
    }
    int n = 0;
    if (f.kind == JitterBuffer::Frame::Kind::Packet) {
        // Deviation: a packet longer than 20 ms does not fit one frame, fails with
        // OPUS_BUFFER_TOO_SMALL and is concealed below; browsers send 20 ms (we answer a=ptime:20).
        n = opus_decode(opus_, f.payload.data(), static_cast<opus_int32>(f.payload.size()), pcm.data(),
                        kFrameSamples, 0);
        if (n > 0) ++stats_.decoded;
    } else if (!f.next.empty()) {
        // RFC 6716 §2.1.7: the next packet's LBRR data rebuilds this frame (in-band FEC);
        // libopus falls back to PLC when the packet has none.
        n = opus_decode(opus_, f.next.data(), static_cast<opus_int32>(f.next.size()), pcm.data(),
                        kFrameSamples, 1);
        if (n > 0) ++stats_.fec;
    } else {
        n = opus_decode(opus_, nullptr, 0, pcm.data(), kFrameSamples, 0);  // PLC
        if (n > 0) ++stats_.concealed;
    }
    if (n < 0) {
        ++stats_.errors;
        // A corrupt packet is concealed like a lost one so the output stays continuous.
        n = opus_decode(opus_, nullptr, 0, pcm.data(), kFrameSamples, 0);
    }
    if (n >= 0 && n < static_cast<int>(kFrameSamples)) std::fill(pcm.begin() + std::max(n, 0), pcm.end(), 0);
}

void BrowserToTrunk::decode_g711(const JitterBuffer::Frame& f, std::span<std::uint8_t, kFrameSamples> out) {
    const G711Law in_law = law_of(browser_);
    if (f.kind == JitterBuffer::Frame::Kind::Packet && f.payload.size() >= kFrameSamples) {
        const auto in = f.payload.first(kFrameSamples);
        // Same law on both legs: the bytes pass through untouched (no transcoding).
        if (in_law == trunk_) std::memcpy(out.data(), in.data(), kFrameSamples);
        else g711_convert(in_law, in, out);
        g711_decode(in_law, in, last_);
        ++stats_.decoded;
        return;
    }
    // Simple G.711 concealment: repeat the last frame, halving it each time, so a loss fades out
    // instead of clicking to silence (cf. ITU-T G.711 Appendix I, which does pitch repetition).
    for (auto& s : last_) s = static_cast<std::int16_t>(s / 2);
    g711_encode(trunk_, last_, out);
    ++stats_.concealed;
}

TrunkToBrowser::TrunkToBrowser(G711Law trunk, AudioCodec browser) : trunk_(trunk), browser_(browser) {
    if (browser_ != AudioCodec::Opus) return;
    int err = 0;
    opus_ = opus_encoder_create(8000, 1, OPUS_APPLICATION_VOIP, &err);
    if (err != OPUS_OK) {
        opus_ = nullptr;
        return;
    }
    // In-band FEC so the browser can rebuild single losses (RFC 7587 §3.1.2).
    opus_encoder_ctl(opus_, OPUS_SET_INBAND_FEC(1));
    opus_encoder_ctl(opus_, OPUS_SET_PACKET_LOSS_PERC(5));
    // The source is G.711 narrowband speech: 16 kb/s leaves room for the FEC and loses nothing
    // the trunk had. The encoder is the largest part of a transcoded call (scripts/bench
    // gateway): for 8 kHz input libopus 1.3 takes about 100 us a frame at its default complexity
    // 9, 52 us at 5 and 38 us at 3. At 3 SILK gives up its delayed-decision quantiser and warped
    // noise shaping (silk_setup_complexity); for speech that already went through G.711's 8-bit
    // companding that is a small loss, and it leaves room for half again as many calls a core.
    opus_encoder_ctl(opus_, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
    opus_encoder_ctl(opus_, OPUS_SET_BITRATE(16000));
    opus_encoder_ctl(opus_, OPUS_SET_COMPLEXITY(3));
}

TrunkToBrowser::~TrunkToBrowser() {
    if (opus_) opus_encoder_destroy(opus_);
}

std::size_t TrunkToBrowser::on_frame(std::span<const std::uint8_t, kFrameSamples> g711, std::span<std::uint8_t> out) {
    if (browser_ != AudioCodec::Opus) {
        if (out.size() < kFrameSamples) return 0;
        const G711Law to = law_of(browser_);
        if (to == trunk_) std::memcpy(out.data(), g711.data(), kFrameSamples);  // passthrough
        else g711_convert(trunk_, g711, out.first(kFrameSamples));
        return kFrameSamples;
    }
    if (!opus_) return 0;
    std::array<std::int16_t, kFrameSamples> pcm{};
    g711_decode(trunk_, g711, pcm);
    const int n = opus_encode(opus_, pcm.data(), kFrameSamples, out.data(), static_cast<opus_int32>(out.size()));
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

}  // namespace turnbridge::gateway
