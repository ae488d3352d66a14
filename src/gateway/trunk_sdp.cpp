// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/trunk_sdp.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace turnbridge::gateway {
namespace {

constexpr std::string_view kAvp = "RTP/AVP";    // RFC 3551
constexpr std::string_view kSavp = "RTP/SAVP";  // RFC 3711 §12


std::string header(const TrunkLocal& local) {
    const auto ip = local.address.ip.to_string();
    const auto type = local.address.ip.family == Family::V4 ? "IP4" : "IP6";
    return fmt::format("v=0\r\no=turnbridge {} {} IN {} {}\r\ns=turnbridge\r\nc=IN {} {}\r\nt=0 0\r\n",
                       local.session_id, local.session_version, type, ip, type, ip);
}

std::string audio_section(const TrunkLocal& local, const std::vector<std::pair<TrunkCodec, std::uint8_t>>& codecs,
                          std::optional<std::uint8_t> event, Direction direction, std::string_view proto,
                          const std::vector<SdesCrypto>& crypto, bool rtcp_mux) {
    std::string s = fmt::format("m=audio {} {}", local.address.port, proto);
    for (const auto& c : codecs) s += fmt::format(" {}", c.second);
    if (event) s += fmt::format(" {}", *event);
    s += "\r\n";
    // RFC 3551 §4.5.2: G722/8000 although G.722 samples at 16 kHz.
    for (const auto& c : codecs) s += fmt::format("a=rtpmap:{} {}/8000\r\n", c.second, to_string(c.first));
    if (event) s += fmt::format("a=rtpmap:{} telephone-event/8000\r\na=fmtp:{} 0-16\r\n", *event, *event);
    s += "a=ptime:20\r\n";
    s += fmt::format("a={}\r\n", to_string(direction));
    for (const auto& c : crypto) s += fmt::format("a=crypto:{}\r\n", format_crypto(c));
    // RFC 3550 §6, issue 14: our RTCP socket (RFC 3605) and, offered or accepted, rtcp-mux (RFC 5761).
    if (local.rtcp_port) s += fmt::format("a=rtcp:{}\r\n", *local.rtcp_port);
    if (rtcp_mux) s += "a=rtcp-mux\r\n";
    return s;
}

// RTP/SAVP only when SRTP is on for this trunk; off, an SRTP-only offer is refused (488).
auto usable_audio(const TrunkLocal& local) {
    return [&local](const MediaDescription& m) {
        return m.media == "audio" && m.port != 0 && (m.proto == kAvp || (m.proto == kSavp && local.srtp != SrtpMode::Off));
    };
}

// RFC 4568 §7.1.2 / RFC 8643 §4: keys in the answer mean SRTP; none is clear RTP, which
// `required` refuses (the call ends rather than carry clear media).
SdpResult<std::optional<SdesChoice>> answered_keys(const MediaDescription& m, const TrunkLocal& local) {
    if (local.srtp == SrtpMode::Off) return std::optional<SdesChoice>{};
    if (m.crypto.empty()) {
        if (local.srtp == SrtpMode::Required) return SdpError{"no a=crypto in the answer (srtp = required)"};
        if (m.proto == kSavp) return SdpError{"no a=crypto in an RTP/SAVP answer"};
        return std::optional<SdesChoice>{};
    }
    auto c = accept_crypto(m.crypto, local.crypto);
    if (!c) return c.error();
    return std::optional<SdesChoice>{*c};
}

// An offer's keys: RTP/SAVP (or srtp = required) needs a line we take; RTP/AVP with lines we cannot
// use (RFC 8643 §4, optional) falls back to clear RTP.
SdpResult<std::optional<SdesChoice>> offered_keys(const MediaDescription& m, const TrunkLocal& local) {
    if (local.srtp == SrtpMode::Off) return std::optional<SdesChoice>{};
    const bool must = local.srtp == SrtpMode::Required || m.proto == kSavp;
    if (m.crypto.empty()) {
        if (local.srtp == SrtpMode::Required) return SdpError{"no a=crypto in the offer (srtp = required)"};
        if (must) return SdpError{"no a=crypto in an RTP/SAVP offer"};
        return std::optional<SdesChoice>{};
    }
    auto c = answer_crypto(m.crypto, local.crypto);
    if (!c) {
        if (must) return c.error();
        return std::optional<SdesChoice>{};
    }
    return std::optional<SdesChoice>{*c};
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

bool is_crypto_error(const SdpError& e) {
    return e.what.find("crypto") != std::string_view::npos;
}

std::string build_trunk_offer(const TrunkLocal& local) {
    std::vector<std::pair<TrunkCodec, std::uint8_t>> codecs;
    for (auto c : local.preference) codecs.emplace_back(c, static_payload_type(c));
    // Optional: RFC 8643 opportunistic SRTP (RTP/AVP with a=crypto), which a carrier without SRTP
    // answers as plain RTP; required: RTP/SAVP, which such a carrier refuses (RFC 4568 §7.1.1).
    const auto proto = local.srtp == SrtpMode::Required ? kSavp : kAvp;
    static const std::vector<SdesCrypto> none;
    return header(local) + audio_section(local, codecs, local.telephone_event_pt, local.direction, proto,
                                         local.srtp == SrtpMode::Off ? none : local.crypto,
                                         local.rtcp_port.has_value());
}

SdpResult<TrunkMedia> accept_trunk_answer(const SessionDescription& answer, const TrunkLocal& local) {
    const auto audio = std::find_if(answer.media.begin(), answer.media.end(), usable_audio(local));
    if (audio == answer.media.end()) return SdpError{"audio rejected in answer"};
    // RFC 3264 §6.1: the answerer lists what it will send, in its order of preference.
    for (const auto& c : audio->codecs) {
        for (auto codec : local.preference) {
            if (audio->find_codec(to_string(codec), 8000) != &c) continue;
            auto remote = remote_endpoint(*audio);
            if (!remote) return remote.error();
            auto keys = answered_keys(*audio, local);
            if (!keys) return keys.error();
            TrunkMedia t;
            t.sdes = *keys;
            t.codec = codec;
            t.payload_type = c.payload_type;
            t.remote = *remote;
            if (const Codec* e = audio->find_codec("telephone-event", 8000)) t.telephone_event = e->payload_type;
            t.rtcp_mux = audio->rtcp_mux && local.rtcp_port.has_value();
            t.rtcp_port = audio->rtcp_port;
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
    const auto audio = std::find_if(offer.media.begin(), offer.media.end(), usable_audio(local));
    if (audio == offer.media.end()) return SdpError{"no m=audio with RTP/AVP"};
    auto chosen = first_common(*audio, local.preference);
    if (!chosen) return SdpError{"no common codec (G.711, or G.722 when allowed)"};
    auto remote = remote_endpoint(*audio);
    if (!remote) return remote.error();
    auto keys = offered_keys(*audio, local);
    if (!keys) return keys.error();
    TrunkAnswer a;
    a.media.sdes = *keys;
    a.media.codec = chosen->first;
    a.media.payload_type = chosen->second->payload_type;
    a.media.remote = *remote;
    a.media.direction = answer_direction(audio->direction, local.direction);
    std::optional<std::uint8_t> event;
    if (const Codec* e = audio->find_codec("telephone-event", 8000)) event = e->payload_type;
    a.media.telephone_event = event;
    a.media.rtcp_mux = audio->rtcp_mux;
    a.media.rtcp_port = audio->rtcp_port;

    std::string s = header(local);
    for (auto m = offer.media.begin(); m != offer.media.end(); ++m) {
        if (m == audio) {
            std::vector<SdesCrypto> crypto;
            if (a.media.sdes) crypto.push_back(a.media.sdes->local);
            s += audio_section(local, {{chosen->first, chosen->second->payload_type}}, event, a.media.direction,
                               audio->proto, crypto, a.media.rtcp_mux);
            continue;
        }
        s += rejected_media_line(*m);
    }
    a.sdp = std::move(s);
    return a;
}

}  // namespace turnbridge::gateway
