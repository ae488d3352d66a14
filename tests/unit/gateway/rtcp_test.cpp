// SPDX-License-Identifier: Apache-2.0
// RTCP reports, receive statistics and the E-model (issue 14), against RFC 3550's own examples.
#include <doctest/doctest.h>

#include <vector>

#include "turnbridge/gateway/call_quality.hpp"
#include "turnbridge/gateway/rtcp.hpp"
#include "turnbridge/gateway/rtcp_session.hpp"
#include "turnbridge/gateway/rtp_receive_stats.hpp"

using namespace turnbridge::gateway;
using namespace std::chrono_literals;
using V = std::vector<std::uint8_t>;
using Clock = std::chrono::steady_clock;

namespace {

const Clock::time_point t0 = Clock::time_point{} + 1000s;

RandomSource fixed_random(std::uint8_t b) {
    return [b](std::span<std::uint8_t> out) {
        for (auto& x : out) x = b;
    };
}

}  // namespace

TEST_CASE("RTCP RR and SR compound packets round-trip, with SDES CNAME (RFC 3550 §6.1, §6.4)") {
    RtcpReport r;
    r.ssrc = 0x11223344;
    r.blocks[0] = ReportBlock{0xCAFEF00D, 12, -3, 0x00010005, 40, 0xB7052000, 0x00054000};
    r.block_count = 1;
    std::array<std::uint8_t, 256> buf{};
    const auto n = write_rtcp_compound(r, "turnbridge", buf);
    // RR 8 + 24, SDES 8 + 2 + 10 + 1 rounded to 24.
    REQUIRE(n == 32 + 24);
    CHECK(n % 4 == 0);
    CHECK(buf[0] == 0x81);
    CHECK(buf[1] == kRtcpRr);
    CHECK(buf[33] == kRtcpSdes);
    CHECK(is_rtcp({buf.data(), n}));
    auto back = parse_rtcp_report({buf.data(), n});
    REQUIRE(back);
    CHECK(back->ssrc == 0x11223344);
    CHECK_FALSE(back->sender);
    REQUIRE(back->block_count == 1);
    CHECK(back->blocks[0].ssrc == 0xCAFEF00D);
    CHECK(back->blocks[0].fraction_lost == 12);
    CHECK(back->blocks[0].cumulative_lost == -3);  // 24-bit signed (§6.4.1)
    CHECK(back->blocks[0].highest_sequence == 0x00010005);
    CHECK(back->blocks[0].jitter == 40);
    CHECK(back->blocks[0].last_sr == 0xB7052000);

    r.sender = SenderInfo{0x0102030405060708ull, 160000, 50, 8000};
    const auto m = write_rtcp_compound(r, "turnbridge", buf);
    REQUIRE(m == n + 20);
    CHECK(buf[1] == kRtcpSr);
    back = parse_rtcp_report({buf.data(), m});
    REQUIRE(back);
    REQUIRE(back->sender);
    CHECK(back->sender->ntp == 0x0102030405060708ull);
    CHECK(back->sender->packets == 50);
    CHECK(back->sender->octets == 8000);
    // §A.2: lengths must add up; a truncated compound or an SDES first is not a report.
    CHECK_FALSE(parse_rtcp_report({buf.data(), m - 4}));
    CHECK_FALSE(parse_rtcp_report({buf.data() + 52, m - 52}));
    CHECK_FALSE(write_rtcp_compound(r, "turnbridge", std::span<std::uint8_t>(buf.data(), 40)));
}

TEST_CASE("RTCP round trip from LSR and DLSR: RFC 3550 §6.4.1's figure gives 6.125 s") {
    ReportBlock b;
    b.last_sr = 0xB7052000;             // 46853.125 s
    b.delay_since_last_sr = 0x00054000; // 5.250 s
    const std::uint64_t arrival = std::uint64_t{0xB710} << 32 | std::uint64_t{0x8000} << 16;  // 46864.500 s
    const auto rtt = round_trip(b, arrival);
    REQUIRE(rtt);
    CHECK(rtt->count() == 6125000);
    b.last_sr = 0;
    CHECK_FALSE(round_trip(b, arrival));
}

TEST_CASE("Receive statistics: every 20th packet lost is 5 %, fraction lost per report (RFC 3550 §A.1, §A.3)") {
    RtpReceiveStats rx;
    for (std::uint32_t i = 0; i < 200; ++i) {
        if (i % 20 == 19) continue;
        // Sequence numbers wrap at 65535 (§A.1: cycles count on).
        rx.on_packet(t0 + i * 20ms, 42, static_cast<std::uint16_t>(65500 + i), i * 160, 8000);
        if (i == 100) {
            const auto b = rx.report(t0 + i * 20ms);
            CHECK(b.ssrc == 42);
            CHECK(b.cumulative_lost == 5);  // 19, 39, 59, 79, 99 of 0..100
            CHECK(b.fraction_lost == 5 * 256 / 101);
        }
    }
    CHECK(rx.expected() == 199);   // 0..198: the last one (199) is lost and never bounded
    CHECK(rx.lost() == 9);
    const auto b = rx.report(t0 + 4s);
    CHECK(b.highest_sequence == ((1u << 16) | static_cast<std::uint16_t>(65500 + 198)));
    CHECK(b.cumulative_lost == 9);
    CHECK(b.fraction_lost == 4 * 256 / 98);  // since the last report: 119..179 of 101..198
    CHECK(rx.jitter_ms() == doctest::Approx(0.0));  // perfectly paced
}

