// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/agent_audio.hpp"

#include "turnbridge/config/config.hpp"
#include "turnbridge/gateway/agent_port.hpp"
#include "turnbridge/gateway/trunk_sdp.hpp"

#include <algorithm>

namespace turnbridge::gateway {
namespace {

bool wide(TrunkCodec c) { return c == TrunkCodec::G722; }   // 16 kHz audio behind the 8 kHz clock
bool wide(AgentMediaFormat f) { return f == AgentMediaFormat::L16; }

}  // namespace

std::string agent_codecs(std::string_view caller_codec, AgentMediaFormat f) {
    std::string s(caller_codec);
    s += "/agent";
    if (f == AgentMediaFormat::L16) s += "-l16";
    return s;
}

std::vector<TrunkCodec> agent_trunk_codecs(AgentMediaFormat f, bool g722) {
    // A mu-law agent: PCMU first (passed through untouched), then PCMA (A-law <-> mu-law, as a
    // European carrier or sipp's own uac_pcap offers) and, last, G.722 (16 -> 8 kHz) for a
    // trunk that offers nothing else.
    if (f == AgentMediaFormat::Mulaw) {
        std::vector<TrunkCodec> c{TrunkCodec::Pcmu, TrunkCodec::Pcma};
        if (g722) c.push_back(TrunkCodec::G722);
        return c;
    }
    std::vector<TrunkCodec> c;
    if (g722) c.push_back(TrunkCodec::G722);
    c.push_back(TrunkCodec::Pcmu);
    c.push_back(TrunkCodec::Pcma);
    return c;
}

std::optional<std::string_view> agent_offer_error(std::string_view offer_sdp, AgentMediaFormat f, bool g722) {
    const auto offer = parse_sdp(offer_sdp);
    if (!offer) return offer.error().what;
    TrunkLocal probe;   // AgentHost::open_session's, but for the address (not yet bound)
    probe.preference = agent_trunk_codecs(f, g722);
    probe.address = Endpoint{IpAddress::v4(127, 0, 0, 1), 9};
    const auto answer = answer_trunk_offer(*offer, probe);
    if (!answer) return answer.error().what;
    return std::nullopt;
}

bool allows_g722(const config::Gateway& g) {
    return std::find(g.codecs.begin(), g.codecs.end(), config::Codec::G722) != g.codecs.end();
}

AgentAudio::AgentAudio(TrunkCodec trunk, AgentMediaFormat format) : trunk_(trunk), format_(format) {
    if (wide(trunk_)) {
        g722_in_ = std::make_unique<G722Decoder>(true);
        g722_out_ = std::make_unique<G722Encoder>(true);
    }
}

AgentAudio::~AgentAudio() = default;

std::span<const std::uint8_t> AgentAudio::to_agent(std::span<const std::uint8_t> payload) {
    if (trunk_ == TrunkCodec::Pcmu && format_ == AgentMediaFormat::Mulaw) return payload;
    if (payload.empty() || payload.size() > kMaxTrunkPayload) return {};
    // 1. The trunk's audio as linear PCM at its own rate.
    std::span<std::int16_t> pcm;
    if (const auto law = g711_law(trunk_)) {
        pcm = std::span(pcm_).first(payload.size());
        g711_decode(*law, payload, pcm);
    } else {
        if (payload.size() % kTrunkFrameBytes != 0) return {};
        std::size_t n = 0;
        for (std::size_t i = 0; i < payload.size(); i += kTrunkFrameBytes)
            n += g722_in_->decode(payload.subspan(i).first<kTrunkFrameBytes>(), std::span(pcm_).subspan(n));
        pcm = std::span(pcm_).first(n);
    }
    // 2. At the agent's rate.
    std::span<const std::int16_t> at_rate = pcm;
    if (wide(format_) && !wide(trunk_)) {
        rate_in_.up(pcm, pcm_rate_);
        at_rate = std::span(pcm_rate_).first(pcm.size() * 2);
    } else if (!wide(format_) && wide(trunk_)) {
        at_rate = std::span(pcm_rate_).first(rate_in_.down(pcm, pcm_rate_));
    }
    // 3. As the agent's bytes: L16 little-endian (whatever this machine's order), or mu-law.
    if (format_ == AgentMediaFormat::L16) {
        for (std::size_t i = 0; i < at_rate.size(); ++i) {
            const auto v = static_cast<std::uint16_t>(at_rate[i]);
            bytes_[2 * i] = static_cast<std::uint8_t>(v & 0xFF);
            bytes_[2 * i + 1] = static_cast<std::uint8_t>(v >> 8);
        }
        return std::span(bytes_).first(at_rate.size() * 2);
    }
    g711_encode(G711Law::Pcmu, at_rate, bytes_);
    return std::span(bytes_).first(at_rate.size());
}

void AgentAudio::to_trunk(std::span<const std::uint8_t> frame, std::span<std::uint8_t, kTrunkFrameBytes> out) {
    if (trunk_ == TrunkCodec::Pcmu && format_ == AgentMediaFormat::Mulaw) {
        std::copy_n(frame.begin(), std::min(frame.size(), out.size()), out.begin());
        return;
    }
    // The agent's frame as linear PCM at its rate.
    std::span<std::int16_t> pcm;
    if (format_ == AgentMediaFormat::L16) {
        pcm = std::span(frame_pcm_).first(std::min(frame.size() / 2, frame_pcm_.size()));
        for (std::size_t i = 0; i < pcm.size(); ++i)
            pcm[i] = static_cast<std::int16_t>(static_cast<std::uint16_t>(frame[2 * i] | (frame[2 * i + 1] << 8)));
    } else {
        pcm = std::span(frame_pcm_).first(std::min(frame.size(), kTrunkFrameBytes));
        g711_decode(G711Law::Pcmu, frame.first(pcm.size()), pcm);
    }
    // At the trunk's rate, then its codec.
    std::span<const std::int16_t> at_rate = pcm;
    if (wide(format_) && !wide(trunk_)) {
        at_rate = std::span(frame_rate_).first(rate_out_.down(pcm, frame_rate_));
    } else if (!wide(format_) && wide(trunk_)) {
        rate_out_.up(pcm, frame_rate_);
        at_rate = std::span(frame_rate_).first(pcm.size() * 2);
    }
    if (const auto law = g711_law(trunk_)) g711_encode(*law, at_rate, out);
    else g722_out_->encode(at_rate, out);
}

}  // namespace turnbridge::gateway
