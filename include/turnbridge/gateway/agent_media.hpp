// SPDX-License-Identifier: Apache-2.0
#pragma once
// The media of one trunk call answered by an AI agent (issue 17), without I/O: RTP from the
// trunk becomes Media Streams `media` messages (PCMU to a mu-law agent base64-encoded as is;
// otherwise converted by AgentAudio, e.g. to L16 16 kHz), RFC 4733 telephone-events become
// `dtmf` (one per event, at its first packet), and the agent's audio leaves as RTP, one 20 ms
// trunk frame per tick from AgentStream's bounded playout buffer (RFC 3550 §5.1: one SSRC,
// sequence +1 and timestamp +160 per packet).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/gateway/agent_audio.hpp"
#include "turnbridge/gateway/agent_stream.hpp"
#include "turnbridge/gateway/rtp_packet.hpp"
#include "turnbridge/gateway/trunk_sdp.hpp"

namespace turnbridge::gateway {

struct AgentLegStats {
    std::uint64_t in_packets = 0, in_bytes = 0, out_packets = 0, out_bytes = 0;   // trunk RTP, in = toward us
    std::uint64_t dtmf = 0;
    TrunkCodec codec = TrunkCodec::Pcmu;                    // for the record's codecs (agent_codecs)
    AgentMediaFormat format = AgentMediaFormat::Mulaw;
};

class AgentMedia {
public:
    using Time = AgentStream::Time;
    AgentMedia(AgentStream stream, TrunkMedia media, std::uint32_t ssrc, std::uint16_t sequence, std::uint32_t timestamp);

    // connected and start, when the agent's WebSocket is up.
    void open(Time now, std::vector<std::string>& to_agent);
    // One RTP datagram from the trunk's media address.
    void on_rtp(Time now, Bytes datagram, std::vector<std::string>& to_agent);
    std::optional<AgentTransfer> on_agent(std::string_view text, std::vector<std::string>& to_agent) {
        return stream_.on_message(text, to_agent);
    }
    // The 20 ms tick: the RTP datagram to send to the trunk (empty: nothing to play).
    Bytes on_tick(Time now, std::vector<std::string>& to_agent);
    std::string stop() { return stream_.stop(); }

    const AgentStream& stream() const { return stream_; }
    const TrunkMedia& media() const { return media_; }
    const AgentLegStats& stats() const { return stats_; }

private:
    AgentStream stream_;
    TrunkMedia media_;
    bool open_ = false;
    std::uint32_t ssrc_;
    std::uint16_t sequence_;
    std::uint32_t timestamp_;
    bool first_ = true;
    std::optional<std::uint32_t> last_event_;   // RTP timestamp of the last telephone-event seen
    AgentLegStats stats_;
    AgentAudio audio_;
    std::array<std::uint8_t, AgentAudio::kMaxAgentFrame> frame_{};   // the agent's next 20 ms
    std::array<std::uint8_t, kRtpHeaderSize + kTrunkFrameBytes> packet_{};
};

}  // namespace turnbridge::gateway
