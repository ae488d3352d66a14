// SPDX-License-Identifier: Apache-2.0
#pragma once
// The two peers of a gateway call as the benchmarks play them, shared by gateway_load.cpp
// (in-process: the peers talk to a gateway::CallMedia directly) and gateway_server_load.cpp
// (over sockets, through a real turnbridge):
//   BrowserPeer: ICE checks with USE-CANDIDATE, DTLS client (its own certificate, the gateway's
//                fingerprint pinned), SRTP; every 20 ms one frame of a tone (Opus at 48 kHz as a
//                browser encodes it, or PCMU); unprotects and keeps what the gateway sends it.
//   TrunkPeer:   every 20 ms one PCMU (or G.722) RTP packet of another tone; keeps what it hears.
// Tones are multiples of 50 Hz (whole periods in 20 ms), different for neighbouring calls, so
// that crossed calls fail the tone check. No sockets and no clock here: the callers move bytes.
#include <opus/opus.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../unit/gateway/tone.hpp"
#include "turnbridge/base/json.hpp"
#include "turnbridge/gateway/call_media.hpp"
#include "turnbridge/gateway/demux.hpp"
#include "turnbridge/gateway/g722.hpp"
#include "turnbridge/stun/message.hpp"

namespace turnbridge::bench {

using namespace turnbridge::gateway;
using turnbridge::gateway::test::dominant_frequency;
using turnbridge::gateway::test::sine;

constexpr auto kTick = std::chrono::milliseconds(20);
constexpr std::size_t kTones = 8;
constexpr long kConsentTicks = 250;      // a consent check every 5 s per call (RFC 7675 §5.1)
constexpr std::size_t kKeepFrames = 30;  // the last 0.6 s each peer heard, for the tone check
constexpr std::size_t kSkipFrames = 5;   // of which the first ones prime the check's Opus decoder
constexpr std::size_t kMaxKeptPayload = 400;
constexpr double kTolerance = 0.02;
constexpr double kAmplitude = 8000;
constexpr std::uint8_t kOpusPt = 111, kPcmuPt = 0, kG722Pt = 9;  // as in browser_offer below

inline double browser_tone(std::size_t call) { return 1000 + 50.0 * static_cast<double>(call % kTones); }
inline double trunk_tone(std::size_t call) { return 400 + 50.0 * static_cast<double>(call % kTones); }

inline double thread_cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

[[noreturn]] inline void die(const std::string& why) {
    std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, why.c_str());
    std::exit(2);
}

inline std::string sdp_attribute(const std::string& sdp, const std::string& name) {
    const auto at = sdp.find("a=" + name + ":");
    if (at == std::string::npos) return {};
    const auto from = at + name.size() + 3;
    return sdp.substr(from, sdp.find("\r\n", from) - from);
}

// "c=IN IP4 a.b.c.d" and "m=audio PORT" of an SDP body.
inline std::optional<Endpoint> sdp_media(const std::string& sdp) {
    const auto c = sdp.find("c=IN IP4 "), m = sdp.find("m=audio ");
    if (c == std::string::npos || m == std::string::npos) return std::nullopt;
    const auto ip = sdp.substr(c + 9, sdp.find_first_of("\r\n", c) - c - 9);
    const auto port = std::strtoul(sdp.c_str() + m + 8, nullptr, 10);
    return Endpoint::parse(ip + ":" + std::to_string(port));
}

// What a browser offers (Chrome's lines that matter to us); PCMU only for a passthrough call.
inline std::string browser_offer(const IceCredentials& ice, const std::string& fingerprint, bool pcmu) {
    return std::string("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n") +
           (pcmu ? "m=audio 9 UDP/TLS/RTP/SAVPF 0 126\r\n" : "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 110 126\r\n") +
           "c=IN IP4 0.0.0.0\r\na=ice-ufrag:" + ice.ufrag + "\r\na=ice-pwd:" + ice.pwd +
           "\r\na=fingerprint:sha-256 " + fingerprint + "\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n" +
           (pcmu ? "" : "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n") +
           "a=rtpmap:0 PCMU/8000\r\n" + (pcmu ? "" : "a=rtpmap:110 telephone-event/48000\r\n") +
           "a=rtpmap:126 telephone-event/8000\r\n";
}

