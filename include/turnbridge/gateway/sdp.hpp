// SPDX-License-Identifier: Apache-2.0
#pragma once
// SDP (RFC 8866) as the gateway needs it: libosip2's parser turns the text into plain values,
// session-level attributes are folded into each media section, and the rest of the gateway never
// sees osip types. Building is plain text (see browser_sdp.hpp, trunk_sdp.hpp).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace turnbridge::gateway {

// Bad SDP is a value: SIP turns it into 488 (RFC 3261 §21.4.26), JSEP into a rejected description.
struct SdpError {
    std::string_view what;  // fixed text naming the bad field
};

template <class T>
class SdpResult {
public:
    SdpResult(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
    SdpResult(SdpError e) : v_(e) {}              // NOLINT
    explicit operator bool() const { return v_.index() == 0; }
    T& operator*() { return std::get<0>(v_); }
    const T& operator*() const { return std::get<0>(v_); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }
    const SdpError& error() const { return std::get<1>(v_); }

private:
    std::variant<T, SdpError> v_;
};

// RFC 3264 §5.1 / RFC 8866 §6.7.
enum class Direction : std::uint8_t { SendRecv, SendOnly, RecvOnly, Inactive };
std::string_view to_string(Direction d);
bool sends(Direction d);
bool receives(Direction d);
// RFC 3264 §6.1: the answer's direction given the offer's and what we want locally.
Direction answer_direction(Direction offer, Direction local);

// RFC 8842 §5 / RFC 4145 §4. Absent means active (RFC 4145 §4).
enum class Setup : std::uint8_t { ActPass, Active, Passive, HoldConn };

struct Codec {
    std::uint8_t payload_type = 0;
    std::string name;            // as written ("opus", "PCMU", "telephone-event")
    std::uint32_t clock_rate = 0;
    std::uint8_t channels = 1;
    std::string fmtp;            // parameters after "a=fmtp:<pt> ", empty if none
};

struct MediaDescription {
    std::string media;           // "audio", "video", "application"
    std::uint16_t port = 0;
    std::string proto;           // "UDP/TLS/RTP/SAVPF", "RTP/AVP", "UDP/DTLS/SCTP"
    std::vector<std::string> formats;
    std::vector<Codec> codecs;   // one per RTP payload type in `formats`, static ones filled in
    std::string connection;      // c= address (media level, else session level)
    std::string mid;
    Direction direction = Direction::SendRecv;
    bool legacy_hold = false;    // c=0.0.0.0 (RFC 3264 §8.4), folded into `direction`
    std::string ice_ufrag, ice_pwd;
    std::string fingerprint_algorithm, fingerprint;  // "sha-256", "AB:CD:..."
    std::optional<Setup> setup;
    bool rtcp_mux = false;
    std::optional<std::uint16_t> rtcp_port;  // a=rtcp (RFC 3605): RTCP not on RTP port + 1
    std::optional<std::uint32_t> ptime;
    std::vector<std::string> candidates;  // values of a=candidate, as written
    std::vector<std::string> crypto;      // values of a=crypto (RFC 4568 §9.1), as written

    const Codec* find_codec(std::string_view name, std::uint32_t clock_rate) const;
    const Codec* find_payload_type(std::uint8_t pt) const;
};

struct SessionDescription {
    std::string origin_session_id;
    std::string origin_address;
    std::string origin_version;   // RFC 3264 §8: unchanged when the session is unchanged
    bool ice_lite = false;
    std::vector<std::string> bundle_mids;  // a=group:BUNDLE
    std::vector<MediaDescription> media;
};

// RFC 3264 §6: "m=<media> 0 <proto> <formats>\r\n", how an answer rejects a stream.
std::string rejected_media_line(const MediaDescription& m);

// Parses with libosip2 (sdp_message_parse) and normalises. Fails on text osip rejects, no m=
// line, or a malformed rtpmap/port.
SdpResult<SessionDescription> parse_sdp(std::string_view text);

}  // namespace turnbridge::gateway
