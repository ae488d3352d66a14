// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/sdp.hpp"

#include <osipparser2/osip_port.h>
#include <osipparser2/sdp_message.h>

#include <cctype>
#include <charconv>
#include <cstring>
#include <memory>
#include <strings.h>

namespace turnbridge::gateway {
namespace {

struct SdpFree {
    void operator()(sdp_message_t* m) const { sdp_message_free(m); }
};

template <class T>
bool parse_number(std::string_view s, T& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// Splits "head rest" at the first space.
std::pair<std::string_view, std::string_view> split_first(std::string_view s) {
    const auto sp = s.find(' ');
    if (sp == std::string_view::npos) return {s, {}};
    return {s.substr(0, sp), trim(s.substr(sp + 1))};
}

// RFC 8866 §9 token (RFC 8843 §16: mid-value is a token).
bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (!(std::isalnum(c) || std::strchr("!#$%&'*+-.^_`{|}~", c))) return false;
    return true;
}

std::optional<Direction> direction_attribute(std::string_view field) {
    if (field == "sendrecv") return Direction::SendRecv;
    if (field == "sendonly") return Direction::SendOnly;
    if (field == "recvonly") return Direction::RecvOnly;
    if (field == "inactive") return Direction::Inactive;
    return std::nullopt;
}

std::optional<Setup> setup_value(std::string_view v) {
    if (v == "actpass") return Setup::ActPass;
    if (v == "active") return Setup::Active;
    if (v == "passive") return Setup::Passive;
    if (v == "holdconn") return Setup::HoldConn;
    return std::nullopt;
}

// Values that may sit at session level and apply to every media section unless overridden
// (RFC 8866 §5.13; RFC 8839 §5.4 ice-ufrag/pwd; RFC 8122 §5 fingerprint; RFC 4145 setup).
struct Inherited {
    std::string connection, ice_ufrag, ice_pwd, fingerprint_algorithm, fingerprint;
    std::optional<Setup> setup;
    std::optional<Direction> direction;
};

// Applies one a= line to the shared fields; false when the value is malformed.
bool apply_common(std::string_view field, std::string_view value, Inherited& c) {
    if (field == "ice-ufrag") c.ice_ufrag = value;
    else if (field == "ice-pwd") c.ice_pwd = value;
    else if (field == "fingerprint") {
        auto [alg, fp] = split_first(value);
        if (alg.empty() || fp.empty()) return false;
        // RFC 8122 §5: several fingerprints may be offered; prefer sha-256 when present.
        if (c.fingerprint.empty() || strncasecmp(alg.data(), "sha-256", alg.size()) == 0) {
            c.fingerprint_algorithm = alg;
            c.fingerprint = fp;
        }
    } else if (field == "setup") {
        c.setup = setup_value(value);
        if (!c.setup) return false;
    } else if (auto d = direction_attribute(field)) {
        c.direction = d;
    }
    return true;
}

// RFC 3551 §6 static payload types that need no rtpmap.
std::optional<Codec> static_codec(std::uint8_t pt) {
    switch (pt) {
    case 0: return Codec{0, "PCMU", 8000, 1, {}};
    case 8: return Codec{8, "PCMA", 8000, 1, {}};
    case 9: return Codec{9, "G722", 8000, 1, {}};
    case 13: return Codec{13, "CN", 8000, 1, {}};
    default: return std::nullopt;
    }
}

bool parse_rtpmap(std::string_view value, Codec& c) {
    auto [pt, enc] = split_first(value);
    unsigned n = 0;
    if (!parse_number(pt, n) || n > 127) return false;
    c.payload_type = static_cast<std::uint8_t>(n);
    const auto s1 = enc.find('/');
    if (s1 == std::string_view::npos || s1 == 0) return false;
    c.name = enc.substr(0, s1);
    auto rest = enc.substr(s1 + 1);
    const auto s2 = rest.find('/');
    if (!parse_number(rest.substr(0, s2), c.clock_rate) || c.clock_rate == 0) return false;
    if (s2 != std::string_view::npos) {
        unsigned ch = 0;
        if (!parse_number(rest.substr(s2 + 1), ch) || ch == 0 || ch > 255) return false;
        c.channels = static_cast<std::uint8_t>(ch);
    }
    return true;
}

SdpResult<MediaDescription> parse_media(sdp_message_t* sdp, int pos, const Inherited& session) {
    MediaDescription m;
    m.media = sdp_message_m_media_get(sdp, pos);
    const char* port = sdp_message_m_port_get(sdp, pos);
    const char* proto = sdp_message_m_proto_get(sdp, pos);
    if (!port || !parse_number(std::string_view(port), m.port)) return SdpError{"m= port"};
    m.proto = proto ? proto : "";
    for (int i = 0; const char* f = sdp_message_m_payload_get(sdp, pos, i); ++i) m.formats.emplace_back(f);

    Inherited c = session;
    c.direction.reset();
    if (const char* addr = sdp_message_c_addr_get(sdp, pos, 0)) c.connection = addr;
    std::vector<Codec> mapped;
    std::vector<std::pair<unsigned, std::string>> fmtps;
    for (int i = 0; const char* f = sdp_message_a_att_field_get(sdp, pos, i); ++i) {
        const char* v = sdp_message_a_att_value_get(sdp, pos, i);
        const std::string_view field(f), value = trim(v ? std::string_view(v) : std::string_view());
        if (!apply_common(field, value, c)) return SdpError{"a= value at media level"};
        if (field == "rtpmap") {
            Codec codec;
            if (!parse_rtpmap(value, codec)) return SdpError{"a=rtpmap"};
            mapped.push_back(std::move(codec));
        } else if (field == "fmtp") {
            auto [pt, params] = split_first(value);
            unsigned n = 0;
            if (parse_number(pt, n)) fmtps.emplace_back(n, std::string(params));
        } else if (field == "mid") {
            if (!is_token(value)) return SdpError{"a=mid"};  // echoed into our answers
            m.mid = value;
        } else if (field == "rtcp-mux") {
            m.rtcp_mux = true;
        } else if (field == "rtcp") {
            std::uint32_t port = 0;  // RFC 3605 §2.1: a=rtcp:port [nettype addrtype address]
            if (parse_number(split_first(value).first, port) && port > 0 && port <= 65535)
                m.rtcp_port = static_cast<std::uint16_t>(port);
        } else if (field == "ptime") {
            std::uint32_t p = 0;
            if (parse_number(value, p)) m.ptime = p;
        } else if (field == "candidate") {
            m.candidates.emplace_back(value);
        } else if (field == "crypto") {
            m.crypto.emplace_back(value);   // RFC 4568 §9.1: media level only
        }
    }
    // One codec per RTP format, in the offerer's order of preference (RFC 3264 §5.1).
    for (const auto& f : m.formats) {
        unsigned n = 0;
        if (!parse_number(std::string_view(f), n) || n > 127) continue;  // e.g. webrtc-datachannel
        std::optional<Codec> codec;
        for (const auto& mc : mapped)
            if (mc.payload_type == n) codec = mc;
        if (!codec) codec = static_codec(static_cast<std::uint8_t>(n));
        if (!codec) continue;
        for (const auto& [pt, params] : fmtps)
            if (pt == n) codec->fmtp = params;
        m.codecs.push_back(std::move(*codec));
    }
    m.connection = c.connection;
    m.ice_ufrag = c.ice_ufrag;
    m.ice_pwd = c.ice_pwd;
    m.fingerprint_algorithm = c.fingerprint_algorithm;
    m.fingerprint = c.fingerprint;
    m.setup = c.setup;
    m.direction = c.direction ? *c.direction : session.direction.value_or(Direction::SendRecv);
    // RFC 3264 §8.4: c=0.0.0.0 is the old way of saying "do not send to me". With ICE it only
    // means "no candidate yet" (RFC 8839 §4.2.1), as in Firefox's trickle offers.
    if (m.connection == "0.0.0.0" && m.port != 0 && m.ice_ufrag.empty()) {
        m.legacy_hold = true;
        m.direction = receives(m.direction) ? Direction::SendOnly : Direction::Inactive;
    }
    return m;
}

// RFC 8866 §5: lines end in CRLF (LF alone is tolerated). libosip2 5.3 reads past the end of
// its buffer on a mix of bare CR and LF (found by the sdp_offer fuzzer), so every line is given
// to it ending in CRLF, and text with a bare CR or a NUL is refused before it gets there.
std::optional<std::string> normalise_lines(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 64);
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\0') return std::nullopt;
        if (c == '\r') {
            if (i + 1 >= text.size() || text[i + 1] != '\n') return std::nullopt;
            continue;  // the LF that follows writes the line end
        }
        if (c == '\n') out += "\r\n";
        else out += c;
    }
    if (!out.empty() && out.back() != '\n') out += "\r\n";
    return out;
}

}  // namespace

