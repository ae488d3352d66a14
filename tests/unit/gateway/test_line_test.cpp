// SPDX-License-Identifier: Apache-2.0
// The built-in test line (issue 16): its SIP answers and the media of echo, tone and dtmf.
#include "turnbridge/gateway/test_line.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "tone.hpp"
#include "turnbridge/gateway/g711.hpp"
#include "turnbridge/gateway/sdp.hpp"
#include "turnbridge/gateway/telephone_event.hpp"
#include "turnbridge/sip/message.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;

namespace {

const Endpoint kSip = *Endpoint::parse("127.0.0.1:40000");
const Endpoint kRtp = *Endpoint::parse("127.0.0.1:40002");
const Endpoint kCaller = *Endpoint::parse("127.0.0.1:5060");
const Endpoint kCallerRtp = *Endpoint::parse("127.0.0.1:22002");

const Endpoint kDtmfRtp = *Endpoint::parse("127.0.0.1:22004");
const Endpoint kToneRtp = *Endpoint::parse("127.0.0.1:22006");

std::string request(std::string_view method, std::string_view number, std::string_view call_id, std::string_view body,
                    std::string_view to_tag = {}, const Endpoint& rtp = kCallerRtp) {
    TrunkLocal us;
    us.address = rtp;
    const std::string sdp = body == "offer" ? build_trunk_offer(us) : std::string(body);
    return fmt::format("{} sip:{}@127.0.0.1:40000 SIP/2.0\r\n"
                       "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{}{}\r\n"
                       "From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:{}@127.0.0.1:40000>{}\r\n"
                       "Call-ID: {}\r\nCSeq: {} {}\r\nMax-Forwards: 70\r\nContact: <sip:t@127.0.0.1:5060>\r\n"
                       "{}Content-Length: {}\r\n\r\n{}",
                       method, number, method, call_id, number, to_tag.empty() ? "" : fmt::format(";tag={}", to_tag),
                       call_id, method == "BYE" ? 2 : 1, method, sdp.empty() ? "" : "Content-Type: application/sdp\r\n",
                       sdp.size(), sdp);
}

sip::Message parsed(const std::string& s) { return std::move(*sip::Message::parse(s)); }

std::vector<double> decode(const std::vector<TestLine::RtpOut>& out) {
    std::vector<double> x;
    for (const auto& o : out) {
        auto p = RtpPacket::parse(o.bytes);
        REQUIRE(p);
        for (auto b : p->payload) x.push_back(ulaw_to_linear(b));
    }
    return x;
}

}  // namespace

TEST_CASE("test_number maps the dialled numbers") {
    CHECK(test_number("echo") == TestNumber::Echo);
    CHECK(test_number("9196") == TestNumber::Echo);
    CHECK(test_number("tone") == TestNumber::Tone);
    CHECK(test_number("dtmf") == TestNumber::Dtmf);
    CHECK_FALSE(test_number("+15550123"));
}

TEST_CASE("test line answers INVITE with G.711 SDP, repeats its 200, ends on BYE") {
    TestLine line(kSip, kRtp, 7);
    TestLine::Time t{};
    std::vector<TestLine::SipOut> out;
    line.on_sip(t, kCaller, request("INVITE", "echo", "c1", "offer"), out);
    REQUIRE(out.size() == 1);
    CHECK(out[0].to == kCaller);
    auto ok = parsed(out[0].bytes);
    CHECK(ok.status() == 200);
    const auto tag = ok.to_tag();
    CHECK_FALSE(tag.empty());
    auto sdp = parse_sdp(ok.body());
    REQUIRE(sdp);
    CHECK(sdp->media[0].port == kRtp.port);
    CHECK(line.calls() == 1);
    out.clear();
    line.on_sip(t, kCaller, request("INVITE", "echo", "c1", "offer"), out);   // retransmission
    REQUIRE(out.size() == 1);
    CHECK(parsed(out[0].bytes).to_tag() == tag);
    CHECK(line.calls() == 1);
    out.clear();
    line.on_sip(t, kCaller, request("BYE", "echo", "c1", "", tag), out);
    REQUIRE(out.size() == 1);
    CHECK(parsed(out[0].bytes).status() == 200);
    CHECK(line.calls() == 0);
}

