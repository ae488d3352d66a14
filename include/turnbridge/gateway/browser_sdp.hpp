// SPDX-License-Identifier: Apache-2.0
#pragma once
// The browser leg's SDP (JSEP, RFC 8829): our answer to a browser's offer and our offer to a
// browser, as an ICE-lite (RFC 8445 §2.5), DTLS-SRTP (RFC 5763/8842), rtcp-mux, audio-only peer.
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "turnbridge/base/address.hpp"
#include "turnbridge/gateway/random.hpp"
#include "turnbridge/gateway/sdp.hpp"

namespace turnbridge::gateway {

enum class AudioCodec : std::uint8_t { Opus, Pcmu, Pcma };
std::string_view to_string(AudioCodec c);

struct IceCredentials {
    std::string ufrag;  // RFC 8839 §5.4: at least 4 ice-chars (we use 8)
    std::string pwd;    // at least 22 ice-chars (we use 24)
};
IceCredentials make_ice_credentials(const RandomSource& rng);

enum class DtlsRole : std::uint8_t { Client, Server };

// What the gateway puts into the browser-side SDP.
struct LocalMedia {
    IceCredentials ice;
    std::string fingerprint_sha256;         // "AB:CD:..." (dtls_srtp.hpp makes it)
    Endpoint address;                       // the host candidate browsers send to
    std::vector<AudioCodec> preference = {AudioCodec::Opus, AudioCodec::Pcmu, AudioCodec::Pcma};
    Direction direction = Direction::SendRecv;  // SendOnly/Inactive while the trunk holds
    std::uint64_t session_id = 1;
    std::uint64_t session_version = 1;      // RFC 3264 §8: +1 for each new offer or answer
    std::optional<std::uint32_t> ssrc;      // adds a=ssrc:<n> cname:<cname> when set
    std::string cname = "turnbridge";
    // Re-offers: the role of the running DTLS association, kept when the browser offers actpass
    // (RFC 8842 §5.3: changing roles would force a new handshake).
    std::optional<DtlsRole> dtls_role;
};

// The outcome of an offer/answer on the browser leg: what media/, ice_lite/ and dtls_srtp/ need.
struct BrowserMedia {
    AudioCodec codec = AudioCodec::Opus;
    std::uint8_t payload_type = 0;
    std::uint32_t clock_rate = 0;
    bool opus_fec = false;                        // remote asked for in-band FEC (useinbandfec=1)
    std::optional<std::uint8_t> telephone_event;  // PT at the codec's clock rate (RFC 4733 §7.1.1)
    std::uint32_t telephone_event_rate = 0;       // its clock: the codec's, or 8000 beside Opus (Firefox)
    Direction direction = Direction::SendRecv;    // ours, as written in our SDP
    std::string mid;
    IceCredentials remote_ice;
    std::string remote_fingerprint_algorithm, remote_fingerprint;
    DtlsRole dtls_role = DtlsRole::Server;
    std::vector<std::string> remote_candidates;
};

struct BrowserAnswer {
    std::string sdp;
    BrowserMedia media;
};

// RFC 3264 §6: the first usable audio m= section is accepted; every other m= section (video,
// data channel, further audio) is rejected with port 0. Fails when nothing is acceptable.
SdpResult<BrowserAnswer> answer_browser_offer(const SessionDescription& offer, const LocalMedia& local);

// Inbound calls: we offer (setup:actpass, RFC 8842 §5.2) every preferred codec plus
// telephone-event at 48000 and 8000.
std::string build_browser_offer(const LocalMedia& local);
// The browser's answer to build_browser_offer: the codec it picked and its DTLS role.
SdpResult<BrowserMedia> accept_browser_answer(const SessionDescription& answer, const LocalMedia& local);

}  // namespace turnbridge::gateway