std::string_view to_string(Direction d) {
    switch (d) {
    case Direction::SendRecv: return "sendrecv";
    case Direction::SendOnly: return "sendonly";
    case Direction::RecvOnly: return "recvonly";
    case Direction::Inactive: return "inactive";
    }
    return "inactive";
}

bool sends(Direction d) { return d == Direction::SendRecv || d == Direction::SendOnly; }
bool receives(Direction d) { return d == Direction::SendRecv || d == Direction::RecvOnly; }

Direction answer_direction(Direction offer, Direction local) {
    const bool we_send = receives(offer) && sends(local);
    const bool we_receive = sends(offer) && receives(local);
    if (we_send && we_receive) return Direction::SendRecv;
    if (we_send) return Direction::SendOnly;
    if (we_receive) return Direction::RecvOnly;
    return Direction::Inactive;
}

const Codec* MediaDescription::find_codec(std::string_view name, std::uint32_t rate) const {
    for (const auto& c : codecs)
        if (c.clock_rate == rate && c.name.size() == name.size() &&
            strncasecmp(c.name.data(), name.data(), name.size()) == 0)
            return &c;
    return nullptr;
}

const Codec* MediaDescription::find_payload_type(std::uint8_t pt) const {
    for (const auto& c : codecs)
        if (c.payload_type == pt) return &c;
    return nullptr;
}