TEST_CASE("Interarrival jitter converges to the arrival deviation (RFC 3550 §A.8)") {
    RtpReceiveStats rx;
    // Every other packet arrives 10 ms late: |D| is 10 ms each time, J tends to 10 ms.
    for (std::uint32_t i = 0; i < 400; ++i)
        rx.on_packet(t0 + i * 20ms + (i % 2 ? 10ms : 0ms), 7, static_cast<std::uint16_t>(i), i * 160, 8000);
    CHECK(rx.jitter_ms() == doctest::Approx(10.0).epsilon(0.02));
    CHECK(rx.lost() == 0);
    // A new SSRC (another media server) starts over; what the first lost stays counted.
    rx.on_packet(t0 + 9s, 8, 1000, 0, 8000);
    rx.on_packet(t0 + 9s + 40ms, 8, 1002, 320, 8000);
    CHECK(rx.expected() == 403);
    CHECK(rx.lost() == 1);
}

TEST_CASE("E-model MOS (ITU-T G.107): clean calls near 4.4, 5 % random loss near 3.9, monotone in loss") {
    const CodecImpairment g711 = codec_impairment("PCMU");
    CHECK(mos_from_r(93.2) == doctest::Approx(4.41).epsilon(0.01));
    CHECK(mos_from_r(-5) == 1.0);
    CHECK(mos_from_r(120) == 4.5);
    const double clean = mos_from_r(r_factor(0, 20, g711));
    const double lossy = mos_from_r(r_factor(5, 20, g711));
    CHECK(clean == doctest::Approx(4.40).epsilon(0.01));
    // Ie_eff = 95 * 5 / (5 + 25.1) = 15.78, R = 93.2 - 0.48 - 15.78 = 76.94.
    CHECK(r_factor(5, 20, g711) == doctest::Approx(76.94).epsilon(0.001));
    CHECK(lossy == doctest::Approx(3.89).epsilon(0.01));
    CHECK(mos_from_r(r_factor(10, 20, g711)) < lossy);
    // Delay past 177.3 ms costs more per millisecond (Id's knee).
    CHECK(r_factor(0, 300, g711) < r_factor(0, 170, g711) - 0.024 * 130);
    DirectionQuality d;
    d.measured = true;
    d.expected = 1000;
    d.lost = 50;
    CHECK(d.loss_pct() == doctest::Approx(5.0));
    CHECK(d.mos(g711) < clean);
}

TEST_CASE("RTCP session: first report after about half of 5 s, then every 5 s randomised (RFC 3550 §6.2, §6.3)") {
    RtcpSession s(fixed_random(0x80), "turnbridge");  // r = 0.5 + 0x8080/65535 = 1.002
    CHECK_FALSE(s.due(t0));
    CHECK_FALSE(s.due(t0 + 2000ms));
    CHECK(s.due(t0 + 2100ms));  // 2.5 s x 1.002 / 1.21828 = 2.056 s
    CHECK_FALSE(s.due(t0 + 4000ms));
    CHECK(s.due(t0 + 6300ms));  // 5 s x 1.002 / 1.21828 = 4.11 s later

    // The peer's RR about our stream becomes its view of our direction.
    RtpStream ours(0xAABBCCDD, 100, 0);
    for (int i = 0; i < 200; ++i) ours.next(0, static_cast<std::uint32_t>(i * 160));
    RtpReceiveStats theirs;
    RtcpReport rr;
    rr.ssrc = 99;
    rr.blocks[0] = ReportBlock{0xAABBCCDD, 25, 10, 299, 80, 0, 0};
    rr.blocks[1] = ReportBlock{0x12345678, 0, 500, 0, 0, 0, 0};  // about someone else: ignored
    rr.block_count = 2;
    std::array<std::uint8_t, 256> buf{};
    const auto n = write_rtcp_compound(rr, "far", buf);
    CHECK(s.on_packet(t0 + 7s, {buf.data(), n}, ours, theirs, 8000));
    const auto v = s.peer_view();
    CHECK(v.measured);
    CHECK(v.lost == 10);
    CHECK(v.expected == 200);
    CHECK(v.loss_pct() == doctest::Approx(5.0));
    CHECK(v.jitter_ms == doctest::Approx(10.0));
    CHECK_FALSE(s.on_packet(t0 + 7s, {buf.data(), 7}, ours, theirs, 8000));

    // Ours: an SR (we sent) with a block on what we heard.
    theirs.on_packet(t0, 5, 1, 0, 8000);
    const auto m = s.build(t0 + 8s, ours, 32000, theirs, buf);
    const auto back = parse_rtcp_report({buf.data(), m});
    REQUIRE(back);
    REQUIRE(back->sender);
    CHECK(back->sender->packets == 200);
    CHECK(back->sender->rtp_timestamp == 32000);
    REQUIRE(back->block_count == 1);
    CHECK(back->blocks[0].ssrc == 5);
}
