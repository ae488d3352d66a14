// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/agent_media.hpp"

#include <utility>

#include "turnbridge/gateway/telephone_event.hpp"

namespace turnbridge::gateway {
namespace {

// RFC 4733 §3.2: events 0-15 are 0-9, *, #, A-D.
char dtmf_digit(std::uint8_t event) {
    static constexpr char kDigits[] = "0123456789*#ABCD";
    return event < 16 ? kDigits[event] : '\0';
}

}  // namespace

AgentMedia::AgentMedia(AgentStream stream, TrunkMedia media, std::uint32_t ssrc, std::uint16_t sequence,
                       std::uint32_t timestamp)
    : stream_(std::move(stream)), media_(media), ssrc_(ssrc), sequence_(sequence), timestamp_(timestamp),
      audio_(media.codec, stream_.info().format) {
    stats_.codec = media.codec;
    stats_.format = stream_.info().format;
}

void AgentMedia::open(Time now, std::vector<std::string>& to_agent) {
    to_agent.push_back(stream_.connected());
    to_agent.push_back(stream_.start(now));
    open_ = true;
}

void AgentMedia::on_rtp(Time now, Bytes datagram, std::vector<std::string>& to_agent) {
    const auto p = RtpPacket::parse(datagram);
    if (!p) return;
    ++stats_.in_packets;
    stats_.in_bytes += datagram.size();
    if (!open_) return;
    if (media_.telephone_event && p->header.payload_type == *media_.telephone_event) {
        // All packets of one event share its timestamp (RFC 4733 §2.5.1.2): one dtmf per event.
        const auto ev = parse_telephone_event(p->payload);
        if (!ev || last_event_ == p->header.timestamp) return;
        last_event_ = p->header.timestamp;
        if (const char d = dtmf_digit(ev->event); d != '\0') {
            ++stats_.dtmf;
            to_agent.push_back(stream_.dtmf(d));
        }
        return;
    }
    if (p->header.payload_type != media_.payload_type || p->payload.empty()) return;
    const auto audio = audio_.to_agent(p->payload);   // the agent's format (agent_audio.hpp)
    if (!audio.empty()) to_agent.push_back(stream_.media(now, audio));
}

Bytes AgentMedia::on_tick(Time, std::vector<std::string>& to_agent) {
    const auto frame = std::span(frame_).first(stream_.frame_bytes());
    if (!stream_.next_frame(frame, to_agent)) {
        // Silence is not sent, but its time passes (RFC 3550 §5.1: the timestamp is the
        // sampling instant); the next packet starts a talkspurt (RFC 3551 §4.1: marker).
        timestamp_ += kTrunkFrameTicks;
        first_ = true;
        return {};
    }
    audio_.to_trunk(frame, std::span<std::uint8_t, kTrunkFrameBytes>(packet_.data() + kRtpHeaderSize, kTrunkFrameBytes));
    RtpHeader h;
    h.marker = std::exchange(first_, false);
    h.payload_type = media_.payload_type;
    h.sequence = sequence_++;
    h.timestamp = timestamp_;
    h.ssrc = ssrc_;
    timestamp_ += kTrunkFrameTicks;
    write_rtp_header(h, packet_);
    ++stats_.out_packets;
    stats_.out_bytes += packet_.size();
    return packet_;
}

}  // namespace turnbridge::gateway
