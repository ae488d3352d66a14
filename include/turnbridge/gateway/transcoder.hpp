// SPDX-License-Identifier: Apache-2.0
#pragma once
// The media pipeline between the legs, one 20 ms frame (160 samples at 8 kHz) at a time.
// Browser -> trunk: jitter buffer, then Opus decode at 8 kHz with PLC/FEC (libopus) or G.711
// passthrough/conversion, then G.711. Trunk -> browser: G.711 to Opus at 8 kHz, or passthrough.
#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "turnbridge/gateway/browser_sdp.hpp"
#include "turnbridge/gateway/g711.hpp"
#include "turnbridge/gateway/jitter_buffer.hpp"

struct OpusDecoder;
struct OpusEncoder;

namespace turnbridge::gateway {

constexpr std::size_t kFrameSamples = 160;       // 20 ms at 8 kHz
constexpr std::uint32_t kOpusFrameTicks = 960;   // 20 ms at Opus's RTP clock, always 48 kHz (RFC 7587 §4.1)
constexpr std::size_t kMaxOpusPacket = 1275;     // RFC 6716 §3.4 (R5)

class BrowserToTrunk {
public:
    BrowserToTrunk(AudioCodec browser, G711Law trunk, int jitter_target_frames = 3);
    ~BrowserToTrunk();
    BrowserToTrunk(const BrowserToTrunk&) = delete;
    BrowserToTrunk& operator=(const BrowserToTrunk&) = delete;

    // The payload of one RTP packet from the browser (after SRTP), by its sequence number.
    void on_packet(std::uint16_t sequence, std::span<const std::uint8_t> payload);
    // Every 20 ms: the next 160 G.711 bytes for the trunk. Always a full, continuous frame:
    // concealment while packets are missing, silence before the first one.
    void tick(std::span<std::uint8_t, kFrameSamples> out);

    struct Stats { std::uint32_t decoded = 0, concealed = 0, fec = 0, silence = 0, errors = 0; };
    const Stats& stats() const { return stats_; }
    const JitterBuffer& jitter() const { return jitter_; }

private:
    void decode_opus(const JitterBuffer::Frame& f, std::span<std::int16_t, kFrameSamples> pcm);
    void decode_g711(const JitterBuffer::Frame& f, std::span<std::uint8_t, kFrameSamples> out);

    AudioCodec browser_;
    G711Law trunk_;
    JitterBuffer jitter_;
    OpusDecoder* opus_ = nullptr;
    std::array<std::int16_t, kFrameSamples> last_{};  // G.711 concealment repeats this, fading
    Stats stats_;
};

class TrunkToBrowser {
public:
    TrunkToBrowser(G711Law trunk, AudioCodec browser);
    ~TrunkToBrowser();
    TrunkToBrowser(const TrunkToBrowser&) = delete;
    TrunkToBrowser& operator=(const TrunkToBrowser&) = delete;

    // One 20 ms G.711 frame from the trunk in; the browser payload written to `out`
    // (kMaxOpusPacket bytes suffice). Returns its size, 0 on error.
    std::size_t on_frame(std::span<const std::uint8_t, kFrameSamples> g711, std::span<std::uint8_t> out);
    // RTP timestamp increment per frame on the browser leg.
    std::uint32_t ticks_per_frame() const { return browser_ == AudioCodec::Opus ? kOpusFrameTicks : kFrameSamples; }

private:
    G711Law trunk_;
    AudioCodec browser_;
    OpusEncoder* opus_ = nullptr;
};

}  // namespace turnbridge::gateway