TEST_CASE("test line refuses other numbers, late offers and calls beyond kMaxCalls") {
    TestLine line(kSip, kRtp, 7);
    TestLine::Time t{};
    std::vector<TestLine::SipOut> out;
    line.on_sip(t, kCaller, request("INVITE", "+15550123", "x", "offer"), out);
    line.on_sip(t, kCaller, request("INVITE", "tone", "y", ""), out);
    REQUIRE(out.size() == 2);
    CHECK(parsed(out[0].bytes).status() == 404);
    CHECK(parsed(out[1].bytes).status() == 488);
    out.clear();
    for (std::size_t i = 0; i <= TestLine::kMaxCalls; ++i)
        line.on_sip(t, kCaller, request("INVITE", "tone", fmt::format("n{}", i), "offer"), out);
    CHECK(parsed(out.back().bytes).status() == 486);
    CHECK(line.calls() == TestLine::kMaxCalls);
    // Calls with no RTP for kIdle are forgotten.
    std::vector<TestLine::RtpOut> rtp;
    line.on_tick(t + TestLine::kIdle, rtp);
    CHECK(line.calls() == 0);
}

TEST_CASE("test line: echo after 0.5 s, a 1 kHz tone, DTMF digits played back") {
    TestLine line(kSip, kRtp, 7);
    TestLine::Time t{};
    std::vector<TestLine::SipOut> out;
    line.on_sip(t, kCaller, request("INVITE", "echo", "e", "offer"), out);
    line.on_sip(t, kCaller, request("INVITE", "tone", "t", "offer", {}, kToneRtp), out);
    line.on_sip(t, kCaller, request("INVITE", "dtmf", "d", "offer", {}, kDtmfRtp), out);
    REQUIRE(line.calls() == 3);

    SUBCASE("echo") {
        // 440 Hz in, frame by frame: the first 25 answers are silence, then the tone comes back.
        const auto tone = test::sine(440, 8000, TestLine::kFrame * 50, 8000);
        std::vector<TestLine::RtpOut> rtp;
        std::vector<double> heard;
        std::array<std::uint8_t, kRtpHeaderSize + TestLine::kFrame> pkt{};
        for (std::size_t f = 0; f < 50; ++f) {
            RtpHeader h;
            h.sequence = static_cast<std::uint16_t>(f);
            h.timestamp = static_cast<std::uint32_t>(f * TestLine::kFrame);
            write_rtp_header(h, pkt);
            g711_encode(G711Law::Pcmu, std::span(tone).subspan(f * TestLine::kFrame, TestLine::kFrame),
                        std::span(pkt).subspan(kRtpHeaderSize));
            rtp.clear();
            line.on_rtp(t, kCallerRtp, pkt, rtp);
            REQUIRE(rtp.size() == 1);
            CHECK(rtp[0].to == kCallerRtp);
            const auto x = decode(rtp);
            if (f < TestLine::kEchoFrames) {
                for (double v : x) CHECK(std::abs(v) < 10);
            } else {
                heard.insert(heard.end(), x.begin(), x.end());
            }
        }
        CHECK(test::dominant_frequency(heard, 8000) == doctest::Approx(440).epsilon(0.02));
    }
    SUBCASE("tone and dtmf") {
        std::vector<TestLine::RtpOut> rtp;
        // A '5' (770 + 1336 Hz) as RFC 4733 (three packets of one event, one timestamp).
        std::array<std::uint8_t, kRtpHeaderSize + kTelephoneEventSize> ev{};
        for (int i = 0; i < 3; ++i) {
            RtpHeader h;
            h.payload_type = 101;
            h.sequence = static_cast<std::uint16_t>(i);
            h.timestamp = 1000;
            write_rtp_header(h, ev);
            write_telephone_event({5, i == 2, 10, static_cast<std::uint16_t>(160 * (i + 1))}, std::span(ev).subspan(kRtpHeaderSize));
            line.on_rtp(t, kDtmfRtp, ev, rtp);
        }
        CHECK(rtp.empty());
        std::vector<double> tone, dtmf;
        for (std::size_t f = 0; f < TestLine::kDigitFrames; ++f) {
            rtp.clear();
            line.on_tick(t, rtp);
            REQUIRE(rtp.size() == 2);   // tone and dtmf; echo answers RTP only
            // Calls keep their order; the echo call sends nothing on ticks.
            auto a = decode({rtp[0]}), b = decode({rtp[1]});
            tone.insert(tone.end(), a.begin(), a.end());
            dtmf.insert(dtmf.end(), b.begin(), b.end());
        }
        CHECK(test::dominant_frequency(tone, 8000) == doctest::Approx(1000).epsilon(0.01));
        const double low = test::goertzel(dtmf, 770, 8000), high = test::goertzel(dtmf, 1336, 8000);
        const double other = test::goertzel(dtmf, 697, 8000) + test::goertzel(dtmf, 1209, 8000) + test::goertzel(dtmf, 1000, 8000);
        CHECK(low > 50 * other);
        CHECK(high > 50 * other);
        // Then silence: the gap, and nothing queued.
        for (std::size_t f = 0; f < TestLine::kGapFrames + 2; ++f) {
            rtp.clear();
            line.on_tick(t, rtp);
        }
        for (double v : decode({rtp[1]})) CHECK(std::abs(v) < 10);
    }
}
