// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/browser_sdp.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <strings.h>

namespace turnbridge::gateway {
namespace {

constexpr std::string_view kSavpf = "UDP/TLS/RTP/SAVPF";  // RFC 5764 §8, RFC 5124
// Payload types of our own offers; Chrome uses the same numbers.
constexpr std::uint8_t kOpusPt = 111, kEvent48kPt = 110, kEvent8kPt = 126;

struct CodecSpec {
    std::string_view name;
    std::uint32_t rate;
    std::uint8_t channels;
    std::uint8_t our_pt;
};
CodecSpec spec(AudioCodec c) {
    switch (c) {
    case AudioCodec::Opus: return {"opus", 48000, 2, kOpusPt};  // RFC 7587 §7: always /48000/2
    case AudioCodec::Pcmu: return {"PCMU", 8000, 1, 0};
    case AudioCodec::Pcma: return {"PCMA", 8000, 1, 8};
    }
    return {"PCMU", 8000, 1, 0};
}

std::string rtpmap(const Codec& c) {
    if (c.channels > 1) return fmt::format("a=rtpmap:{} {}/{}/{}\r\n", c.payload_type, c.name, c.clock_rate, c.channels);
    return fmt::format("a=rtpmap:{} {}/{}\r\n", c.payload_type, c.name, c.clock_rate);
}

std::string addr_type(const Endpoint& ep) { return ep.ip.family == Family::V4 ? "IP4" : "IP6"; }

// ICE-lite, DTLS and transport lines shared by our offer and our answer.
std::string transport_lines(const LocalMedia& local, std::string_view setup, std::string_view mid) {
    std::string s;
    s += fmt::format("c=IN {} {}\r\n", addr_type(local.address), local.address.ip.to_string());
    if (!mid.empty()) s += fmt::format("a=mid:{}\r\n", mid);  // RFC 8843 §9.1: absent if offered without
    s += fmt::format("a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n", local.ice.ufrag, local.ice.pwd);
    s += fmt::format("a=fingerprint:sha-256 {}\r\n", local.fingerprint_sha256);
    s += fmt::format("a=setup:{}\r\n", setup);
    s += "a=rtcp-mux\r\n";
    s += fmt::format("a={}\r\n", to_string(local.direction));
    // RFC 8839 §5.1: one host candidate; priority (126 << 24) | (65535 << 8) | 255 (RFC 8445 §5.1.2.1).
    s += fmt::format("a=candidate:1 1 udp 2130706431 {} {} typ host\r\n", local.address.ip.to_string(),
                     local.address.port);
    s += "a=end-of-candidates\r\n";  // RFC 8840 §8.2: a lite agent gathers nothing more
    return s;
}

std::string session_lines(const LocalMedia& local, const std::vector<std::string>& bundle) {
    std::string s = "v=0\r\n";
    s += fmt::format("o=- {} {} IN {} {}\r\n", local.session_id, local.session_version, addr_type(local.address),
                     local.address.ip.to_string());
    s += "s=-\r\nt=0 0\r\n";
    if (!bundle.empty()) {
        s += "a=group:BUNDLE";
        for (const auto& m : bundle) s += " " + m;
        s += "\r\n";
    }
    s += "a=ice-lite\r\n";  // RFC 8839 §5.3: session level
    return s;
}

std::string ssrc_lines(const LocalMedia& local) {
    if (!local.ssrc) return {};
    return fmt::format("a=ssrc:{} cname:{}\r\n", *local.ssrc, local.cname);
}

bool has_param(std::string_view fmtp, std::string_view param) {
    return fmtp.find(param) != std::string_view::npos;
}

// telephone-event at the codec's clock rate (RFC 4733 §2.1 says it SHOULD be), else at 8000:
// Firefox offers events only at 8000, beside Opus at 48000, and sends them so.
const Codec* event_codec(const MediaDescription& m, std::uint32_t codec_rate) {
    if (const Codec* e = m.find_codec("telephone-event", codec_rate)) return e;
    return m.find_codec("telephone-event", 8000);
}

// The first preferred codec the offer also has, with its telephone-event.
std::optional<std::pair<Codec, std::optional<Codec>>> choose(const MediaDescription& m, const LocalMedia& local) {
    for (auto pref : local.preference) {
        const auto s = spec(pref);
        const Codec* c = m.find_codec(s.name, s.rate);
        if (!c) continue;
        std::optional<Codec> event;
        if (const Codec* e = event_codec(m, s.rate)) event = *e;
        return std::make_pair(*c, event);
    }
    return std::nullopt;
}

// Only called on codecs that matched spec() by name and rate.
AudioCodec codec_kind(const Codec& c) {
    if (c.clock_rate == 48000) return AudioCodec::Opus;
    return strncasecmp(c.name.c_str(), "PCMA", 4) == 0 ? AudioCodec::Pcma : AudioCodec::Pcmu;
}

bool usable_audio(const MediaDescription& m) {
    return m.media == "audio" && m.port != 0 && m.proto == kSavpf;
}

// RFC 8842 §5.3: answer passive to actpass and active, active to passive; an actpass re-offer
// keeps the role of the running association.
std::optional<std::pair<std::string_view, DtlsRole>> answer_setup(std::optional<Setup> offered,
                                                                  std::optional<DtlsRole> current) {
    switch (offered.value_or(Setup::Active)) {  // RFC 4145 §4: absent means active
    case Setup::ActPass:
        if (current == DtlsRole::Client) return std::make_pair(std::string_view("active"), DtlsRole::Client);
        return std::make_pair(std::string_view("passive"), DtlsRole::Server);
    case Setup::Active: return std::make_pair(std::string_view("passive"), DtlsRole::Server);
    case Setup::Passive: return std::make_pair(std::string_view("active"), DtlsRole::Client);
    case Setup::HoldConn: return std::nullopt;
    }
    return std::nullopt;
}

SdpResult<BrowserMedia> remote_transport(const MediaDescription& m) {
    BrowserMedia b;
    if (m.ice_ufrag.empty() || m.ice_pwd.empty()) return SdpError{"a=ice-ufrag/a=ice-pwd missing"};
    if (m.fingerprint.empty()) return SdpError{"a=fingerprint missing"};  // RFC 8842 §5.1
    if (!m.rtcp_mux) return SdpError{"a=rtcp-mux missing"};  // Deviation: we only run rtcp-mux
    b.mid = m.mid;
    b.remote_ice = {m.ice_ufrag, m.ice_pwd};
    b.remote_fingerprint_algorithm = m.fingerprint_algorithm;
    b.remote_fingerprint = m.fingerprint;
    b.remote_candidates = m.candidates;
    return b;
}

}  // namespace

std::string_view to_string(AudioCodec c) { return spec(c).name; }

IceCredentials make_ice_credentials(const RandomSource& rng) {
    // RFC 8839 §5.4: ice-char is ALPHA / DIGIT / "+" / "/"; 64 symbols, so 6 random bits each.
    static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    auto draw = [&](std::size_t n) {
        std::vector<std::uint8_t> r(n);
        rng(r);
        std::string s;
        for (auto b : r) s += kChars[b & 63];
        return s;
    };
    IceCredentials c;
    c.ufrag = draw(8);
    c.pwd = draw(24);
    return c;
}

SdpResult<BrowserAnswer> answer_browser_offer(const SessionDescription& offer, const LocalMedia& local) {
    const auto audio = std::find_if(offer.media.begin(), offer.media.end(), usable_audio);
    if (audio == offer.media.end()) return SdpError{"no m=audio with UDP/TLS/RTP/SAVPF"};
    auto chosen = choose(*audio, local);
    if (!chosen) return SdpError{"no common audio codec"};
    auto transport = remote_transport(*audio);
    if (!transport) return transport.error();
    auto setup = answer_setup(audio->setup, local.dtls_role);
    if (!setup) return SdpError{"a=setup"};

    BrowserAnswer a;
    a.media = std::move(*transport);
    const auto& [codec, event] = chosen.value();
    a.media.codec = codec_kind(codec);
    a.media.payload_type = codec.payload_type;
    a.media.clock_rate = codec.clock_rate;
    a.media.opus_fec = a.media.codec == AudioCodec::Opus && has_param(codec.fmtp, "useinbandfec=1");
    if (event) {
        a.media.telephone_event = event->payload_type;
        a.media.telephone_event_rate = event->clock_rate;
    }
    a.media.direction = answer_direction(audio->direction, local.direction);
    a.media.dtls_role = setup->second;

    // RFC 8843 §7.3.1: the answer's BUNDLE group holds only accepted sections that were offered in it.
    std::vector<std::string> bundle;
    if (std::find(offer.bundle_mids.begin(), offer.bundle_mids.end(), audio->mid) != offer.bundle_mids.end())
        bundle.push_back(audio->mid);
    std::string s = session_lines(local, bundle);
    for (auto m = offer.media.begin(); m != offer.media.end(); ++m) {
        if (m != audio) {
            // RFC 3264 §6: a rejected stream keeps its media and formats with port 0;
            // JSEP (RFC 8829 §5.3.1) keeps its a=mid.
            s += rejected_media_line(*m) + "c=IN IP4 0.0.0.0\r\n";
            if (!m->mid.empty()) s += fmt::format("a=mid:{}\r\n", m->mid);
            continue;
        }
        s += fmt::format("m=audio {} {} {}", local.address.port, kSavpf, codec.payload_type);
        if (event) s += fmt::format(" {}", event->payload_type);
        s += "\r\n";
        LocalMedia l = local;
        l.direction = a.media.direction;
        s += transport_lines(l, setup->first, audio->mid);
        s += rtpmap(codec);
        if (a.media.codec == AudioCodec::Opus)
            s += fmt::format("a=fmtp:{} minptime=10;useinbandfec=1\r\n", codec.payload_type);
        if (event) s += rtpmap(*event) + fmt::format("a=fmtp:{} 0-15\r\n", event->payload_type);
        s += "a=ptime:20\r\n";
        s += ssrc_lines(local);
    }
    a.sdp = std::move(s);
    return a;
}

std::string build_browser_offer(const LocalMedia& local) {
    std::string s = session_lines(local, {"0"});
    std::vector<Codec> codecs;
    for (auto pref : local.preference) {
        const auto sp = spec(pref);
        codecs.push_back({sp.our_pt, std::string(sp.name), sp.rate, sp.channels, {}});
    }
    codecs.push_back({kEvent48kPt, "telephone-event", 48000, 1, {}});
    codecs.push_back({kEvent8kPt, "telephone-event", 8000, 1, {}});
    s += fmt::format("m=audio {} {}", local.address.port, kSavpf);
    for (const auto& c : codecs) s += fmt::format(" {}", c.payload_type);
    s += "\r\n";
    s += transport_lines(local, "actpass", "0");
    for (const auto& c : codecs) {
        s += rtpmap(c);
        if (c.payload_type == kOpusPt) s += fmt::format("a=fmtp:{} minptime=10;useinbandfec=1\r\n", kOpusPt);
        if (c.name == "telephone-event") s += fmt::format("a=fmtp:{} 0-15\r\n", c.payload_type);
    }
    s += "a=ptime:20\r\n";
    s += ssrc_lines(local);
    return s;
}

SdpResult<BrowserMedia> accept_browser_answer(const SessionDescription& answer, const LocalMedia& local) {
    const auto audio = std::find_if(answer.media.begin(), answer.media.end(), usable_audio);
    if (audio == answer.media.end()) return SdpError{"audio rejected in answer"};
    auto b = remote_transport(*audio);
    if (!b) return b.error();
    // RFC 8842 §5.3: the answerer picks active or passive; we take the other role.
    if (!audio->setup || *audio->setup == Setup::ActPass || *audio->setup == Setup::HoldConn)
        return SdpError{"a=setup in answer"};
    b->dtls_role = *audio->setup == Setup::Active ? DtlsRole::Server : DtlsRole::Client;
    // RFC 3264 §6.1: the answer's first format is what the answerer will send; it must be ours.
    for (const auto& c : audio->codecs) {
        const bool ours = std::any_of(local.preference.begin(), local.preference.end(), [&](AudioCodec p) {
            const auto sp = spec(p);
            return audio->find_codec(sp.name, sp.rate) == &c;
        });
        if (!ours) continue;
        b->codec = codec_kind(c);
        b->payload_type = c.payload_type;
        b->clock_rate = c.clock_rate;
        b->opus_fec = b->codec == AudioCodec::Opus && has_param(c.fmtp, "useinbandfec=1");
        if (const Codec* e = event_codec(*audio, c.clock_rate)) {
            b->telephone_event = e->payload_type;
            b->telephone_event_rate = e->clock_rate;
        }
        // The answer's direction is from the browser's side; ours is its mirror.
        switch (audio->direction) {
        case Direction::SendOnly: b->direction = Direction::RecvOnly; break;
        case Direction::RecvOnly: b->direction = Direction::SendOnly; break;
        default: b->direction = audio->direction;
        }
        return b;
    }
    return SdpError{"no offered codec in answer"};
}

}  // namespace turnbridge::gateway