// A trunk's PCMU (or G.722) answer at `trunk` (RFC 3264 §6), keeping the offer's telephone-event type.
inline std::string trunk_answer(const Endpoint& trunk, int telephone_event_pt = 101, bool g722 = false) {
    const auto ip = trunk.ip.to_string(), te = std::to_string(telephone_event_pt);
    return "v=0\r\no=trunk 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio " +
           std::to_string(trunk.port) + (g722 ? " RTP/AVP 9 " : " RTP/AVP 0 ") + te +
           (g722 ? "\r\na=rtpmap:9 G722/8000" : "\r\na=rtpmap:0 PCMU/8000") + "\r\na=rtpmap:" + te +
           " telephone-event/8000\r\na=fmtp:" + te + " 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
}

// RFC 8445 §7.2.2: the browser (controlling) checks the pair; USE-CANDIDATE nominates it.
inline std::vector<std::uint8_t> ice_check(const IceCredentials& gateway, const IceCredentials& browser, bool nominate,
                                           std::size_t call) {
    std::vector<std::uint8_t> buf(256);
    stun::TransactionId tid{};
    std::memcpy(tid.data(), &call, sizeof call);
    tid[11] = nominate ? 1 : 2;
    stun::MessageBuilder b(buf, stun::method::Binding, stun::Class::Request, tid);
    b.add_string(stun::attr::Username, gateway.ufrag + ":" + browser.ufrag);
    b.add_u32(stun::attr::Priority, 1853824767);
    const std::uint8_t tie[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    b.add(stun::attr::IceControlling, tie);
    if (nominate) b.add(stun::attr::UseCandidate, {});
    b.add_message_integrity({reinterpret_cast<const std::uint8_t*>(gateway.pwd.data()), gateway.pwd.size()});
    b.add_fingerprint();
    if (!b.ok()) die("cannot build an ICE check");
    buf.resize(b.size());
    return buf;
}

// What every call shares: the browsers' certificate and the tones, made once. Each tone's Opus
// frame is encoded once per tick (an encoder per tone, as a browser's microphone would be).
struct PeerShared {
    bool pcmu = false;
    bool trunk_g722 = false;  // the trunk answers G.722 (the server must allow it: codecs "g722")
    std::shared_ptr<const DtlsCertificate> browser_cert = DtlsCertificate::generate();
    std::array<std::array<std::int16_t, 960>, kTones> browser_pcm{};  // one 20 ms frame at 48 kHz
    std::array<std::array<std::uint8_t, kFrameSamples>, kTones> browser_pcmu{}, trunk_pcmu{};
    std::array<OpusEncoder*, kTones> encoders{};
    std::array<std::array<std::uint8_t, kMaxKeptPayload>, kTones> opus{};
    std::array<std::size_t, kTones> opus_size{};

    explicit PeerShared(bool g711, bool g722 = false) : pcmu(g711), trunk_g722(g722) {
        for (std::size_t t = 0; t < kTones; ++t) {
            if (trunk_g722) {
                // A steady G.722 frame of the tone: the 10th of a continuous run (the coder adapts).
                G722Encoder enc(true);
                for (std::size_t f = 0; f < 10; ++f)
                    enc.encode(sine(trunk_tone(t), 16000, kWideFrameSamples, kAmplitude, f * kWideFrameSamples),
                               std::span<std::uint8_t, kTrunkFrameBytes>(trunk_pcmu[t]));
            }
            const auto b48 = sine(browser_tone(t), 48000, 960, kAmplitude);
            std::copy(b48.begin(), b48.end(), browser_pcm[t].begin());
            g711_encode(G711Law::Pcmu, sine(browser_tone(t), 8000, kFrameSamples, kAmplitude), browser_pcmu[t]);
            if (!trunk_g722) g711_encode(G711Law::Pcmu, sine(trunk_tone(t), 8000, kFrameSamples, kAmplitude), trunk_pcmu[t]);
            int err = 0;
            encoders[t] = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
            if (err != OPUS_OK) die("opus_encoder_create failed");
            opus_encoder_ctl(encoders[t], OPUS_SET_BITRATE(32000));  // Chrome's default for mono voice
            opus_encoder_ctl(encoders[t], OPUS_SET_INBAND_FEC(1));
            opus_encoder_ctl(encoders[t], OPUS_SET_PACKET_LOSS_PERC(5));
        }
    }
    ~PeerShared() {
        for (auto* e : encoders) opus_encoder_destroy(e);
    }
    PeerShared(const PeerShared&) = delete;
    PeerShared& operator=(const PeerShared&) = delete;

    void encode_tick() {
        if (pcmu) return;
        for (std::size_t t = 0; t < kTones; ++t) {
            const int n = opus_encode(encoders[t], browser_pcm[t].data(), 960, opus[t].data(), kMaxKeptPayload);
            if (n <= 0) die("opus_encode failed");
            opus_size[t] = static_cast<std::size_t>(n);
        }
    }
    std::span<const std::uint8_t> browser_frame(std::size_t call) const {
        const auto t = call % kTones;
        if (pcmu) return browser_pcmu[t];
        return {opus[t].data(), opus_size[t]};
    }
    std::uint8_t browser_pt() const { return pcmu ? kPcmuPt : kOpusPt; }
    std::uint8_t trunk_pt() const { return trunk_g722 ? kG722Pt : kPcmuPt; }
};

// The browser's end of one call.
struct BrowserPeer {
    std::size_t index = 0;
    IceCredentials ice, gateway_ice;
    std::unique_ptr<DtlsSrtpEndpoint> dtls;
    std::vector<Datagram> flight;   // DTLS datagrams for the caller to send
    std::vector<std::uint8_t> consent_check;
    std::uint16_t seq = 1000;
    std::uint32_t timestamp = 5000, ssrc = 0;
    std::array<std::uint8_t, kMaxMediaDatagram> to_gateway{};
    std::size_t to_gateway_size = 0;
    std::array<std::uint8_t, kMaxMediaDatagram> rx{};
    std::array<std::array<std::uint8_t, kMaxKeptPayload>, kKeepFrames> heard{};
    std::array<std::size_t, kKeepFrames> heard_size{};
    std::uint64_t packets = 0, consent_answers = 0, auth_failures = 0, sequence_gaps = 0, unexpected = 0, srtp_seen = 0;
    std::optional<std::uint16_t> last_seq;

    // The offer, before the gateway answers.
    std::string offer(const PeerShared& s) {
        ice = make_ice_credentials(random_bytes);
        ssrc = random_value<std::uint32_t>(random_bytes);
        return browser_offer(ice, s.browser_cert->fingerprint_sha256(), s.pcmu);
    }
    // The gateway's answer: its ICE credentials and DTLS fingerprint; empty when it is usable.
    std::string take_answer(const PeerShared& s, const std::string& answer) {
        gateway_ice = {sdp_attribute(answer, "ice-ufrag"), sdp_attribute(answer, "ice-pwd")};
        const auto fingerprint = sdp_attribute(answer, "fingerprint");
        if (sdp_attribute(answer, "setup") != "passive" || fingerprint.rfind("sha-256 ", 0) != 0 || gateway_ice.ufrag.empty())
            return "unexpected answer:\n" + answer;
        dtls = std::make_unique<DtlsSrtpEndpoint>(s.browser_cert, DtlsRole::Client, "sha-256", fingerprint.substr(8));
        consent_check = ice_check(gateway_ice, ice, false, index);
        return {};
    }
    std::vector<std::uint8_t> nomination() const { return ice_check(gateway_ice, ice, true, index); }
    bool connected() const { return dtls && dtls->state() == DtlsSrtpEndpoint::State::Connected && dtls->srtp(); }

    // This tick's SRTP packet, in to_gateway[0, to_gateway_size).
    void make_packet(const PeerShared& s) {
        const auto frame = s.browser_frame(index);
        write_rtp_header({false, s.browser_pt(), seq++, timestamp, ssrc}, to_gateway);
        std::memcpy(to_gateway.data() + kRtpHeaderSize, frame.data(), frame.size());
        const auto n = dtls->srtp()->protect_rtp(to_gateway, kRtpHeaderSize + frame.size());
        if (!n) die("the browser cannot protect its RTP");
        to_gateway_size = *n;
        timestamp += s.pcmu ? kFrameSamples : kOpusFrameTicks;
    }

    // A datagram from the gateway (RFC 7983 demux). `corrupt` flips a bit of an SRTP packet first
    // (the srtp fault). Returns the RTP sequence number of a good media packet.
    std::optional<std::uint16_t> on_datagram(Time now, std::span<const std::uint8_t> bytes, std::uint8_t pt, bool corrupt) {
        switch (classify(bytes)) {
        case PacketKind::Stun: {
            const auto m = stun::Message::parse(bytes);
            if (m && m->cls() == stun::Class::Success) ++consent_answers;
            else ++unexpected;
            return std::nullopt;
        }
        case PacketKind::Dtls:
            if (dtls) dtls->on_datagram(now, bytes, flight);
            return std::nullopt;
        case PacketKind::Rtp:
            if (dtls && dtls->srtp()) return receive(bytes, pt, corrupt && ++srtp_seen % 50 == 7);
            ++unexpected;
            return std::nullopt;
        default: ++unexpected; return std::nullopt;
        }
    }

    std::optional<std::uint16_t> receive(std::span<const std::uint8_t> bytes, std::uint8_t pt, bool corrupt) {
        if (bytes.size() > rx.size()) {
            ++unexpected;
            return std::nullopt;
        }
        std::memcpy(rx.data(), bytes.data(), bytes.size());
        if (corrupt) rx[bytes.size() - 1] ^= 1;  // the tag no longer matches
        const auto n = dtls->srtp()->unprotect_rtp(rx, bytes.size());
        if (!n) {
            ++auth_failures;
            return std::nullopt;
        }
        const auto p = RtpPacket::parse({rx.data(), *n});
        if (!p || p->header.payload_type != pt || p->payload.size() > kMaxKeptPayload) {
            ++unexpected;
            return std::nullopt;
        }
        if (last_seq && p->header.sequence != static_cast<std::uint16_t>(*last_seq + 1)) ++sequence_gaps;
        last_seq = p->header.sequence;
        const auto slot = packets++ % kKeepFrames;
        std::copy(p->payload.begin(), p->payload.end(), heard[slot].begin());
        heard_size[slot] = p->payload.size();
        return p->header.sequence;
    }

    // The tone in the last frames heard (decoded to 8 kHz: the check needs the band below 4 kHz).
    double heard_hz(bool pcmu) const {
        std::vector<double> pcm;
        OpusDecoder* dec = nullptr;
        if (!pcmu) {
            int err = 0;
            dec = opus_decoder_create(8000, 1, &err);
            if (err != OPUS_OK) die("opus_decoder_create failed");
        }
        std::array<std::int16_t, 960> frame{};
        for (std::size_t k = 0; k < kKeepFrames; ++k) {
            const auto slot = (packets + k) % kKeepFrames;
            const auto payload = std::span(heard[slot]).first(heard_size[slot]);
            int n = static_cast<int>(payload.size());
            if (pcmu) g711_decode(G711Law::Pcmu, payload, std::span(frame).first(payload.size()));
            else n = opus_decode(dec, payload.data(), static_cast<opus_int32>(payload.size()), frame.data(), 960, 0);
            if (k >= kSkipFrames && n > 0) pcm.insert(pcm.end(), frame.begin(), frame.begin() + n);
        }
        if (dec) opus_decoder_destroy(dec);
        return dominant_frequency(pcm, 8000, 2000);
    }
};

// The trunk's end of one call: plain RTP, PCMU or G.722 (RFC 3551).
struct TrunkPeer {
    std::size_t index = 0;
    std::uint16_t seq = 7000;
    std::uint32_t timestamp = 90000;
    std::array<std::uint8_t, kRtpHeaderSize + kFrameSamples> to_gateway{};
    std::array<std::int16_t, kKeepFrames * kFrameSamples> heard{};
    std::uint64_t packets = 0, sequence_gaps = 0, unexpected = 0;
    std::optional<std::uint16_t> last_seq;
    std::unique_ptr<G722Decoder> g722;  // made at the first G.722 packet

    // This tick's RTP packet in to_gateway; `crossed` plays the neighbour's tone (the tone fault).
    void make_packet(const PeerShared& s, bool crossed) {
        write_rtp_header({false, s.trunk_pt(), seq++, timestamp, 0x77000000u + static_cast<std::uint32_t>(index)}, to_gateway);
        const auto& t = s.trunk_pcmu[(index + crossed) % kTones];
        std::copy(t.begin(), t.end(), to_gateway.begin() + kRtpHeaderSize);
        timestamp += kFrameSamples;
    }

    // Returns the RTP sequence number of a good PCMU (or G.722) packet.
    std::optional<std::uint16_t> receive(const PeerShared& s, std::span<const std::uint8_t> bytes) {
        const auto p = RtpPacket::parse(bytes);
        if (!p || p->header.payload_type != s.trunk_pt() || p->payload.size() != kFrameSamples) {
            ++unexpected;
            return std::nullopt;
        }
        if (last_seq && p->header.sequence != static_cast<std::uint16_t>(*last_seq + 1)) ++sequence_gaps;
        last_seq = p->header.sequence;
        const auto slot = packets++ % kKeepFrames;
        const auto into = std::span(heard).subspan(slot * kFrameSamples, kFrameSamples);
        if (!s.trunk_g722) {
            g711_decode(G711Law::Pcmu, p->payload, into);
            return p->header.sequence;
        }
        if (!g722) g722 = std::make_unique<G722Decoder>(true);
        std::array<std::int16_t, kWideFrameSamples> wide{};
        g722->decode(p->payload.first<kTrunkFrameBytes>(), wide);
        for (std::size_t i = 0; i < kFrameSamples; ++i) into[i] = wide[2 * i];  // 8 kHz: the tones are < 2 kHz
        return p->header.sequence;
    }

    double heard_hz() const {
        std::vector<double> pcm;
        for (std::size_t k = kSkipFrames; k < kKeepFrames; ++k) {
            const auto slot = (packets + k) % kKeepFrames;
            pcm.insert(pcm.end(), heard.begin() + static_cast<long>(slot * kFrameSamples),
                       heard.begin() + static_cast<long>((slot + 1) * kFrameSamples));
        }
        return dominant_frequency(pcm, 8000, 2000);
    }
};

// How far a tone heard is from the one played, as a fraction.
inline double tone_error(double heard, double played) { return std::abs(heard - played) / played; }

struct Series {
    std::vector<double> v;
    double mean() const {
        double s = 0;
        for (double x : v) s += x;
        return v.empty() ? 0 : s / static_cast<double>(v.size());
    }
    double quantile(double q) const {
        if (v.empty()) return 0;
        auto c = v;
        std::sort(c.begin(), c.end());
        return c[std::min(c.size() - 1, static_cast<std::size_t>(q * static_cast<double>(c.size())))];
    }
    long over(double limit) const { return std::count_if(v.begin(), v.end(), [&](double x) { return x > limit; }); }
    std::string json() const {
        char b[200];
        std::snprintf(b, sizeof b, "{\"mean\": %.4f, \"p50\": %.4f, \"p99\": %.4f, \"max\": %.4f}", mean(),
                      quantile(0.5), quantile(0.99), v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()));
        return b;
    }
};

inline std::string json_string(const std::string& s) {
    std::string o;
    append_json_string(o, s);  // the project's one JSON string escaper
    return o;
}

}  // namespace turnbridge::bench
