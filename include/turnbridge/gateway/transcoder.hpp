// SPDX-License-Identifier: Apache-2.0
#pragma once
// The media pipeline between the legs, one 20 ms frame at a time. The trunk frame is 160 bytes
// whatever its codec (trunk_codec.hpp); the audio behind it is 160 samples at 8 kHz (G.711) or
// 320 at 16 kHz (G.722 with an Opus browser: wideband end to end).
// Browser -> trunk: jitter buffer, then Opus decode at the trunk's rate with PLC/FEC (libopus) or
// G.711 passthrough/conversion, then the trunk codec. Trunk -> browser: the trunk codec to Opus at
// its rate, or to G.711 (passthrough when the laws match).
#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "turnbridge/gateway/browser_sdp.hpp"
#include "turnbridge/gateway/g711.hpp"
#include "turnbridge/gateway/g722.hpp"
#include "turnbridge/gateway/inband_dtmf.hpp"
#include "turnbridge/gateway/jitter_buffer.hpp"
#include "turnbridge/gateway/trunk_codec.hpp"

struct OpusDecoder;
struct OpusEncoder;

namespace turnbridge::gateway {

constexpr std::size_t kFrameSamples = 160;       // 20 ms at 8 kHz
constexpr std::uint32_t kOpusFrameTicks = 960;   // 20 ms at Opus's RTP clock, always 48 kHz (RFC 7587 §4.1)
constexpr std::size_t kMaxOpusPacket = 1275;     // RFC 6716 §3.4 (R5)

class BrowserToTrunk {
public:
    BrowserToTrunk(AudioCodec browser, TrunkCodec trunk, int jitter_target_frames = 3);
    ~BrowserToTrunk();
    BrowserToTrunk(const BrowserToTrunk&) = delete;
    BrowserToTrunk& operator=(const BrowserToTrunk&) = delete;

    // The payload of one RTP packet from the browser (after SRTP), by its sequence number.
    void on_packet(std::uint16_t sequence, std::span<const std::uint8_t> payload);
    // Every 20 ms: the next trunk frame. Always a full, continuous frame: concealment while
    // packets are missing, silence before the first one.
    void tick(std::span<std::uint8_t, kTrunkFrameBytes> out);

    struct Stats { std::uint32_t decoded = 0, concealed = 0, fec = 0, silence = 0, errors = 0; };
    const Stats& stats() const { return stats_; }
    const JitterBuffer& jitter() const { return jitter_; }

private:
    void decode_opus(const JitterBuffer::Frame& f, std::span<std::int16_t> pcm);
    void decode_g711(const JitterBuffer::Frame& f, std::span<std::uint8_t, kTrunkFrameBytes> out);
    void encode(std::span<const std::int16_t> pcm, std::span<std::uint8_t, kTrunkFrameBytes> out);

    AudioCodec browser_;
    TrunkCodec trunk_;
    std::size_t samples_;   // per frame at the rate Opus is decoded: 160, or 320 toward G.722
    JitterBuffer jitter_;
    OpusDecoder* opus_ = nullptr;
    std::unique_ptr<G722Encoder> g722_;
    std::array<std::int16_t, kFrameSamples> last_{};  // G.711 concealment repeats this, fading
    Stats stats_;
};

class TrunkToBrowser {
public:
    // detect_dtmf: run the in-band DTMF detector on the trunk's audio (CallMedia does when the
    // trunk negotiated no telephone-event and the browser did).
    TrunkToBrowser(TrunkCodec trunk, AudioCodec browser, bool detect_dtmf = false);
    ~TrunkToBrowser();
    TrunkToBrowser(const TrunkToBrowser&) = delete;
    TrunkToBrowser& operator=(const TrunkToBrowser&) = delete;

    // One 20 ms trunk frame in; the browser payload written to `out` (kMaxOpusPacket bytes
    // suffice). Returns its size, 0 on error. `timestamp` is the frame's trunk RTP timestamp
    // (for detected DTMF).
    std::size_t on_frame(std::span<const std::uint8_t, kTrunkFrameBytes> frame, std::span<std::uint8_t> out,
                         std::uint32_t timestamp = 0);
    // The telephone-events the detector found in the last frame (empty without a detector).
    std::span<const InbandDtmf::Event> dtmf() const { return dtmf_events_; }
    // RTP timestamp increment per frame on the browser leg.
    std::uint32_t ticks_per_frame() const { return browser_ == AudioCodec::Opus ? kOpusFrameTicks : kFrameSamples; }

private:
    std::size_t decode(std::span<const std::uint8_t, kTrunkFrameBytes> frame, std::span<std::int16_t> pcm);
    void detect(std::span<const std::int16_t> pcm, std::uint32_t timestamp);

    TrunkCodec trunk_;
    AudioCodec browser_;
    OpusEncoder* opus_ = nullptr;
    std::unique_ptr<G722Decoder> g722_;
    std::unique_ptr<InbandDtmf> detector_;
    std::span<const InbandDtmf::Event> dtmf_events_;
};

}  // namespace turnbridge::gateway
