// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/transcoder.hpp"

#include <opus/opus.h>

#include <algorithm>
#include <cstring>

namespace turnbridge::gateway {
namespace {
constexpr std::uint8_t kUlawSilence = 0xFF, kAlawSilence = 0xD5;

G711Law law_of(AudioCodec c) { return c == AudioCodec::Pcma ? G711Law::Pcma : G711Law::Pcmu; }

// Opus runs at the trunk's audio rate: 16 kHz toward G.722 (wideband), else 8 kHz.
std::size_t opus_frame_samples(AudioCodec browser, TrunkCodec trunk) {
    return browser == AudioCodec::Opus && trunk == TrunkCodec::G722 ? kWideFrameSamples : kFrameSamples;
}
opus_int32 rate_of(std::size_t frame_samples) { return static_cast<opus_int32>(frame_samples * 50); }
}  // namespace

BrowserToTrunk::BrowserToTrunk(AudioCodec browser, TrunkCodec trunk, int jitter_target_frames)
    : browser_(browser), trunk_(trunk), samples_(opus_frame_samples(browser, trunk)), jitter_(jitter_target_frames) {
    if (trunk_ == TrunkCodec::G722) g722_ = std::make_unique<G722Encoder>(browser_ == AudioCodec::Opus);
    if (browser_ == AudioCodec::Opus) {
        int err = 0;
        // Decoding straight to the trunk's rate: libopus resamples internally (RFC 6716 §4.3
        // allows any output rate), so there is no separate resampler.
        opus_ = opus_decoder_create(rate_of(samples_), 1, &err);
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

void BrowserToTrunk::tick(std::span<std::uint8_t, kTrunkFrameBytes> out) {
    const auto f = jitter_.pop();
    if (f.kind == JitterBuffer::Frame::Kind::Waiting) {
        ++stats_.silence;
        if (g722_) {
            const std::array<std::int16_t, kWideFrameSamples> zero{};
            g722_->encode(std::span(zero).first(g722_->frame_samples()), out);
            return;
        }
        std::fill(out.begin(), out.end(), trunk_ == TrunkCodec::Pcmu ? kUlawSilence : kAlawSilence);
        return;
    }
    if (browser_ == AudioCodec::Opus) {
        std::array<std::int16_t, kWideFrameSamples> pcm{};
        const auto frame = std::span(pcm).first(samples_);
        decode_opus(f, frame);
        encode(frame, out);
        return;
    }
    decode_g711(f, out);
}

void BrowserToTrunk::encode(std::span<const std::int16_t> pcm, std::span<std::uint8_t, kTrunkFrameBytes> out) {
    if (g722_) g722_->encode(pcm, out);
    else g711_encode(*g711_law(trunk_), pcm, out);
}

void BrowserToTrunk::decode_opus(const JitterBuffer::Frame& f, std::span<std::int16_t> pcm) {
    if (!opus_) {
        ++stats_.errors;
        return;
    }
    const int size = static_cast<int>(pcm.size());
    int n = 0;
    if (f.kind == JitterBuffer::Frame::Kind::Packet) {
        // Deviation: a packet longer than 20 ms does not fit one frame, fails with
        // OPUS_BUFFER_TOO_SMALL and is concealed below; browsers send 20 ms (we answer a=ptime:20).
        n = opus_decode(opus_, f.payload.data(), static_cast<opus_int32>(f.payload.size()), pcm.data(), size, 0);
        if (n > 0) ++stats_.decoded;
    } else if (!f.next.empty()) {
        // RFC 6716 §2.1.7: the next packet's LBRR data rebuilds this frame (in-band FEC);
        // libopus falls back to PLC when the packet has none.
        n = opus_decode(opus_, f.next.data(), static_cast<opus_int32>(f.next.size()), pcm.data(), size, 1);
        if (n > 0) ++stats_.fec;
    } else {
        n = opus_decode(opus_, nullptr, 0, pcm.data(), size, 0);  // PLC
        if (n > 0) ++stats_.concealed;
    }
    if (n < 0) {
        ++stats_.errors;
        // A corrupt packet is concealed like a lost one so the output stays continuous.
        n = opus_decode(opus_, nullptr, 0, pcm.data(), size, 0);
    }
    if (n >= 0 && n < size) std::fill(pcm.begin() + std::max(n, 0), pcm.end(), 0);
}

void BrowserToTrunk::decode_g711(const JitterBuffer::Frame& f, std::span<std::uint8_t, kTrunkFrameBytes> out) {
    const G711Law in_law = law_of(browser_);
    const auto out_law = g711_law(trunk_);
    if (f.kind == JitterBuffer::Frame::Kind::Packet && f.payload.size() >= kFrameSamples) {
        const auto in = f.payload.first(kFrameSamples);
        g711_decode(in_law, in, last_);
        if (!out_law) g722_->encode(last_, out);  // G.722 trunk: its lower band, at 8 kHz
        // Same law on both legs: the bytes pass through untouched (no transcoding).
        else if (in_law == *out_law) std::memcpy(out.data(), in.data(), kFrameSamples);
        else g711_convert(in_law, in, out);
        ++stats_.decoded;
        return;
    }
    // Simple G.711 concealment: repeat the last frame, halving it each time, so a loss fades out
    // instead of clicking to silence (cf. ITU-T G.711 Appendix I, which does pitch repetition).
    for (auto& s : last_) s = static_cast<std::int16_t>(s / 2);
    encode(last_, out);
    ++stats_.concealed;
}

TrunkToBrowser::TrunkToBrowser(TrunkCodec trunk, AudioCodec browser, bool detect_dtmf) : trunk_(trunk), browser_(browser) {
    if (trunk_ == TrunkCodec::G722) g722_ = std::make_unique<G722Decoder>(browser_ == AudioCodec::Opus);
    if (detect_dtmf) detector_ = std::make_unique<InbandDtmf>();
    if (browser_ != AudioCodec::Opus) return;
    int err = 0;
    const std::size_t samples = opus_frame_samples(browser_, trunk_);
    opus_ = opus_encoder_create(rate_of(samples), 1, OPUS_APPLICATION_VOIP, &err);
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
    // G.722 is wideband (up to 7 kHz): SILK's wideband mode wants 24 kb/s to keep it.
    opus_encoder_ctl(opus_, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
    opus_encoder_ctl(opus_, OPUS_SET_BITRATE(samples == kWideFrameSamples ? 24000 : 16000));
    opus_encoder_ctl(opus_, OPUS_SET_COMPLEXITY(3));
}

TrunkToBrowser::~TrunkToBrowser() {
    if (opus_) opus_encoder_destroy(opus_);
}

std::size_t TrunkToBrowser::decode(std::span<const std::uint8_t, kTrunkFrameBytes> frame, std::span<std::int16_t> pcm) {
    if (g722_) return g722_->decode(frame, pcm);
    g711_decode(*g711_law(trunk_), frame, pcm.first(kFrameSamples));
    return kFrameSamples;
}

std::size_t TrunkToBrowser::on_frame(std::span<const std::uint8_t, kTrunkFrameBytes> frame, std::span<std::uint8_t> out,
                                     std::uint32_t timestamp) {
    dtmf_events_ = {};
    const auto law = g711_law(trunk_);
    if (browser_ != AudioCodec::Opus && law && !detector_) {
        // G.711 both ways: no PCM at all.
        if (out.size() < kFrameSamples) return 0;
        const G711Law to = law_of(browser_);
        if (to == *law) std::memcpy(out.data(), frame.data(), kFrameSamples);  // passthrough
        else g711_convert(*law, frame, out.first(kFrameSamples));
        return kFrameSamples;
    }
    std::array<std::int16_t, kWideFrameSamples> buf{};
    const auto pcm = std::span(buf).first(decode(frame, buf));
    if (detector_) detect(pcm, timestamp);
    if (browser_ != AudioCodec::Opus) {
        if (out.size() < kFrameSamples || pcm.size() != kFrameSamples) return 0;
        const G711Law to = law_of(browser_);
        if (law && to == *law) std::memcpy(out.data(), frame.data(), kFrameSamples);
        else if (law) g711_convert(*law, frame, out.first(kFrameSamples));
        else g711_encode(to, pcm, out);
        return kFrameSamples;
    }
    if (!opus_ || pcm.empty()) return 0;
    const int n = opus_encode(opus_, pcm.data(), static_cast<int>(pcm.size()), out.data(), static_cast<opus_int32>(out.size()));
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

// The detector works at 8 kHz; 16 kHz audio is halved by averaging pairs (DTMF tones end at
// 1633 Hz, far below the 4 kHz that folds back).
void TrunkToBrowser::detect(std::span<const std::int16_t> pcm, std::uint32_t timestamp) {
    std::array<std::int16_t, kTrunkFrameBytes> narrow{};
    if (pcm.size() == kWideFrameSamples) {
        for (std::size_t i = 0; i < narrow.size(); ++i)
            narrow[i] = static_cast<std::int16_t>((pcm[2 * i] + pcm[2 * i + 1]) / 2);
    } else if (pcm.size() == kFrameSamples) {
        std::copy(pcm.begin(), pcm.end(), narrow.begin());
    } else {
        return;
    }
    dtmf_events_ = detector_->on_frame(narrow, timestamp);
}

}  // namespace turnbridge::gateway
