// SPDX-License-Identifier: Apache-2.0
#pragma once
// The audio between an agent call's trunk leg and the agent (issue 17), without I/O: trunk RTP
// payloads (G.711 at 8 kHz or G.722 at 16 kHz, all on the 8000 Hz RTP clock, trunk_codec.hpp)
// become the agent's media format (config::AgentMediaFormat) and 20 ms agent frames become
// 160-byte trunk frames.
//   mulaw + PCMU   the bytes as they are (Twilio's own format: no conversion at all)
//   mulaw + PCMA   A-law decoded, mu-law encoded; and back
//   mulaw + G.722  decoded at 16 kHz, 16 -> 8 kHz, mu-law; and back
//   l16 + G.711    decode, 8 -> 16 kHz (resample.hpp), little-endian bytes; and back
//   l16 + G.722    G.722 decoded and encoded at 16 kHz directly: no resampling
// Buffers and codec state are made once per call; nothing is allocated per packet.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "turnbridge/config/agent_url.hpp"
#include "turnbridge/gateway/g722.hpp"
#include "turnbridge/gateway/resample.hpp"
#include "turnbridge/gateway/trunk_codec.hpp"

namespace turnbridge::gateway {

using config::AgentMediaFormat;

// 20 ms toward or from the agent: 160 bytes of mu-law or 640 of L16.
constexpr std::size_t agent_frame_bytes(AgentMediaFormat f) { return f == AgentMediaFormat::L16 ? 640 : 160; }
// The call record's codecs of an agent call: "<trunk or browser codec>/agent", "-l16" added for
// L16 ("PCMU/agent", "G722/agent-l16", "opus/agent-l16").
std::string agent_codecs(std::string_view caller_codec, AgentMediaFormat f);

// The trunk codecs an agent call answers or offers, in order. A mu-law agent: PCMU (the bytes
// pass through untouched), then PCMA (converted), then G.722 when allowed (resampled 16 <-> 8
// kHz). An L16 agent: G.722 first when allowed (16 kHz end to end), then PCMU and PCMA
// (resampled 8 <-> 16 kHz).
std::vector<TrunkCodec> agent_trunk_codecs(AgentMediaFormat f, bool g722);
// Why a trunk's offer cannot be answered for an agent of format `f` (no m=audio RTP/AVP, no codec
// of agent_trunk_codecs()), or nullopt when it can: the router answers 488 before any agent is
// dialled (RFC 3261 §21.4.26), as AgentPort::open_agent would refuse it anyway.
std::optional<std::string_view> agent_offer_error(std::string_view offer_sdp, AgentMediaFormat f, bool g722);

class AgentAudio {
public:
    static constexpr std::size_t kMaxTrunkPayload = 480;   // 60 ms in one RTP packet (a=ptime up to 60)
    static constexpr std::size_t kMaxAgentFrame = agent_frame_bytes(AgentMediaFormat::L16);

    AgentAudio(TrunkCodec trunk, AgentMediaFormat format);
    ~AgentAudio();
    AgentAudio(const AgentAudio&) = delete;
    AgentAudio& operator=(const AgentAudio&) = delete;

    std::size_t frame_bytes() const { return agent_frame_bytes(format_); }
    // One trunk RTP payload as the agent's `media` payload: a view of `payload` itself or of a
    // buffer of ours, valid until the next call. Empty: a size we cannot take (over 60 ms, or
    // G.722 that is not whole 20 ms frames).
    std::span<const std::uint8_t> to_agent(std::span<const std::uint8_t> payload);
    // One agent frame (frame_bytes()) as the trunk frame `out`.
    void to_trunk(std::span<const std::uint8_t> frame, std::span<std::uint8_t, kTrunkFrameBytes> out);

private:
    TrunkCodec trunk_;
    AgentMediaFormat format_;
    std::unique_ptr<G722Decoder> g722_in_;
    std::unique_ptr<G722Encoder> g722_out_;
    Resampler2x rate_in_, rate_out_;   // one filter state per direction
    std::array<std::int16_t, kMaxTrunkPayload * 2> pcm_{};      // trunk -> agent, at the trunk's rate
    std::array<std::int16_t, kMaxTrunkPayload * 2> pcm_rate_{}; // ... at the agent's rate
    std::array<std::uint8_t, kMaxTrunkPayload * 4> bytes_{};    // ... as the agent's bytes
    std::array<std::int16_t, kWideFrameSamples> frame_pcm_{};   // agent -> trunk
    std::array<std::int16_t, kWideFrameSamples> frame_rate_{};
};

}  // namespace turnbridge::gateway
