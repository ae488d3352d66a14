// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/trunk_sdp.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace turnbridge::gateway {
namespace {

constexpr std::string_view kAvp = "RTP/AVP";  // RFC 3551


std::string header(const TrunkLocal& local) {
    const auto ip = local.address.ip.to_string();
    const auto type = local.address.ip.family == Family::V4 ? "IP4" : "IP6";
    return fmt::format("v=0\r\no=turnbridge {} {} IN {} {}\r\ns=turnbridge\r\nc=IN {} {}\r\nt=0 0\r\n",
                       local.session_id, local.session_version, type, ip, type, ip);
}

std::string audio_section(const TrunkLocal& local, const std::vector<std::pair<TrunkCodec, std::uint8_t>>& codecs,
                          std::optional<std::uint8_t> event, Direction direction) {
    std::string s = fmt::format("m=audio {} {}", local.address.port, kAvp);
    for (const auto& c : codecs) s += fmt::format(" {}", c.second);
    if (event) s += fmt::format(" {}", *event);
    s += "\r\n";
    // RFC 3551 §4.5.2: G722/8000 although G.722 samples at 16 kHz.
    for (const auto& c : codecs) s += fmt::format("a=rtpmap:{} {}/8000\r\n", c.second, to_string(c.first));
    if (event) s += fmt::format("a=rtpmap:{} telephone-event/8000\r\na=fmtp:{} 0-16\r\n", *event, *event);
    s += "a=ptime:20\r\n";
    s += fmt::format("a={}\r\n", to_string(direction));
    return s;
}

bool usable_audio(const MediaDescription& m) {
    return m.media == "audio" && m.port != 0 && m.proto == kAvp;
}

// The remote's RTP address; c=0.0.0.0 (legacy hold) leaves it unspecified.
SdpResult<Endpoint> remote_endpoint(const MediaDescription& m) {
    auto ip = IpAddress::parse(m.connection);
    if (!ip) return SdpError{"c= address"};
    return Endpoint{*ip, m.port};
}

std::optional<std::pair<TrunkCodec, const Codec*>> first_common(const MediaDescription& m, const std::vector<TrunkCodec>& pref) {
    for (auto codec : pref)
        if (const Codec* c = m.find_codec(to_string(codec), 8000)) return std::make_pair(codec, c);
    return std::nullopt;
}

}  // namespace

std::string build_trunk_offer(const TrunkLocal& local) {
    std::vector<std::pair<TrunkCodec, std::uint8_t>> codecs;
    for (auto c : local.preference) codecs.emplace_back(c, static_payload_type(c));
    return header(local) + audio_section(local, codecs, local.telephone_event_pt, local.direction);
}

SdpResult<TrunkMedia> accept_trunk_answer(const SessionDescription& answer, const TrunkLocal& local) {
    const auto audio = std::find_if(answer.media.begin(), answer.media.end(), usable_audio);
    if (audio == answer.media.end()) return SdpError{"audio rejected in answer"};
    // RFC 3264 §6.1: the answerer lists what it will send, in its order of preference.
    for (const auto& c : audio->codecs) {
        for (auto codec : local.preference) {
            if (audio->find_codec(to_string(codec), 8000) != &c) continue;
            auto remote = remote_endpoint(*audio);
            if (!remote) return remote.error();
            TrunkMedia t;
            t.codec = codec;
            t.payload_type = c.payload_type;
            t.remote = *remote;
            if (const Codec* e = audio->find_codec("telephone-event", 8000)) t.telephone_event = e->payload_type;
            switch (audio->direction) {  // theirs, mirrored
            case Direction::SendOnly: t.direction = Direction::RecvOnly; break;
            case Direction::RecvOnly: t.direction = Direction::SendOnly; break;
            default: t.direction = audio->direction;
            }
            return t;
        }
    }
    return SdpError{"no codec of our offer in answer"};
}

SdpResult<TrunkAnswer> answer_trunk_offer(const SessionDescription& offer, const TrunkLocal& local) {
    const auto audio = std::find_if(offer.media.begin(), offer.media.end(), usable_audio);
    if (audio == offer.media.end()) return SdpError{"no m=audio with RTP/AVP"};
    auto chosen = first_common(*audio, local.preference);
    if (!chosen) return SdpError{"no common codec (G.711, or G.722 when allowed)"};
    auto remote = remote_endpoint(*audio);
    if (!remote) return remote.error();
    TrunkAnswer a;
    a.media.codec = chosen->first;
    a.media.payload_type = chosen->second->payload_type;
    a.media.remote = *remote;
    a.media.direction = answer_direction(audio->direction, local.direction);
    std::optional<std::uint8_t> event;
    if (const Codec* e = audio->find_codec("telephone-event", 8000)) event = e->payload_type;
    a.media.telephone_event = event;

    std::string s = header(local);
    for (auto m = offer.media.begin(); m != offer.media.end(); ++m) {
        if (m == audio) {
            s += audio_section(local, {{chosen->first, chosen->second->payload_type}}, event, a.media.direction);
            continue;
        }
        s += rejected_media_line(*m);
    }
    a.sdp = std::move(s);
    return a;
}

}  // namespace turnbridge::gateway
