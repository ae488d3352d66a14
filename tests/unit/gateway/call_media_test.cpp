// SPDX-License-Identifier: Apache-2.0
// CallMedia between two in-memory peers: a fake browser built from the gateway's own pieces
// (its own DTLS client and SRTP session, a 48 kHz Opus encoder, ICE checks from the STUN codec)
// and a fake trunk sending plain PCMU.
#include <doctest/doctest.h>

#include <opus/opus.h>

#include <fstream>
#include <thread>
#include <sstream>

#include "tone.hpp"
#include "turnbridge/gateway/call_media.hpp"
#include "turnbridge/gateway/demux.hpp"
#include "turnbridge/stun/integrity.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;
using namespace turnbridge::gateway::test;
using namespace std::chrono_literals;

namespace {

const auto gateway_cert = DtlsCertificate::generate();
const auto browser_cert = DtlsCertificate::generate();
const auto other_cert = DtlsCertificate::generate();
const Endpoint kBrowserAddr = *Endpoint::parse("192.0.2.10:50000");
const Endpoint kTrunkAddr = *Endpoint::parse("192.0.2.50:40000");
const Endpoint kOurBrowserLeg = *Endpoint::parse("198.51.100.1:22000");
const Endpoint kOurTrunkLeg = *Endpoint::parse("198.51.100.1:22002");
constexpr std::uint32_t kBrowserSsrc = 0xB0B0B0B0, kTrunkSsrc = 0x77777777;

std::string read(const std::string& rel) {
    std::ifstream f(std::string(TURNBRIDGE_FIXTURES_DIR) + "/" + rel);
    REQUIRE(f.good());
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

void replace(std::string& s, std::string_view from, std::string_view to) {
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    s.replace(at, from.size(), to);
}

// A deterministic random source: the call's SSRCs and credentials differ from the peers' anyway.
RandomSource counter_rng() {
    auto n = std::make_shared<std::uint8_t>(7);
    return [n](std::span<std::uint8_t> out) {
        for (auto& b : out) b = static_cast<std::uint8_t>((*n += 37) ^ 0x5A);
    };
}

// The value of "a=<name>:" in `sdp`.
std::string attribute(const std::string& sdp, const std::string& name) {
    const auto at = sdp.find("a=" + name + ":");
    if (at == std::string::npos) return {};
    const auto from = at + name.size() + 3;
    return sdp.substr(from, sdp.find("\r\n", from) - from);
}

const std::string kTrunkAnswer =
    "v=0\r\no=trunk 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

struct FakeBrowser {
    IceCredentials ice{"brws", "browserPasswordBrowser00"};
    std::unique_ptr<DtlsSrtpEndpoint> dtls;
    OpusEncoder* enc = nullptr;
    OpusDecoder* dec = nullptr;
    std::uint16_t seq = 1000;
    std::uint32_t media_time = 0;
    std::size_t samples = 0;

    FakeBrowser() {
        int err = 0;
        enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
        REQUIRE(err == OPUS_OK);
        opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
        dec = opus_decoder_create(48000, 1, &err);
        REQUIRE(err == OPUS_OK);
    }
    ~FakeBrowser() {
        opus_encoder_destroy(enc);
        opus_decoder_destroy(dec);
    }

    // Chrome's captured offer with our ICE credentials and `fingerprint` (what the browser claims).
    std::string offer(const std::string& fingerprint, std::string_view direction = "sendrecv") const {
        auto s = read("sdp/chrome_audio_offer.sdp");
        replace(s, "a=ice-ufrag:NWO7", "a=ice-ufrag:" + ice.ufrag);
        replace(s, "a=ice-pwd:koyPxWosmRcEa8enbuCMApcd", "a=ice-pwd:" + ice.pwd);
        replace(s, attribute(s, "fingerprint"), "sha-256 " + fingerprint);
        replace(s, "a=sendrecv", "a=" + std::string(direction));
        return s;
    }

    // RFC 8445 §7.2.2: a Binding request from the controlling agent, nominating (USE-CANDIDATE).
    std::vector<std::uint8_t> check(const IceCredentials& gw, bool nominate) const {
        std::vector<std::uint8_t> buf(256);
        stun::TransactionId tid{};
        tid[0] = nominate ? 1 : 2;
        stun::MessageBuilder b(buf, stun::method::Binding, stun::Class::Request, tid);
        b.add_string(stun::attr::Username, gw.ufrag + ":" + ice.ufrag);
        b.add_u32(stun::attr::Priority, 1853824767);
        const std::uint8_t tie[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        b.add(stun::attr::IceControlling, tie);
        if (nominate) b.add(stun::attr::UseCandidate, {});
        b.add_message_integrity({reinterpret_cast<const std::uint8_t*>(gw.pwd.data()), gw.pwd.size()});
        b.add_fingerprint();
        REQUIRE(b.ok());
        buf.resize(b.size());
        return buf;
    }

    std::vector<std::uint8_t> protect(const RtpHeader& h, std::span<const std::uint8_t> payload) {
        std::vector<std::uint8_t> p(kRtpHeaderSize + payload.size() + kSrtpMaxTrailer);
        write_rtp_header(h, p);
        std::copy(payload.begin(), payload.end(), p.begin() + kRtpHeaderSize);
        auto n = dtls->srtp()->protect_rtp(p, kRtpHeaderSize + payload.size());
        REQUIRE(n);
        p.resize(*n);
        return p;
    }

    // The next 20 ms of a 1 kHz tone as an Opus packet (PT 111, as in Chrome's offer).
    std::vector<std::uint8_t> opus_packet() {
        const auto pcm = sine(1000, 48000, 960, 8000, samples);
        samples += 960;
        std::vector<std::uint8_t> enc_buf(kMaxOpusPacket);
        const int n = opus_encode(enc, pcm.data(), 960, enc_buf.data(), static_cast<opus_int32>(enc_buf.size()));
        REQUIRE(n > 0);
        enc_buf.resize(static_cast<std::size_t>(n));
        auto p = protect({false, 111, seq++, 5000 + media_time, kBrowserSsrc}, enc_buf);
        media_time += 960;
        return p;
    }
};

std::vector<std::uint8_t> pcmu_packet(std::uint16_t seq, double hz, std::size_t frame) {
    const auto pcm = sine(hz, 8000, kFrameSamples, 8000, frame * kFrameSamples);
    std::vector<std::uint8_t> p(kRtpHeaderSize + kFrameSamples);
    write_rtp_header({false, 0, seq, static_cast<std::uint32_t>(90000 + frame * kFrameSamples), kTrunkSsrc}, p);
    g711_encode(G711Law::Pcmu, pcm, std::span(p).subspan(kRtpHeaderSize));
    return p;
}

// The gateway between the fake browser and the fake trunk, with what each peer received.
struct Rig {
    Time now{};
    FakeBrowser browser;
    std::optional<CallMedia> media;
    MediaOutput out;
    IceCredentials gw_ice;
    std::string gw_fingerprint;
    std::vector<std::vector<std::uint8_t>> at_trunk;    // plain RTP
    std::vector<std::vector<std::uint8_t>> at_browser;  // RTP after SRTP unprotect
    std::vector<Datagram> browser_dtls_out;

    explicit Rig(DtlsOptions dtls = {}, bool trunk_g722 = false) {
        CallMediaConfig c;
        c.dtls = dtls;
        c.trunk_g722 = trunk_g722;
        c.certificate = gateway_cert;
        c.browser_address = kOurBrowserLeg;
        c.trunk_address = kOurTrunkLeg;
        c.random = counter_rng();
        media.emplace(std::move(c));
    }

    // Outbound call: browser offer -> trunk offer, trunk answer -> browser answer.
    std::string negotiate(const std::string& claimed_fingerprint, const std::shared_ptr<const DtlsCertificate>& cert,
                          const std::string& trunk_answer = kTrunkAnswer) {
        const auto trunk_offer = media->map_offer(true, browser.offer(claimed_fingerprint));
        REQUIRE(trunk_offer);
        const auto answer = media->map_answer(false, trunk_answer);
        REQUIRE(answer);
        gw_ice = {attribute(*answer, "ice-ufrag"), attribute(*answer, "ice-pwd")};
        gw_fingerprint = attribute(*answer, "fingerprint").substr(8);
        // RFC 8842 §5.3: we answered an actpass offer passive, so the browser is the DTLS client.
        REQUIRE(attribute(*answer, "setup") == "passive");
        browser.dtls = std::make_unique<DtlsSrtpEndpoint>(cert, DtlsRole::Client, "sha-256", gw_fingerprint);
        return *trunk_offer;
    }

    void from_browser(std::span<const std::uint8_t> d) {
        media->on_browser_datagram(now, kBrowserAddr, d, out);
        deliver();
    }
    void from_trunk(std::span<const std::uint8_t> d) {
        media->on_trunk_datagram(now, kTrunkAddr, d, out);
        deliver();
    }
    void tick() {
        now += 20ms;
        media->on_tick(now, out);
        deliver();
    }

    // Hands the gateway's output to the peers: DTLS to the browser's endpoint, SRTP unprotected.
    void deliver() {
        for (std::size_t i = 0; i < out.size(); ++i) {
            const auto& p = out[i];
            if (p.leg == MediaLeg::Trunk) {
                CHECK(p.to == kTrunkAddr);
                at_trunk.emplace_back(p.bytes().begin(), p.bytes().end());
                continue;
            }
            CHECK(p.to == kBrowserAddr);
            const auto kind = classify(p.bytes());
            if (kind == PacketKind::Dtls && browser.dtls) {
                browser.dtls->on_datagram(now, p.bytes(), browser_dtls_out);
            } else if (kind == PacketKind::Rtp && browser.dtls && browser.dtls->srtp()) {
                std::vector<std::uint8_t> b(p.bytes().begin(), p.bytes().end());
                auto n = browser.dtls->srtp()->unprotect_rtp(b, b.size());
                REQUIRE(n);
                b.resize(*n);
                at_browser.push_back(std::move(b));
            }
        }
        out.clear();
    }

    // The browser's ICE check nominating the pair, then its DTLS handshake as the client.
    void connect() {
        from_browser(browser.check(gw_ice, true));
        browser.dtls->start(now, browser_dtls_out);
        for (int round = 0; round < 20 && !browser_dtls_out.empty(); ++round) {
            auto flight = std::move(browser_dtls_out);
            browser_dtls_out.clear();
            for (const auto& d : flight) from_browser(d);
        }
    }
};

std::vector<double> opus_decode_all(OpusDecoder* dec, const std::vector<std::vector<std::uint8_t>>& packets,
                                    std::uint8_t pt) {
    std::vector<double> pcm;
    std::vector<std::int16_t> frame(5760);
    for (const auto& b : packets) {
        const auto p = RtpPacket::parse(b);
        REQUIRE(p);
        if (p->header.payload_type != pt) continue;
        const int n = opus_decode(dec, p->payload.data(), static_cast<opus_int32>(p->payload.size()), frame.data(), 5760, 0);
        REQUIRE(n > 0);
        pcm.insert(pcm.end(), frame.begin(), frame.begin() + n);
    }
    return pcm;
}

// A real Firefox offer (tests/fixtures/sdp) with the fake browser's ICE credentials and
// `fingerprint` in place of the captured ones.
std::string firefox_offer(const std::string& file, const FakeBrowser& b, const std::string& fingerprint) {
    auto s = read(file);
    replace(s, "a=ice-ufrag:" + attribute(s, "ice-ufrag"), "a=ice-ufrag:" + b.ice.ufrag);
    replace(s, "a=ice-pwd:" + attribute(s, "ice-pwd"), "a=ice-pwd:" + b.ice.pwd);
    replace(s, "a=fingerprint:" + attribute(s, "fingerprint"), "a=fingerprint:sha-256 " + fingerprint);
    return s;
}

// The fake browser's PCMU answer to our offer (an inbound late offer's first step).
std::string pcmu_browser_answer(const FakeBrowser& b) {
    return "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
           "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
           "a=ice-ufrag:" + b.ice.ufrag + "\r\na=ice-pwd:" + b.ice.pwd + "\r\n"
           "a=fingerprint:sha-256 " + browser_cert->fingerprint_sha256() + "\r\n"
           "a=setup:passive\r\na=rtcp-mux\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n";
}

}  // namespace

TEST_CASE("outbound call: the browser offer becomes a short G.711 offer, the trunk answer an ICE-lite DTLS answer") {
    Rig r;
    const auto trunk_offer = r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    CHECK(trunk_offer.find("m=audio 22002 RTP/AVP 0 8 101\r\n") != std::string::npos);
    CHECK(trunk_offer.find("c=IN IP4 198.51.100.1") != std::string::npos);
    for (const char* leak : {"extmap", "ssrc", "rtcp-fb", "fingerprint", "ice-", "opus"})
        CHECK(trunk_offer.find(leak) == std::string::npos);
    const auto answer = r.media->map_answer(false, kTrunkAnswer);  // a 200 after a 183: same answer
    REQUIRE(answer);
    CHECK(answer->find("a=ice-lite") != std::string::npos);
    CHECK(r.gw_fingerprint == gateway_cert->fingerprint_sha256());
    CHECK(answer->find("a=candidate:1 1 udp 2130706431 198.51.100.1 22000 typ host") != std::string::npos);
    CHECK(answer->find("m=audio 22000 UDP/TLS/RTP/SAVPF 111 110\r\n") != std::string::npos);
    CHECK(r.media->codec_names() == "opus/PCMU");
    CHECK(r.media->state() == CallMedia::State::Negotiated);
    CHECK_FALSE(r.media->map_answer(true, *answer));  // no offer toward the browser is pending
    CHECK(r.media->map_answer(false, "") == answer);   // a 200 without SDP after the 183's answer
}

TEST_CASE("ICE check with USE-CANDIDATE selects the pair; DTLS completes; tones cross both ways") {
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    // A check without nomination is answered but selects nothing; a wrong password gets nothing.
    r.media->on_browser_datagram(r.now, kBrowserAddr, r.browser.check(r.gw_ice, false), r.out);
    REQUIRE(r.out.size() == 1);
    auto resp = stun::Message::parse(r.out[0].bytes());
    REQUIRE(resp);
    CHECK(resp->cls() == stun::Class::Success);
    CHECK(resp->get_xor_address(stun::attr::XorMappedAddress) == kBrowserAddr);
    CHECK(stun::check_message_integrity(*resp, {reinterpret_cast<const std::uint8_t*>(r.gw_ice.pwd.data()),
                                                r.gw_ice.pwd.size()}));
    CHECK_FALSE(r.media->ice_selected());
    r.out.clear();
    r.media->on_browser_datagram(r.now, kBrowserAddr, r.browser.check({r.gw_ice.ufrag, "wrongPasswordWrongPass00"}, true), r.out);
    CHECK(r.out.empty());
    CHECK(r.media->stats().stranger_browser == 1);
    CHECK_FALSE(r.media->ice_selected());
    r.out.clear();

    r.connect();
    REQUIRE(r.media->ice_selected() == kBrowserAddr);
    REQUIRE(r.browser.dtls->state() == DtlsSrtpEndpoint::State::Connected);
    REQUIRE(r.media->dtls_state() == DtlsSrtpEndpoint::State::Connected);
    CHECK(r.media->state() == CallMedia::State::Connected);

    // 2 s of talk both ways; the browser loses packets 1030 and 1031 on the way.
    for (std::size_t frame = 0; frame < 100; ++frame) {
        auto opus = r.browser.opus_packet();
        if (frame != 30 && frame != 31) r.from_browser(opus);
        r.from_trunk(pcmu_packet(static_cast<std::uint16_t>(7000 + frame), 600, frame));
        r.tick();
    }

    // Browser -> trunk: PCMU, our own SSRC and contiguous sequence numbers and timestamps.
    REQUIRE(r.at_trunk.size() == 100);
    std::vector<double> heard_at_trunk;
    std::optional<RtpHeader> prev;
    for (const auto& b : r.at_trunk) {
        const auto p = RtpPacket::parse(b);
        REQUIRE(p);
        CHECK(p->header.payload_type == 0);
        CHECK(p->header.ssrc != kBrowserSsrc);
        CHECK(p->payload.size() == kFrameSamples);
        if (prev) {
            CHECK(p->header.ssrc == prev->ssrc);
            CHECK(p->header.sequence == static_cast<std::uint16_t>(prev->sequence + 1));
            CHECK(p->header.timestamp == prev->timestamp + kFrameSamples);
        }
        prev = p->header;
        for (auto c : p->payload) heard_at_trunk.push_back(ulaw_to_linear(c));
    }
    const std::vector<double> steady_trunk(heard_at_trunk.begin() + 50 * kFrameSamples, heard_at_trunk.end());
    const double f_trunk = dominant_frequency(steady_trunk, 8000);
    CHECK(std::abs(f_trunk - 1000) <= 20);  // 2 %

    // Trunk -> browser: Opus at 48 kHz RTP clock, our SSRC, +960 per frame.
    REQUIRE(r.at_browser.size() == 100);
    const auto first = RtpPacket::parse(r.at_browser.front())->header;
    const auto last = RtpPacket::parse(r.at_browser.back())->header;
    CHECK(first.payload_type == 111);
    CHECK(first.ssrc != kTrunkSsrc);
    CHECK(last.timestamp - first.timestamp == 99u * kOpusFrameTicks);
    CHECK(static_cast<std::uint16_t>(last.sequence - first.sequence) == 99);
    const auto pcm = opus_decode_all(r.browser.dec, r.at_browser, 111);
    REQUIRE(pcm.size() == 100u * 960);
    const std::vector<double> steady_browser(pcm.begin() + 60 * 960, pcm.end());
    CHECK(std::abs(dominant_frequency(steady_browser, 48000, 3000) - 600) <= 12);  // 2 %

    const auto& s = r.media->stats();
    CHECK(s.trunk_out.packets == 100);
    CHECK(s.trunk_in.packets == 100);
    CHECK(s.browser_in.packets >= 98);
    CHECK(s.browser_out.bytes > 0);
}

TEST_CASE("a browser DTMF digit reaches the trunk as RFC 4733 at 8000 Hz with rescaled durations") {
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    r.connect();
    for (int i = 0; i < 5; ++i) {
        r.from_browser(r.browser.opus_packet());
        r.tick();
    }
    r.at_trunk.clear();
    // Digit 5 on the browser's 48 kHz telephone-event (PT 110 in Chrome's offer): 60 ms, and the
    // end packet three times (RFC 4733 §2.5.1.4).
    const std::uint32_t start = 5000 + r.browser.media_time;
    const std::uint16_t durations[] = {960, 1920, 2880, 2880, 2880, 2880};
    for (int i = 0; i < 6; ++i) {
        std::uint8_t ev[4];
        write_telephone_event({5, i >= 3, 10, durations[i]}, ev);
        r.from_browser(r.browser.protect({i == 0, 110, r.browser.seq++, start, kBrowserSsrc}, ev));
        r.tick();
    }
    std::vector<RtpPacket> events;
    std::vector<std::vector<std::uint8_t>> keep = r.at_trunk;
    std::optional<std::uint16_t> prev_seq;
    for (const auto& b : keep) {
        const auto p = RtpPacket::parse(b);
        REQUIRE(p);
        if (prev_seq) CHECK(p->header.sequence == static_cast<std::uint16_t>(*prev_seq + 1));  // one stream of ours
        prev_seq = p->header.sequence;
        if (p->header.payload_type == 101) events.push_back(*p);
    }
    REQUIRE(events.size() == 6);
    const std::uint16_t expected[] = {160, 320, 480, 480, 480, 480};
    for (std::size_t i = 0; i < events.size(); ++i) {
        CAPTURE(i);
        const auto ev = parse_telephone_event(events[i].payload);
        REQUIRE(ev);
        CHECK(ev->event == 5);
        CHECK(ev->duration == expected[i]);
        CHECK(ev->end == (i >= 3));
        CHECK(events[i].header.marker == (i == 0));
        CHECK(events[i].header.timestamp == events[0].header.timestamp);
        CHECK(events[i].header.ssrc != kBrowserSsrc);
    }
    CHECK(r.media->stats().dtmf_to_trunk == 6);
}

TEST_CASE("a browser certificate that does not match its a=fingerprint fails the media with a reason") {
    Rig r;
    // The offer pins browser_cert, but the browser's DTLS presents other_cert.
    r.negotiate(browser_cert->fingerprint_sha256(), other_cert);
    r.connect();
    CHECK(r.media->state() == CallMedia::State::Failed);
    CHECK(r.media->failure().find("fingerprint") != std::string::npos);
    CHECK(r.browser.dtls->state() != DtlsSrtpEndpoint::State::Connected);
    // Nothing flows afterwards.
    r.from_trunk(pcmu_packet(1, 600, 0));
    r.tick();
    CHECK(r.at_trunk.empty());
    CHECK(r.at_browser.empty());
    CHECK_FALSE(r.media->map_offer(true, r.browser.offer(browser_cert->fingerprint_sha256())));
}

TEST_CASE("hold from the browser reaches the trunk as sendonly; the DTLS association stays") {
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    r.connect();
    REQUIRE(r.media->state() == CallMedia::State::Connected);
    const auto trunk_offer = r.media->map_offer(true, r.browser.offer(browser_cert->fingerprint_sha256(), "sendonly"));
    REQUIRE(trunk_offer);
    CHECK(trunk_offer->find("a=sendonly") != std::string::npos);
    CHECK(trunk_offer->find("o=turnbridge ") != std::string::npos);
    auto held = kTrunkAnswer;
    replace(held, "a=sendrecv", "a=recvonly");
    const auto answer = r.media->map_answer(false, held);
    REQUIRE(answer);
    CHECK(answer->find("a=recvonly") != std::string::npos);
    CHECK(r.media->dtls_state() == DtlsSrtpEndpoint::State::Connected);
    // The browser still talks to the trunk; the trunk's audio is not sent to the holding browser.
    for (std::size_t frame = 0; frame < 10; ++frame) {
        r.from_browser(r.browser.opus_packet());
        r.from_trunk(pcmu_packet(static_cast<std::uint16_t>(frame), 600, frame));
        r.tick();
    }
    CHECK(r.at_trunk.size() == 10);
    CHECK(r.at_browser.empty());
}

TEST_CASE("inbound call: trunk offer -> browser offer, browser G.711 answer -> trunk answer without transcoding") {
    Rig r;
    const std::string trunk_offer =
        "v=0\r\no=trunk 9 9 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n";
    const auto offer = r.media->map_offer(false, trunk_offer);
    REQUIRE(offer);
    CHECK(attribute(*offer, "setup") == "actpass");
    CHECK(offer->find("a=ice-lite") != std::string::npos);
    CHECK(attribute(*offer, "fingerprint") == "sha-256 " + gateway_cert->fingerprint_sha256());
    r.gw_ice = {attribute(*offer, "ice-ufrag"), attribute(*offer, "ice-pwd")};
    // The browser picks PCMU and answers passive: the gateway becomes the DTLS client.
    const std::string browser_answer =
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 0 126\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
        "a=ice-ufrag:" + r.browser.ice.ufrag + "\r\na=ice-pwd:" + r.browser.ice.pwd + "\r\n"
        "a=fingerprint:sha-256 " + browser_cert->fingerprint_sha256() + "\r\n"
        "a=setup:passive\r\na=rtcp-mux\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:126 telephone-event/8000\r\n";
    const auto answer = r.media->map_answer(true, browser_answer);
    REQUIRE(answer);
    CHECK(answer->find("m=audio 22002 RTP/AVP 0 101\r\n") != std::string::npos);  // PCMU like the browser
    CHECK_FALSE(r.media->map_answer(true, browser_answer));  // a second fork's answer: the first stands
    CHECK(r.media->codec_names() == "PCMU/PCMU");

    r.browser.dtls = std::make_unique<DtlsSrtpEndpoint>(browser_cert, DtlsRole::Server, "sha-256",
                                                        gateway_cert->fingerprint_sha256());
    // The nomination lets the gateway send its ClientHello; the browser answers as the server.
    r.from_browser(r.browser.check(r.gw_ice, true));
    for (int round = 0; round < 20 && !r.browser_dtls_out.empty(); ++round) {
        auto flight = std::move(r.browser_dtls_out);
        r.browser_dtls_out.clear();
        for (const auto& d : flight) r.from_browser(d);
    }
    REQUIRE(r.media->state() == CallMedia::State::Connected);
    REQUIRE(r.browser.dtls->state() == DtlsSrtpEndpoint::State::Connected);

    const auto pkt = pcmu_packet(1, 600, 0);
    r.from_trunk(pkt);
    REQUIRE(r.at_browser.size() == 1);
    const auto p = RtpPacket::parse(r.at_browser[0]);
    REQUIRE(p);
    CHECK(p->header.payload_type == 0);
    CHECK(std::equal(p->payload.begin(), p->payload.end(), pkt.begin() + kRtpHeaderSize));  // passthrough

    // The browser re-offers (actpass, as browsers do): we stay the DTLS client, no new handshake.
    const auto trunk_reoffer = r.media->map_offer(true, r.browser.offer(browser_cert->fingerprint_sha256()));
    REQUIRE(trunk_reoffer);
    const auto reanswer = r.media->map_answer(false, kTrunkAnswer);
    REQUIRE(reanswer);
    CHECK(attribute(*reanswer, "setup") == "active");
    CHECK(r.media->dtls_state() == DtlsSrtpEndpoint::State::Connected);
    CHECK(r.media->state() == CallMedia::State::Connected);
    CHECK(r.media->codec_names() == "opus/PCMU");  // Chrome's offer puts Opus first

    // The trunk holds (RFC 3264 §8.4): the browser is offered sendonly and its recvonly answer
    // becomes the trunk's answer; nothing goes to the trunk while it only sends.
    auto hold = trunk_offer;
    replace(hold, "a=ptime:20\r\n", "a=ptime:20\r\na=sendonly\r\n");
    const auto browser_offer = r.media->map_offer(false, hold);
    REQUIRE(browser_offer);
    CHECK(browser_offer->find("a=sendonly") != std::string::npos);
    auto held_answer = browser_answer;
    replace(held_answer, "a=sendrecv", "a=recvonly");
    const auto trunk_answer = r.media->map_answer(true, held_answer);
    REQUIRE(trunk_answer);
    CHECK(trunk_answer->find("a=recvonly") != std::string::npos);
    CHECK(r.media->dtls_state() == DtlsSrtpEndpoint::State::Connected);  // same roles, same association
    r.at_trunk.clear();
    r.tick();
    CHECK(r.at_trunk.empty());
}

TEST_CASE("aiortc's and Firefox's offers are mapped; an offer without audio we can take is refused") {
    for (const char* file : {"sdp/aiortc_audio_offer.sdp", "sdp/firefox_audio_offer.sdp",
                             "sdp/firefox_audio_datachannel_offer.sdp", "sdp/firefox_audio_trickle_offer.sdp"}) {
        CAPTURE(file);
        Rig r;
        const auto trunk_offer = r.media->map_offer(true, read(file));
        REQUIRE(trunk_offer);
        const auto answer = r.media->map_answer(false, kTrunkAnswer);
        REQUIRE(answer);
        CHECK(attribute(*answer, "setup") == "passive");
        CHECK(r.media->browser_codec() == AudioCodec::Opus);
    }
    Rig r;
    auto video_only = read("sdp/chrome_audio_offer.sdp");
    replace(video_only, "m=audio", "m=video");
    CHECK_FALSE(r.media->map_offer(true, video_only));
    CHECK_FALSE(r.media->map_offer(true, "not sdp"));
    CHECK_FALSE(r.media->map_answer(false, kTrunkAnswer));  // nothing was offered
    CHECK(r.media->state() == CallMedia::State::Idle);
}

TEST_CASE("garbage on either leg, before and after negotiation, is dropped without output") {
    Rig r;
    std::vector<std::uint8_t> junk(200);
    auto spray = [&] {
        for (int first = 0; first < 256; ++first) {
            for (std::size_t len : {std::size_t{1}, std::size_t{13}, std::size_t{200}}) {
                for (std::size_t i = 0; i < len; ++i) junk[i] = static_cast<std::uint8_t>(first * 31 + i * 7);
                junk[0] = static_cast<std::uint8_t>(first);
                r.media->on_browser_datagram(r.now, kBrowserAddr, {junk.data(), len}, r.out);
                r.media->on_trunk_datagram(r.now, kTrunkAddr, {junk.data(), len}, r.out);
            }
        }
        for (std::size_t i = 0; i < r.out.size(); ++i) {
            // Only STUN-looking junk may get an error answer; nothing reaches the trunk.
            CHECK(r.out[i].leg == MediaLeg::Browser);
            CHECK(classify(r.out[i].bytes()) == PacketKind::Stun);
        }
        r.out.clear();
    };
    spray();
    CHECK(r.media->stats().stranger_trunk == 0);   // no SDP named the trunk yet: nobody is a stranger
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    r.connect();
    REQUIRE(r.media->state() == CallMedia::State::Connected);
    spray();
    CHECK(r.media->state() == CallMedia::State::Connected);
    CHECK(r.media->stats().dropped > 0);
}

TEST_CASE("RTP from a stranger to the trunk leg is dropped and counted; our audio stays with the trunk (issue 11)") {
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    r.connect();
    REQUIRE(r.media->state() == CallMedia::State::Connected);
    const Endpoint strangers[] = {*Endpoint::parse("203.0.113.9:40000"),   // another host
                                  *Endpoint::parse("192.0.2.50:40002")};   // the trunk's IP, after its first RTP
    for (std::size_t frame = 0; frame < 20; ++frame) {
        r.from_trunk(pcmu_packet(static_cast<std::uint16_t>(frame), 600, frame));
        for (const auto& s : strangers) {
            r.media->on_trunk_datagram(r.now, s, pcmu_packet(static_cast<std::uint16_t>(500 + frame), 440, frame), r.out);
            r.deliver();  // checks that everything for the trunk still goes to kTrunkAddr
        }
        r.tick();
    }
    CHECK(r.media->trunk_source() == kTrunkAddr);
    CHECK(r.at_trunk.size() == 20);
    CHECK(r.at_browser.size() == 20);  // the trunk's packets only
    const auto& s = r.media->stats();
    CHECK(s.stranger_trunk == 40);
    CHECK(s.trunk_in.packets == 20);   // a stranger's bytes are not the call's
    // RTCP from a stranger is not the trunk's either.
    std::vector<std::uint8_t> rr = {0x80, 201, 0, 1, 1, 2, 3, 4};
    r.media->on_trunk_datagram(r.now, strangers[0], rr, r.out);
    CHECK(r.media->stats().stranger_trunk == 41);
}

TEST_CASE("a stranger's RTP before the trunk's keeps no call alive and moves nothing (no learning from other IPs)") {
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    r.connect();
    const auto stranger = *Endpoint::parse("203.0.113.9:40000");
    for (std::size_t frame = 0; frame < 5; ++frame) {
        r.media->on_trunk_datagram(r.now, stranger, pcmu_packet(static_cast<std::uint16_t>(frame), 440, frame), r.out);
        r.deliver();
        r.tick();
    }
    CHECK(r.media->trunk_source() == kTrunkAddr);
    CHECK(r.at_browser.empty());
    CHECK(r.at_trunk.size() == 5);     // deliver() checked they all went to kTrunkAddr
    CHECK(r.media->stats().stranger_trunk == 5);
}

TEST_CASE("the first RTP from the SDP's IP may move the port (symmetric RTP, RFC 4961); later ports may not") {
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    r.connect();
    const auto natted = *Endpoint::parse("192.0.2.50:41000");
    // Not RTP of the call (garbage, RTCP, another payload type) latches nothing.
    std::vector<std::uint8_t> rr = {0x80, 201, 0, 1, 1, 2, 3, 4};
    r.media->on_trunk_datagram(r.now, natted, rr, r.out);
    auto other_pt = pcmu_packet(1, 600, 0);
    other_pt[1] = 96;
    r.media->on_trunk_datagram(r.now, natted, other_pt, r.out);
    CHECK(r.media->trunk_source() == kTrunkAddr);
    r.media->on_trunk_datagram(r.now, natted, pcmu_packet(2, 600, 1), r.out);
    CHECK(r.media->trunk_source() == natted);
    r.out.clear();
    r.media->on_trunk_datagram(r.now, *Endpoint::parse("192.0.2.50:41002"), pcmu_packet(3, 600, 2), r.out);
    r.media->on_trunk_datagram(r.now, kTrunkAddr, pcmu_packet(4, 600, 3), r.out);
    CHECK(r.media->trunk_source() == natted);
    CHECK(r.media->stats().stranger_trunk == 4);
    r.now += 20ms;
    r.media->on_tick(r.now, r.out);
    REQUIRE(r.out.size() >= 1);
    CHECK(r.out[r.out.size() - 1].leg == MediaLeg::Trunk);
    CHECK(r.out[r.out.size() - 1].to == natted);
    r.out.clear();
    // A re-INVITE naming a new address starts over from that address.
    auto moved = kTrunkAnswer;
    replace(moved, "m=audio 40000", "m=audio 40100");
    REQUIRE(r.media->map_offer(true, r.browser.offer(browser_cert->fingerprint_sha256())));
    REQUIRE(r.media->map_answer(false, moved));
    CHECK(r.media->trunk_source() == *Endpoint::parse("192.0.2.50:40100"));
    // The address it moved away from (a party transferred away still sending from the same
    // media server IP, issue 14) cannot take the latch back; another port of that IP still can.
    r.media->on_trunk_datagram(r.now, natted, pcmu_packet(5, 600, 4), r.out);
    CHECK(r.media->trunk_source() == *Endpoint::parse("192.0.2.50:40100"));
    r.media->on_trunk_datagram(r.now, *Endpoint::parse("192.0.2.50:41200"), pcmu_packet(6, 600, 5), r.out);
    CHECK(r.media->trunk_source() == *Endpoint::parse("192.0.2.50:41200"));
}

TEST_CASE("browser leg: DTLS and SRTP only from the ICE-selected pair; strangers get nothing back (issue 11)") {
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    const auto stranger = *Endpoint::parse("203.0.113.9:50000");
    // A DTLS record before any authenticated check, even from the browser's own address.
    std::vector<std::uint8_t> hello = {22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    r.media->on_browser_datagram(r.now, kBrowserAddr, hello, r.out);
    CHECK(r.out.empty());
    CHECK(r.media->stats().stranger_browser == 1);
    // A check with the wrong password from a stranger: no answer.
    r.media->on_browser_datagram(r.now, stranger, r.browser.check({r.gw_ice.ufrag, "wrongPasswordWrongPass00"}, false), r.out);
    CHECK(r.out.empty());
    CHECK(r.media->stats().stranger_browser == 2);
    r.connect();
    REQUIRE(r.media->state() == CallMedia::State::Connected);
    const auto in_before = r.media->stats().browser_in.packets;
    // The browser's own SRTP, replayed from elsewhere, is dropped unread: the real one still counts.
    for (int i = 0; i < 5; ++i) {
        const auto opus = r.browser.opus_packet();
        r.media->on_browser_datagram(r.now, stranger, opus, r.out);
        CHECK(r.out.empty());
        r.from_browser(opus);
    }
    r.media->on_browser_datagram(r.now, stranger, hello, r.out);
    CHECK(r.out.empty());
    const auto& s = r.media->stats();
    CHECK(s.stranger_browser == 8);
    CHECK(s.browser_in.packets == in_before + 5);
    CHECK(s.dropped == 0);  // none of the browser's packets was taken for a replay
}

TEST_CASE("trunk DTMF reaches the browser on its 48 kHz telephone-event, in step with the audio") {
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    r.connect();
    for (std::size_t frame = 0; frame < 3; ++frame) r.from_trunk(pcmu_packet(static_cast<std::uint16_t>(frame), 600, frame));
    // The event starts at the 4th frame's timestamp (90000 + 3 * 160) and lasts 60 ms at 8000 Hz.
    const std::uint16_t durations[] = {160, 320, 480, 480};
    for (int i = 0; i < 4; ++i) {
        std::vector<std::uint8_t> p(kRtpHeaderSize + 4);
        write_rtp_header({i == 0, 101, static_cast<std::uint16_t>(3 + i), 90000 + 3 * 160, kTrunkSsrc}, p);
        write_telephone_event({11, i >= 2, 10, durations[i]}, std::span(p).subspan(kRtpHeaderSize));
        r.from_trunk(p);
    }
    REQUIRE(r.at_browser.size() == 7);
    const auto first_audio = RtpPacket::parse(r.at_browser[0])->header;
    const std::uint16_t expected[] = {960, 1920, 2880, 2880};
    for (int i = 0; i < 4; ++i) {
        CAPTURE(i);
        const auto p = RtpPacket::parse(r.at_browser[3 + static_cast<std::size_t>(i)]);
        REQUIRE(p);
        CHECK(p->header.payload_type == 110);
        CHECK(p->header.ssrc == first_audio.ssrc);
        CHECK(p->header.marker == (i == 0));
        CHECK(p->header.timestamp == first_audio.timestamp + 3 * kOpusFrameTicks);
        const auto ev = parse_telephone_event(p->payload);
        REQUIRE(ev);
        CHECK(ev->event == 11);
        CHECK(ev->duration == expected[i]);
        CHECK(ev->end == (i >= 2));
    }
    CHECK(r.media->stats().dtmf_to_browser == 4);
}

TEST_CASE("a lost DTLS flight is sent again at next_wakeup(); ICE consent lapses after 30 s") {
    DtlsOptions o;
    o.initial_retransmit = 20ms;
    Rig r(o);
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    r.from_browser(r.browser.check(r.gw_ice, true));
    r.browser.dtls->start(r.now, r.browser_dtls_out);
    REQUIRE(r.browser_dtls_out.size() == 1);
    r.media->on_browser_datagram(r.now, kBrowserAddr, r.browser_dtls_out[0], r.out);  // ClientHello
    r.browser_dtls_out.clear();
    REQUIRE_FALSE(r.out.empty());
    r.out.clear();  // the gateway's ServerHello flight is lost
    const auto at = r.media->next_wakeup();
    REQUIRE(at);
    CHECK(*at <= r.now + 20ms);
    auto dtls_sent = [&] {
        int n = 0;
        for (std::size_t i = 0; i < r.out.size(); ++i)
            if (r.out[i].leg == MediaLeg::Browser && classify(r.out[i].bytes()) == PacketKind::Dtls) ++n;
        return n;
    };
    r.media->on_tick(r.now, r.out);
    CHECK(dtls_sent() == 0);  // not due yet
    r.out.clear();
    std::this_thread::sleep_for(30ms);  // OpenSSL times retransmissions on its own clock
    r.now = *at;
    r.media->on_tick(r.now, r.out);
    CHECK(dtls_sent() > 0);
    r.deliver();
    for (int round = 0; round < 20 && !r.browser_dtls_out.empty(); ++round) {
        auto flight = std::move(r.browser_dtls_out);
        r.browser_dtls_out.clear();
        for (const auto& d : flight) r.from_browser(d);
    }
    REQUIRE(r.media->state() == CallMedia::State::Connected);
    CHECK_FALSE(r.media->next_wakeup());

    r.now += 29s;
    r.tick();
    CHECK(r.media->state() == CallMedia::State::Connected);
    r.from_browser(r.browser.check(r.gw_ice, false));  // consent refreshed
    r.now += 29s;
    r.tick();
    CHECK(r.media->state() == CallMedia::State::Connected);
    r.now += 2s;
    r.tick();
    CHECK(r.media->state() == CallMedia::State::Failed);
    CHECK(r.media->failure().find("consent") != std::string::npos);
}

TEST_CASE("a trunk that stops sending RTP for 60 s fails the media; a held trunk may stay silent") {
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    r.from_trunk(pcmu_packet(1, 440, 0));
    for (int i = 0; i < 2900; ++i) r.tick();   // 58 s of silence
    CHECK_FALSE(r.media->ended());
    r.from_trunk(pcmu_packet(2, 440, 1));      // it speaks again: the clock restarts
    for (int i = 0; i < 2900; ++i) r.tick();
    CHECK_FALSE(r.media->ended());
    for (int i = 0; i < 200; ++i) r.tick();    // past 60 s
    CHECK(r.media->state() == CallMedia::State::Failed);
    CHECK(r.media->failure() == "no RTP from the trunk for 60 s");

    // Hold toward the trunk (we send only): its silence is expected.
    Rig held;
    held.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    held.from_trunk(pcmu_packet(1, 440, 0));
    REQUIRE(held.media->map_offer(true, held.browser.offer(browser_cert->fingerprint_sha256(), "sendonly")));
    REQUIRE(held.media->map_answer(false, std::string(kTrunkAnswer).replace(kTrunkAnswer.find("a=sendrecv"), 10, "a=recvonly")));
    for (int i = 0; i < 3500; ++i) held.tick();
    CHECK_FALSE(held.media->ended());
}

TEST_CASE("an inbound late offer: the browser is offered our session, its answer becomes G.711 + telephone-event for the trunk (RFC 3261 §13.2.1)") {
    Rig r;
    CHECK_FALSE(r.media->map_offer(false, "v=0\r\n"));   // broken SDP is no late offer
    const auto offer = r.media->map_offer(false, "");
    REQUIRE(offer);
    CHECK(attribute(*offer, "setup") == "actpass");
    const auto trunk_offer = r.media->map_answer(true, pcmu_browser_answer(r.browser));
    REQUIRE(trunk_offer);
    CHECK(trunk_offer->find("m=audio 22002 RTP/AVP 0 8 101\r\n") != std::string::npos);
    CHECK(trunk_offer->find("a=rtpmap:101 telephone-event/8000") != std::string::npos);
    CHECK(trunk_offer->find("a=sendrecv") != std::string::npos);
    CHECK(r.media->take_answer(false, kTrunkAnswer));   // the trunk's answer, from its ACK
    CHECK(r.media->trunk_source() == kTrunkAddr);
    CHECK(r.media->codec_names() == "PCMU/PCMU");
}

TEST_CASE("an outbound late offer: the trunk's offer in its 200 is answered in the ACK, the browser's offer answered too") {
    Rig r;
    REQUIRE(r.media->map_offer(true, r.browser.offer(browser_cert->fingerprint_sha256())));
    const auto both = r.media->answer_late_offer(kTrunkAnswer);
    REQUIRE(both);
    CHECK(both->to_trunk.find("m=audio 22002 RTP/AVP 0 101\r\n") != std::string::npos);
    CHECK(attribute(both->to_browser, "setup") == "passive");
    CHECK(r.media->trunk_source() == kTrunkAddr);
    CHECK_FALSE(r.media->answer_late_offer(kTrunkAnswer));   // nothing pending any more
}

TEST_CASE("Firefox's real offers: G.711 toward the trunk, opus/109 toward Firefox; ICE, DTLS and tones cross") {
    for (const char* file : {"sdp/firefox_audio_offer.sdp", "sdp/firefox_audio_datachannel_offer.sdp",
                             "sdp/firefox_audio_trickle_offer.sdp"}) {
        CAPTURE(file);
        Rig r;
        const auto trunk_offer = r.media->map_offer(true, firefox_offer(file, r.browser, browser_cert->fingerprint_sha256()));
        REQUIRE(trunk_offer);
        CHECK(trunk_offer->find("m=audio 22002 RTP/AVP 0 8 101\r\n") != std::string::npos);
        for (const char* leak : {"extmap", "ssrc", "rtcp-fb", "fingerprint", "ice-", "opus", "mozilla", "SCTP"})
            CHECK(trunk_offer->find(leak) == std::string::npos);
        const auto answer = r.media->map_answer(false, kTrunkAnswer);
        REQUIRE(answer);
        CHECK(answer->find("a=ice-lite") != std::string::npos);
        CHECK(attribute(*answer, "setup") == "passive");
        CHECK(attribute(*answer, "fingerprint") == "sha-256 " + gateway_cert->fingerprint_sha256());
        // Firefox offers telephone-event only at 8000 Hz; next to opus we answer that one.
        CHECK(answer->find("m=audio 22000 UDP/TLS/RTP/SAVPF 109 101\r\n") != std::string::npos);
        CHECK(answer->find("a=rtpmap:101 telephone-event/8000\r\n") != std::string::npos);
        CHECK(answer->find("a=rtpmap:109 opus/48000/2\r\n") != std::string::npos);
        CHECK(r.media->codec_names() == "opus/PCMU");
        r.gw_ice = {attribute(*answer, "ice-ufrag"), attribute(*answer, "ice-pwd")};
        r.browser.dtls = std::make_unique<DtlsSrtpEndpoint>(browser_cert, DtlsRole::Client, "sha-256",
                                                            gateway_cert->fingerprint_sha256());
        r.connect();
        REQUIRE(r.media->ice_selected() == kBrowserAddr);
        REQUIRE(r.browser.dtls->state() == DtlsSrtpEndpoint::State::Connected);
        REQUIRE(r.media->state() == CallMedia::State::Connected);

        // 1 s both ways: a 1 kHz tone as Opus on Firefox's PT 109, 600 Hz PCMU from the trunk.
        std::vector<std::uint8_t> enc(kMaxOpusPacket);
        for (std::size_t frame = 0; frame < 50; ++frame) {
            const auto pcm = sine(1000, 48000, 960, 8000, frame * 960);
            const int n = opus_encode(r.browser.enc, pcm.data(), 960, enc.data(), static_cast<opus_int32>(enc.size()));
            REQUIRE(n > 0);
            r.from_browser(r.browser.protect({false, 109, static_cast<std::uint16_t>(100 + frame),
                                              static_cast<std::uint32_t>(frame * 960), kBrowserSsrc},
                                             {enc.data(), static_cast<std::size_t>(n)}));
            r.from_trunk(pcmu_packet(static_cast<std::uint16_t>(7000 + frame), 600, frame));
            r.tick();
        }
        REQUIRE(r.at_trunk.size() == 50);
        std::vector<double> heard_at_trunk;
        for (const auto& b : r.at_trunk) {
            const auto p = RtpPacket::parse(b);
            REQUIRE(p);
            CHECK(p->header.payload_type == 0);
            for (auto c : p->payload) heard_at_trunk.push_back(ulaw_to_linear(c));
        }
        const std::vector<double> steady_trunk(heard_at_trunk.begin() + 25 * kFrameSamples, heard_at_trunk.end());
        CHECK(std::abs(dominant_frequency(steady_trunk, 8000) - 1000) <= 20);
        REQUIRE(r.at_browser.size() == 50);
        CHECK(RtpPacket::parse(r.at_browser.front())->header.payload_type == 109);
        const auto pcm = opus_decode_all(r.browser.dec, r.at_browser, 109);
        REQUIRE(pcm.size() == 50u * 960);
        const std::vector<double> steady_browser(pcm.begin() + 25 * 960, pcm.end());
        CHECK(std::abs(dominant_frequency(steady_browser, 48000, 3000) - 600) <= 12);

        // DTMF from Firefox: telephone-event/8000 beside opus; durations stay in 8 kHz units.
        r.at_trunk.clear();
        const std::uint16_t durations[] = {160, 320, 320, 320};
        for (int i = 0; i < 4; ++i) {
            std::uint8_t ev[4];
            write_telephone_event({9, i >= 1, 10, durations[i]}, ev);
            r.from_browser(r.browser.protect({i == 0, 101, static_cast<std::uint16_t>(200 + i), 50 * 960, kBrowserSsrc}, ev));
            r.tick();
        }
        std::vector<std::uint16_t> at_trunk;
        for (const auto& b : r.at_trunk)
            if (const auto p = RtpPacket::parse(b); p && p->header.payload_type == 101)
                if (const auto e = parse_telephone_event(p->payload); e && e->event == 9) at_trunk.push_back(e->duration);
        CHECK(at_trunk == std::vector<std::uint16_t>{160, 320, 320, 320});
    }
}

TEST_CASE("trunk re-offers: same version, a new port or codec answered here; hold relayed (RFC 3264 §8, issue 13)") {
    using Kind = sip::MediaSdp::LocalAnswer::Kind;
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    // A refresh: the trunk's own SDP again, same o= version.
    const auto same = r.media->answer_locally(false, kTrunkAnswer, false);
    REQUIRE(same.kind == Kind::Answered);
    CHECK(same.sdp.find("m=audio 22002 RTP/AVP 0 101\r\n") != std::string::npos);
    CHECK(same.sdp.find("a=sendrecv") != std::string::npos);
    const auto again = r.media->answer_locally(false, kTrunkAnswer, false);
    CHECK(again.sdp == same.sdp);   // nothing changed: the same SDP, the same version
    // A new media port (another media server): followed without the browser.
    auto moved = kTrunkAnswer;
    replace(moved, "o=trunk 1 1", "o=trunk 1 2");
    replace(moved, "m=audio 40000", "m=audio 40010");
    const auto m = r.media->answer_locally(false, moved, false);
    REQUIRE(m.kind == Kind::Answered);
    CHECK(r.media->trunk_source() == *Endpoint::parse("192.0.2.50:40010"));
    CHECK(m.sdp == same.sdp);   // our side did not change
    CHECK(attribute(m.sdp, "ptime") == "20");
    // A codec change (PCMA only): the pipeline follows.
    auto pcma = kTrunkAnswer;
    replace(pcma, "o=trunk 1 1", "o=trunk 1 3");
    replace(pcma, "RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000", "RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000");
    REQUIRE(r.media->answer_locally(false, pcma, false).kind == Kind::Answered);
    CHECK(r.media->trunk_codec() == TrunkCodec::Pcma);
    // Hold is for the browser to hear of; an UPDATE (force) is answered here, mirrored.
    auto hold = kTrunkAnswer;
    replace(hold, "o=trunk 1 1", "o=trunk 1 4");
    replace(hold, "a=sendrecv", "a=sendonly");
    CHECK(r.media->answer_locally(false, hold, false).kind == Kind::Relay);
    const auto forced = r.media->answer_locally(false, hold, true);
    REQUIRE(forced.kind == Kind::Answered);
    CHECK(forced.sdp.find("a=recvonly") != std::string::npos);
    auto inactive = hold;
    replace(inactive, "a=sendonly", "a=inactive");
    CHECK(r.media->answer_locally(false, inactive, true).sdp.find("a=inactive") != std::string::npos);
    CHECK(r.media->answer_locally(false, "v=0\r\ngarbage", false).kind == Kind::Refused);
}

TEST_CASE("an SDP-less re-INVITE gets our current session as the offer; the ACK's answer is applied (RFC 3261 §14.2)") {
    Rig r;
    const auto first = r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    const auto offer = r.media->current_offer(false);
    REQUIRE(offer);
    CHECK(offer->find("m=audio 22002 RTP/AVP 0 8 101\r\n") != std::string::npos);   // the running codec first
    CHECK(offer->find("a=sendrecv") != std::string::npos);
    CHECK_FALSE(r.media->current_offer(true));   // the browser leg is never asked for one
    auto moved = kTrunkAnswer;
    replace(moved, "m=audio 40000", "m=audio 40020");
    CHECK(r.media->take_answer(false, moved));
    CHECK(r.media->trunk_source() == *Endpoint::parse("192.0.2.50:40020"));
    CHECK_FALSE(r.media->take_answer(false, "garbage"));
    CHECK(*r.media->current_offer(false) == *offer);   // unchanged: the same version again
}

TEST_CASE("a browser re-offer without a change of direction (JsSIP's refresh) is answered here; its hold is relayed") {
    using Kind = sip::MediaSdp::LocalAnswer::Kind;
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    r.connect();
    const auto refresh = r.media->answer_locally(true, r.browser.offer(browser_cert->fingerprint_sha256()), false);
    REQUIRE(refresh.kind == Kind::Answered);
    CHECK(attribute(refresh.sdp, "setup") == "passive");   // the running DTLS roles stay
    CHECK(r.media->dtls_state() == DtlsSrtpEndpoint::State::Connected);
    CHECK(r.media->answer_locally(true, r.browser.offer(browser_cert->fingerprint_sha256(), "sendonly"), false).kind ==
          Kind::Relay);
}

// --- issue 14: G.722 toward the trunk, DTMF from carriers without markers or without events ----

namespace {

const std::string kG722Answer =
    "v=0\r\no=trunk 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 9 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

const std::string kNoEventsAnswer =
    "v=0\r\no=trunk 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n";

std::vector<std::uint8_t> rtp(const RtpHeader& h, std::span<const std::uint8_t> payload) {
    std::vector<std::uint8_t> p(kRtpHeaderSize + payload.size());
    write_rtp_header(h, p);
    std::copy(payload.begin(), payload.end(), p.begin() + kRtpHeaderSize);
    return p;
}

// The telephone-event packets (PT 110, 48 kHz) the browser got.
std::vector<RtpPacket> browser_events(const Rig& r) {
    std::vector<RtpPacket> ev;
    for (const auto& b : r.at_browser)
        if (auto p = RtpPacket::parse(b); p && p->header.payload_type == 110) ev.push_back(*p);
    return ev;
}

}  // namespace

TEST_CASE("G.722 allowed: offered first as G722/8000 (RFC 3551 §4.5.2); a G.722-only trunk gets wideband both ways") {
    Rig r({}, true);
    const auto trunk_offer = r.negotiate(browser_cert->fingerprint_sha256(), browser_cert, kG722Answer);
    CHECK(trunk_offer.find("m=audio 22002 RTP/AVP 9 0 8 101\r\n") != std::string::npos);
    CHECK(trunk_offer.find("a=rtpmap:9 G722/8000\r\n") != std::string::npos);
    CHECK(r.media->codec_names() == "opus/G722");
    CHECK(r.media->trunk_codec() == TrunkCodec::G722);
    r.connect();
    REQUIRE(r.media->state() == CallMedia::State::Connected);

    // The trunk sends 5 kHz (beyond G.711's band) in G.722; the browser sends 1 kHz in Opus.
    G722Encoder trunk_enc(true);
    G722Decoder trunk_dec(true);
    std::array<std::uint8_t, kTrunkFrameBytes> frame{};
    for (std::size_t f = 0; f < 100; ++f) {
        r.from_browser(r.browser.opus_packet());
        REQUIRE(trunk_enc.encode(sine(5000, 16000, kWideFrameSamples, 8000, f * kWideFrameSamples), frame));
        r.from_trunk(rtp({false, 9, static_cast<std::uint16_t>(f), static_cast<std::uint32_t>(1000 + f * 160), kTrunkSsrc}, frame));
        r.tick();
    }
    // Browser -> trunk: PT 9, 160 bytes and 160 ticks per 20 ms; decoded at 16 kHz it is 1 kHz.
    REQUIRE(r.at_trunk.size() == 100);
    std::vector<double> heard;
    std::array<std::int16_t, kWideFrameSamples> pcm{};
    for (std::size_t i = 0; i < r.at_trunk.size(); ++i) {
        const auto p = RtpPacket::parse(r.at_trunk[i]);
        REQUIRE(p);
        CHECK(p->header.payload_type == 9);
        REQUIRE(p->payload.size() == kTrunkFrameBytes);
        if (i > 0) CHECK(p->header.timestamp == RtpPacket::parse(r.at_trunk[i - 1])->header.timestamp + 160);
        REQUIRE(trunk_dec.decode(p->payload.first<kTrunkFrameBytes>(), pcm) == kWideFrameSamples);
        if (i >= 50) heard.insert(heard.end(), pcm.begin(), pcm.end());
    }
    CHECK(std::abs(dominant_frequency(heard, 16000) - 1000) <= 20);
    // Trunk -> browser: Opus at +960 per frame, which a 48 kHz decoder hears at 5 kHz.
    REQUIRE(r.at_browser.size() == 100);
    const auto first = RtpPacket::parse(r.at_browser.front())->header;
    const auto last = RtpPacket::parse(r.at_browser.back())->header;
    CHECK(last.timestamp - first.timestamp == 99u * kOpusFrameTicks);
    const auto pcm48 = opus_decode_all(r.browser.dec, r.at_browser, 111);
    const std::vector<double> steady(pcm48.begin() + 50 * 960, pcm48.end());
    CHECK(std::abs(dominant_frequency(steady, 48000, 8000) - 5000) <= 100);
}

TEST_CASE("G.722 and the trunk's choice: taken when allowed and offered, never when not allowed") {
    {
        Rig off;  // the default: G.711 only, offers unchanged
        const auto offer = off.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
        CHECK(offer.find("m=audio 22002 RTP/AVP 0 8 101\r\n") != std::string::npos);
        CHECK(offer.find("G722") == std::string::npos);
    }
    {
        Rig off;  // a trunk answering with G.722 we never offered is refused
        REQUIRE(off.media->map_offer(true, off.browser.offer(browser_cert->fingerprint_sha256())));
        CHECK_FALSE(off.media->map_answer(false, kG722Answer));
    }
    // Inbound: what the trunk leg answers for each trunk offer, browser answer and setting.
    struct Row { const char* name; const char* trunk_formats; bool allowed; const char* browser_codec; const char* answer_m; const char* names; };
    const Row rows[] = {
        {"both offered, allowed, Opus browser", "0 9 101", true, "111 opus/48000/2", "RTP/AVP 9 101", "opus/G722"},
        {"both offered, not allowed", "0 9 101", false, "111 opus/48000/2", "RTP/AVP 0 101", "opus/PCMU"},
        {"both offered, PCMU browser: passthrough wins", "0 9 101", true, "0 PCMU/8000", "RTP/AVP 0 101", "PCMU/PCMU"},
        {"G.722 only, PCMU browser: narrowband G.722", "9 101", true, "0 PCMU/8000", "RTP/AVP 9 101", "PCMU/G722"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        Rig r({}, row.allowed);
        const std::string trunk_offer =
            std::string("v=0\r\no=trunk 9 9 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n") +
            "m=audio 40000 RTP/AVP " + row.trunk_formats + "\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:9 G722/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n";
        REQUIRE(r.media->map_offer(false, trunk_offer));
        const std::string codec = row.browser_codec;
        const std::string pt = codec.substr(0, codec.find(' '));
        const std::string browser_answer =
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF " + pt + "\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
            "a=ice-ufrag:" + r.browser.ice.ufrag + "\r\na=ice-pwd:" + r.browser.ice.pwd + "\r\n"
            "a=fingerprint:sha-256 " + browser_cert->fingerprint_sha256() + "\r\n"
            "a=setup:passive\r\na=rtcp-mux\r\na=sendrecv\r\na=rtpmap:" + codec + "\r\n";
        const auto answer = r.media->map_answer(true, browser_answer);
        REQUIRE(answer);
        CHECK(answer->find(std::string("m=audio 22002 ") + row.answer_m + "\r\n") != std::string::npos);
        CHECK(r.media->codec_names() == row.names);
    }
}

TEST_CASE("trunk events without the marker bit still reach the browser, each new timestamp a new event (RFC 4733 §2.5.1.3)") {
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    r.connect();
    r.from_trunk(pcmu_packet(0, 600, 0));
    // Two digits, no marker on any packet (some carriers never set it), the end sent three times.
    std::uint16_t seq = 1;
    for (std::uint32_t start : {90000u + 160, 90000u + 1600}) {
        const std::uint8_t digit = start == 90160 ? 3 : 7;
        const std::uint16_t durations[] = {160, 320, 480, 480, 480};
        for (int i = 0; i < 5; ++i) {
            std::array<std::uint8_t, kTelephoneEventSize> ev{};
            write_telephone_event({digit, i >= 2, 10, durations[i]}, ev);
            r.from_trunk(rtp({false, 101, seq++, start, kTrunkSsrc}, ev));
        }
    }
    const auto ev = browser_events(r);
    REQUIRE(ev.size() == 10);
    for (std::size_t i = 0; i < ev.size(); ++i) {
        CAPTURE(i);
        CHECK(ev[i].header.marker == (i % 5 == 0));  // the first packet of each event gets one
        CHECK(parse_telephone_event(ev[i].payload)->event == (i < 5 ? 3 : 7));
    }
    CHECK(ev[0].header.timestamp != ev[5].header.timestamp);
    CHECK(r.media->stats().dtmf_to_browser == 10);
}

TEST_CASE("a trunk without telephone-event: its in-band DTMF tones reach the browser as RFC 4733 events") {
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert, kNoEventsAnswer);
    r.connect();
    // 100 ms of "5" (770 + 1336 Hz) then 100 ms of "#" (941 + 1477 Hz), 100 ms apart, in PCMU.
    std::vector<std::int16_t> audio(800, 0);
    for (auto [lo, hi] : {std::pair{770.0, 1336.0}, std::pair{941.0, 1477.0}}) {
        const auto a = sine(lo, 8000, 800, 7000), b = sine(hi, 8000, 800, 7000);
        for (std::size_t i = 0; i < a.size(); ++i) audio.push_back(static_cast<std::int16_t>(a[i] + b[i]));
        audio.insert(audio.end(), 800, 0);
    }
    for (std::size_t f = 0; f * kFrameSamples < audio.size(); ++f) {
        std::array<std::uint8_t, kFrameSamples> g711{};
        g711_encode(G711Law::Pcmu, std::span(audio).subspan(f * kFrameSamples, kFrameSamples), g711);
        r.from_trunk(rtp({false, 0, static_cast<std::uint16_t>(f), static_cast<std::uint32_t>(90000 + f * 160), kTrunkSsrc}, g711));
    }
    const auto ev = browser_events(r);
    REQUIRE(ev.size() >= 8);
    std::vector<std::uint8_t> digits;
    int ends = 0;
    for (const auto& p : ev) {
        const auto e = parse_telephone_event(p.payload);
        REQUIRE(e);
        if (p.header.marker) digits.push_back(e->event);
        ends += e->end ? 1 : 0;
        if (e->end) CHECK(e->duration >= 6 * 640);  // ~100 ms at 48 kHz
    }
    CHECK(digits == std::vector<std::uint8_t>{5, 11});
    CHECK(ends == 6);
    // The audio still goes through as well (the tones themselves).
    CHECK(r.at_browser.size() - ev.size() == audio.size() / kFrameSamples);
}

TEST_CASE("a trunk with telephone-event gets no in-band detection: its tones stay audio only") {
    Rig r;
    r.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    r.connect();
    for (std::size_t f = 0; f < 20; ++f) {
        auto a = sine(770, 8000, kFrameSamples, 7000, f * kFrameSamples);
        const auto b = sine(1336, 8000, kFrameSamples, 7000, f * kFrameSamples);
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::int16_t>(a[i] + b[i]);
        std::array<std::uint8_t, kFrameSamples> g711{};
        g711_encode(G711Law::Pcmu, a, g711);
        r.from_trunk(rtp({false, 0, static_cast<std::uint16_t>(f), static_cast<std::uint32_t>(90000 + f * 160), kTrunkSsrc}, g711));
    }
    CHECK(browser_events(r).empty());
    CHECK(r.at_browser.size() == 20);
}

// Rig's media again, with SDES-SRTP toward the trunk.
CallMediaConfig srtp_config(SrtpMode mode) {
    CallMediaConfig c;
    c.certificate = gateway_cert;
    c.browser_address = kOurBrowserLeg;
    c.trunk_address = kOurTrunkLeg;
    c.random = counter_rng();
    c.trunk_srtp = mode;
    return c;
}

TEST_CASE("SDES-SRTP on the trunk leg (RFC 4568, issue 14): SRTP both ways with the SDP's keys; clear RTP is dropped") {
    Rig r;
    r.media.emplace(srtp_config(SrtpMode::Required));
    SdesCrypto theirs;
    random_bytes(theirs.key_salt);   // tag 1, AES_CM_128_HMAC_SHA1_80: the first line of our offer
    std::string answer = kTrunkAnswer;
    replace(answer, "RTP/AVP", "RTP/SAVP");
    answer += "a=crypto:" + format_crypto(theirs) + "\r\n";
    const auto offer = r.negotiate(browser_cert->fingerprint_sha256(), browser_cert, answer);
    CHECK(offer.find("m=audio 22002 RTP/SAVP 0 8 101\r\n") != std::string::npos);
    const auto parsed_offer = parse_sdp(offer);
    REQUIRE(parsed_offer);
    REQUIRE(parsed_offer->media[0].crypto.size() == 2);
    const auto ours = parse_crypto(parsed_offer->media[0].crypto[0]);
    REQUIRE(ours);
    CHECK(r.media->trunk_srtp() == SdesSuite::AesCm128HmacSha1_80);
    auto trunk = SrtpSession::create(srtp_keys(SdesChoice{*ours, theirs}));   // the trunk's side
    REQUIRE(trunk);
    r.connect();
    for (std::size_t frame = 0; frame < 50; ++frame) {
        r.from_browser(r.browser.opus_packet());
        auto p = pcmu_packet(static_cast<std::uint16_t>(7000 + frame), 600, frame);
        p.resize(p.size() + kSrtpMaxTrailer);
        const auto n = trunk->protect_rtp(p, p.size() - kSrtpMaxTrailer);
        REQUIRE(n);
        p.resize(*n);
        r.from_trunk(p);
        r.tick();
    }
    CHECK(r.at_browser.size() >= 45);   // the trunk's SRTP was authenticated and decrypted
    REQUIRE(r.at_trunk.size() == 50);
    for (auto b : r.at_trunk) {
        REQUIRE(b.size() == kRtpHeaderSize + kFrameSamples + 10);   // RFC 3711 §4.2: 80-bit tag
        const auto n = trunk->unprotect_rtp(b, b.size());
        REQUIRE(n);
        CHECK(*n == kRtpHeaderSize + kFrameSamples);
    }
    // Clear RTP (or SRTP with another key) from the trunk's address is dropped, not played.
    const auto heard = r.at_browser.size();
    const auto dropped = r.media->stats().dropped;
    r.from_trunk(pcmu_packet(7100, 600, 100));
    CHECK(r.at_browser.size() == heard);
    CHECK(r.media->stats().dropped == dropped + 1);
}

TEST_CASE("srtp = required: a trunk answer without a=crypto fails the call with the reason; optional falls back to RTP") {
    for (auto mode : {SrtpMode::Required, SrtpMode::Optional}) {
        CAPTURE(to_string(mode));
        Rig r;
        r.media.emplace(srtp_config(mode));
        const auto offer = r.media->map_offer(true, r.browser.offer(browser_cert->fingerprint_sha256()));
        REQUIRE(offer);
        CHECK(offer->find(mode == SrtpMode::Required ? "RTP/SAVP" : "m=audio 22002 RTP/AVP") != std::string::npos);
        CHECK(offer->find("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") != std::string::npos);
        const auto answer = r.media->map_answer(false, kTrunkAnswer);
        if (mode == SrtpMode::Required) {
            CHECK_FALSE(answer);
            CHECK(r.media->state() == CallMedia::State::Failed);
            CHECK(r.media->failure() == "SRTP: no a=crypto in the answer (srtp = required)");
            // Inbound: an offer without keys is refused (488) with the same kind of reason...
            Rig in;
            in.media.emplace(srtp_config(mode));
            CHECK_FALSE(in.media->map_offer(false, kTrunkAnswer));
            CHECK(in.media->failure() == "SRTP: no a=crypto in the offer (srtp = required)");
            // ...and after an inbound late offer (ours in the 200: RTP/SAVP), an ACK without keys.
            Rig late;
            late.media.emplace(srtp_config(mode));
            REQUIRE(late.media->map_offer(false, ""));
            const auto ours = late.media->map_answer(true, pcmu_browser_answer(late.browser));
            REQUIRE(ours);
            CHECK(ours->find("m=audio 22002 RTP/SAVP 0 8 101\r\n") != std::string::npos);
            CHECK_FALSE(late.media->take_answer(false, kTrunkAnswer));
            CHECK(late.media->failure() == "SRTP: no a=crypto in the answer (srtp = required)");
        } else {
            CHECK(answer);
            CHECK_FALSE(r.media->trunk_srtp());
            CHECK_FALSE(r.media->ended());
        }
    }
}

TEST_CASE("attended transfer (issue 14): two calls' trunk legs joined; each party's audio leaves the other's trunk leg; the browser legs are ignored; either side may go first") {
    Rig a, b;
    Rig lone;
    CHECK_FALSE(a.media->join_trunk(*lone.media));   // no trunk session yet on either
    a.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    b.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    a.connect();
    b.connect();
    CHECK_FALSE(a.media->join_trunk(*a.media));      // not with itself
    CHECK_FALSE(a.media->join_trunk(*lone.media));   // the other has no trunk session
    REQUIRE(a.media->join_trunk(*b.media));
    CHECK(a.media->joined());
    CHECK(b.media->joined());
    CHECK_FALSE(a.media->join_trunk(*b.media));      // once
    a.at_browser.clear();
    b.at_trunk.clear();
    // Party A speaks 600 Hz: it leaves B's trunk leg, one frame per tick of B; A's browser hears nothing.
    for (std::size_t frame = 0; frame < 50; ++frame) {
        a.from_trunk(pcmu_packet(static_cast<std::uint16_t>(frame), 600, frame));
        b.tick();
        a.tick();
        a.from_browser(a.browser.check(a.gw_ice, true));   // the old browser: ignored
    }
    CHECK(a.at_browser.empty());
    CHECK(b.at_trunk.size() == 50);
    std::vector<double> heard;
    for (const auto& p : b.at_trunk) {
        std::array<std::int16_t, kFrameSamples> pcm{};
        g711_decode(G711Law::Pcmu, std::span(p).subspan(kRtpHeaderSize, kFrameSamples), pcm);
        heard.insert(heard.end(), pcm.begin(), pcm.end());
    }
    CHECK(dominant_frequency(heard, 8000) == doctest::Approx(600).epsilon(0.02));
    CHECK(a.at_trunk.size() == 50);   // A's party hears B's (silent) party: the stream goes on
    // B's call ends first: A goes on alone with silence, and nothing points at B any more.
    b.media.reset();
    a.at_trunk.clear();
    for (std::size_t frame = 50; frame < 55; ++frame) {
        a.from_trunk(pcmu_packet(static_cast<std::uint16_t>(frame), 600, frame));
        a.tick();
    }
    CHECK(a.at_trunk.size() == 5);
    CHECK(a.media->state() == CallMedia::State::Connected);
}

TEST_CASE("attended transfer (issue 14): a joined party's RFC 4733 digits reach the other party on its own stream and payload type") {
    Rig a, b;
    a.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    b.negotiate(browser_cert->fingerprint_sha256(), browser_cert);
    a.connect();
    b.connect();
    REQUIRE(a.media->join_trunk(*b.media));
    b.at_trunk.clear();
    for (std::size_t frame = 0; frame < 3; ++frame) {   // some audio first: B's stream is running
        a.from_trunk(pcmu_packet(static_cast<std::uint16_t>(frame), 600, frame));
        b.tick();
    }
    // Party A keys 7: 60 ms at 8000 Hz, the end packet three times (RFC 4733 §2.5.1.4).
    const std::uint16_t durations[] = {160, 320, 480, 480, 480};
    for (int i = 0; i < 5; ++i) {
        std::vector<std::uint8_t> p(kRtpHeaderSize + 4);
        write_rtp_header({i == 0, 101, static_cast<std::uint16_t>(3 + i), 777000, kTrunkSsrc}, p);
        write_telephone_event({7, i >= 2, 10, durations[i]}, std::span(p).subspan(kRtpHeaderSize));
        a.from_trunk(p);
        b.tick();
    }
    const auto audio = RtpPacket::parse(b.at_trunk[0]);
    REQUIRE(audio);
    std::vector<std::pair<RtpHeader, TelephoneEvent>> events;
    for (const auto& raw : b.at_trunk) {
        const auto p = RtpPacket::parse(raw);
        REQUIRE(p);
        CHECK(p->header.ssrc == audio->header.ssrc);   // one stream of ours toward B's party
        if (p->header.payload_type == 101) events.emplace_back(p->header, *parse_telephone_event(p->payload));
    }
    REQUIRE(events.size() == 5);
    for (std::size_t i = 0; i < events.size(); ++i) {
        CAPTURE(i);
        CHECK(events[i].second.event == 7);
        CHECK(events[i].second.duration == durations[i]);
        CHECK(events[i].second.end == (i >= 2));
        CHECK(events[i].first.marker == (i == 0));
        CHECK(events[i].first.timestamp == events[0].first.timestamp);   // the event's start, on B's clock
    }
    CHECK(events[0].first.timestamp == audio->header.timestamp + 3 * 160);
    CHECK(b.media->stats().dtmf_to_trunk == 5);
    CHECK(a.at_browser.empty());
}