std::string rejected_media_line(const MediaDescription& m) {
    std::string s = "m=" + m.media + " 0 " + m.proto;
    for (const auto& f : m.formats) s += " " + f;
    if (m.formats.empty()) s += " 0";  // RFC 8866 §5.14: at least one format
    return s + "\r\n";
}

SdpResult<SessionDescription> parse_sdp(std::string_view text) {
    sdp_message_t* raw = nullptr;
    if (sdp_message_init(&raw) != 0) return SdpError{"sdp_message_init"};
    std::unique_ptr<sdp_message_t, SdpFree> sdp(raw);
    auto z = normalise_lines(text);
    if (!z) return SdpError{"line endings (bare CR or NUL)"};
    if (sdp_message_parse(sdp.get(), z->c_str()) != 0) return SdpError{"SDP syntax (osip)"};

    SessionDescription out;
    if (const char* id = sdp_message_o_sess_id_get(sdp.get())) out.origin_session_id = id;
    if (const char* a = sdp_message_o_addr_get(sdp.get())) out.origin_address = a;
    if (const char* v = sdp_message_o_sess_version_get(sdp.get())) out.origin_version = v;
    Inherited session;
    if (const char* addr = sdp_message_c_addr_get(sdp.get(), -1, 0)) session.connection = addr;
    for (int i = 0; const char* f = sdp_message_a_att_field_get(sdp.get(), -1, i); ++i) {
        const char* v = sdp_message_a_att_value_get(sdp.get(), -1, i);
        const std::string_view field(f), value = trim(v ? std::string_view(v) : std::string_view());
        if (!apply_common(field, value, session)) return SdpError{"a= value at session level"};
        if (field == "ice-lite") out.ice_lite = true;
        if (field == "group") {
            auto [semantics, ids] = split_first(value);
            if (semantics == "BUNDLE") {
                while (!ids.empty()) {
                    auto [id, rest] = split_first(ids);
                    if (!id.empty()) out.bundle_mids.emplace_back(id);
                    ids = rest;
                }
            }
        }
    }
    for (int pos = 0; sdp_message_m_media_get(sdp.get(), pos) != nullptr; ++pos) {
        auto m = parse_media(sdp.get(), pos, session);
        if (!m) return m.error();
        out.media.push_back(std::move(*m));
    }
    if (out.media.empty()) return SdpError{"no m= line"};
    return out;
}

}  // namespace turnbridge::gateway
