// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/sdes.hpp"

#include <doctest/doctest.h>

#include <cstring>

#include "turnbridge/base/base64.hpp"
#include "turnbridge/gateway/trunk_sdp.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;

namespace {

// RFC 4568 §9's offer key (40 base64 characters: 30 bytes of key and salt).
constexpr std::string_view kRfcKey = "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";

RandomSource counter() {
    return [n = std::uint8_t{0}](std::span<std::uint8_t> out) mutable {
        for (auto& b : out) b = ++n;
    };
}

SessionDescription parsed(const std::string& s) {
    auto p = parse_sdp(s);
    REQUIRE(p);
    return *p;
}

std::string with_b64_key(std::size_t bytes) {
    std::vector<std::uint8_t> k(bytes, 0x5a);
    return "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64_encode(k);
}

}  // namespace

TEST_CASE("RFC 4568 §9 example lines: the key parses; its 2^20 lifetime and MKI are refused (we never re-key)") {
    const auto key = std::string(kRfcKey);
    auto c = parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + key);
    REQUIRE(c);
    CHECK(c->tag == 1);
    CHECK(c->suite == SdesSuite::AesCm128HmacSha1_80);
    CHECK(base64_encode(c->key_salt) == key);
    CHECK(format_crypto(*c) == "1 AES_CM_128_HMAC_SHA1_80 inline:" + key);
    auto answer = parse_crypto("1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj");
    REQUIRE(answer);
    CHECK(answer->suite == SdesSuite::AesCm128HmacSha1_32);
    CHECK(format_crypto(*answer) == "1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj");

    const auto mki = parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^20|1:32");
    REQUIRE_FALSE(mki);
    CHECK(mki.error().what == std::string_view("a=crypto MKI not supported"));
    CHECK_FALSE(parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|1:4"));
    const auto short_life = parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^20");
    REQUIRE_FALSE(short_life);
    CHECK(short_life.error().what.find("lifetime") != std::string_view::npos);
    CHECK(parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^31"));
    CHECK(parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2147483648"));
    CHECK(parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " WSH=128 KDR=0"));
}

TEST_CASE("a=crypto key length: exactly 30 bytes of master key and salt (RFC 4568 §6.2)") {
    CHECK(parse_crypto(with_b64_key(30)));
    for (std::size_t n : {0u, 16u, 29u, 31u, 46u, 64u}) {
        CAPTURE(n);
        const auto r = parse_crypto(with_b64_key(n));
        REQUIRE_FALSE(r);
        if (n != 0) CHECK(r.error().what == std::string_view("a=crypto key is not 30 bytes (16 key + 14 salt)"));
    }
}

TEST_CASE("hostile a=crypto lines are refused, each naming what is wrong, never crashing") {
    const auto key = std::string(kRfcKey);
    const std::vector<std::pair<std::string, std::string_view>> rows = {
        {"", "tag"},
        {"1", "suite"},
        {"1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + key, "tag"},
        {"-1 AES_CM_128_HMAC_SHA1_80 inline:" + key, "tag"},
        {"x AES_CM_128_HMAC_SHA1_80 inline:" + key, "tag"},
        {"1 F8_128_HMAC_SHA1_80 inline:" + key, "suite"},
        {"1 AES_256_CM_HMAC_SHA1_80 inline:" + key, "suite"},
        {"1 aes_cm_128_hmac_sha1_80 inline:" + key, "suite"},
        {"1 AES_CM_128_HMAC_SHA1_80", "inline"},
        {"1 AES_CM_128_HMAC_SHA1_80 " + key, "inline"},
        {"1 AES_CM_128_HMAC_SHA1_80 uri:" + key, "inline"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:", "30 bytes"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key.substr(0, 39), "base64"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "!!!!", "base64"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + ";inline:" + key, "several keys"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|", "lifetime"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^", "lifetime"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^99", "lifetime"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|99999999999999999999", "lifetime"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^31|2^31", "MKI"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " UNENCRYPTED_SRTP", "session parameter"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " UNAUTHENTICATED_SRTP", "session parameter"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " FEC_ORDER=SRTP_FEC", "session parameter"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " KDR=1", "session parameter"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " WSH=32", "session parameter"},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " -SESSION_EXTENSION", "session parameter"},
    };
    for (const auto& row : rows) {   // no structured bindings: clang 14 cannot capture them
        CAPTURE(row.first);
        const auto r = parse_crypto(row.first);
        REQUIRE_FALSE(r);
        CHECK(r.error().what.find(row.second) != std::string_view::npos);
        CHECK(r.error().what.find("crypto") != std::string_view::npos);   // is_crypto_error
    }
    // Tabs separate fields as well as spaces (RFC 4568 §9.1: 1*WSP).
    CHECK(parse_crypto("7\tAES_CM_128_HMAC_SHA1_32\t inline:" + key));
}

TEST_CASE("SDES offer/answer: fresh keys per suite, the offerer's order, tags echoed (RFC 4568 §7.1)") {
    const auto ours = offer_crypto(counter());
    REQUIRE(ours.size() == 2);
    CHECK(ours[0].suite == SdesSuite::AesCm128HmacSha1_80);
    CHECK(ours[1].suite == SdesSuite::AesCm128HmacSha1_32);
    CHECK(ours[0].key_salt != ours[1].key_salt);
    const auto again = offer_crypto(random_bytes);
    CHECK(again[0].key_salt != offer_crypto(random_bytes)[0].key_salt);

    const auto key = std::string(kRfcKey);
    // An unusable first line (MKI) is skipped; the 32-bit line is taken with its tag 5.
    auto a = answer_crypto({"3 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^20|1:4",
                            "5 AES_CM_128_HMAC_SHA1_32 inline:" + key}, ours);
    REQUIRE(a);
    CHECK(a->remote.tag == 5);
    CHECK(a->local.tag == 5);
    CHECK(a->local.suite == SdesSuite::AesCm128HmacSha1_32);
    CHECK(a->local.key_salt == ours[1].key_salt);
    const auto none = answer_crypto({"3 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^20|1:4"}, ours);
    REQUIRE_FALSE(none);
    CHECK(none.error().what == std::string_view("a=crypto MKI not supported"));
    CHECK_FALSE(answer_crypto({}, ours));

    // The answerer's line must name a tag we offered, with its suite, alone.
    auto ok = accept_crypto({"2 AES_CM_128_HMAC_SHA1_32 inline:" + key}, ours);
    REQUIRE(ok);
    CHECK(ok->local == ours[1]);
    CHECK(base64_encode(ok->remote.key_salt) == key);
    CHECK_FALSE(accept_crypto({"3 AES_CM_128_HMAC_SHA1_80 inline:" + key}, ours));
    CHECK_FALSE(accept_crypto({"1 AES_CM_128_HMAC_SHA1_32 inline:" + key}, ours));
    CHECK_FALSE(accept_crypto({"1 AES_CM_128_HMAC_SHA1_80 inline:" + key, "2 AES_CM_128_HMAC_SHA1_32 inline:" + key}, ours));
    CHECK_FALSE(accept_crypto({}, ours));
}

TEST_CASE("SDES keys drive libsrtp2 both ways: _80 adds a 10-byte tag, _32 a 4-byte one; a wrong key fails") {
    for (auto suite : {SdesSuite::AesCm128HmacSha1_80, SdesSuite::AesCm128HmacSha1_32}) {
        CAPTURE(to_string(suite));
        const auto a_keys = offer_crypto(counter());
        SdesChoice a;
        a.local = suite == SdesSuite::AesCm128HmacSha1_80 ? a_keys[0] : a_keys[1];
        a.remote = a.local;
        random_bytes(a.remote.key_salt);
        const SdesChoice b{a.local, a.remote};   // the peer: our remote is its local
        auto sa = SrtpSession::create(srtp_keys(a));
        auto sb = SrtpSession::create(srtp_keys(b));
        REQUIRE(sa);
        REQUIRE(sb);
        std::array<std::uint8_t, 12 + 160 + kSrtpMaxTrailer> pkt{};
        pkt[0] = 0x80;
        pkt[3] = 1;        // sequence 1
        pkt[11] = 0x42;    // SSRC
        std::memset(pkt.data() + 12, 0xff, 160);   // PCMU silence
        const auto n = sa->protect_rtp(pkt, 172);
        REQUIRE(n);
        CHECK(*n == 172 + (suite == SdesSuite::AesCm128HmacSha1_80 ? 10u : 4u));
        CHECK(pkt[12] != 0xff);   // the payload is encrypted
        auto copy = pkt;
        const auto m = sb->unprotect_rtp(pkt, *n);
        REQUIRE(m);
        CHECK(*m == 172);
        CHECK(pkt[12] == 0xff);
        SdesChoice wrong = b;
        wrong.remote.key_salt[0] ^= 1;
        auto sw = SrtpSession::create(srtp_keys(wrong));
        REQUIRE(sw);
        CHECK_FALSE(sw->unprotect_rtp(copy, *n));
    }
}

TEST_CASE("trunk SDP with srtp: required offers RTP/SAVP, optional RTP/AVP with a=crypto (RFC 8643), off neither") {
    TrunkLocal us;
    us.address = *Endpoint::parse("192.0.2.5:30000");
    us.crypto = offer_crypto(counter());
    CHECK(build_trunk_offer(us).find("crypto") == std::string::npos);
    us.srtp = SrtpMode::Optional;
    auto offer = parsed(build_trunk_offer(us));
    CHECK(offer.media[0].proto == "RTP/AVP");
    REQUIRE(offer.media[0].crypto.size() == 2);
    CHECK(offer.media[0].crypto[0] == format_crypto(us.crypto[0]));
    us.srtp = SrtpMode::Required;
    offer = parsed(build_trunk_offer(us));
    CHECK(offer.media[0].proto == "RTP/SAVP");
    CHECK(offer.media[0].crypto.size() == 2);

    // A carrier with SRTP answers with its key on the tag it takes.
    TrunkLocal carrier;
    carrier.address = *Endpoint::parse("203.0.113.9:16000");
    carrier.srtp = SrtpMode::Required;
    carrier.crypto = offer_crypto(random_bytes);
    auto answer = answer_trunk_offer(offer, carrier);
    REQUIRE(answer);
    CHECK(answer->sdp.find("m=audio 16000 RTP/SAVP 0 101\r\n") != std::string::npos);
    REQUIRE(answer->media.sdes);
    CHECK(answer->media.sdes->local.tag == 1);
    auto accepted = accept_trunk_answer(parsed(answer->sdp), us);
    REQUIRE(accepted);
    REQUIRE(accepted->sdes);
    CHECK(accepted->sdes->local == us.crypto[0]);
    CHECK(accepted->sdes->remote.key_salt == carrier.crypto[0].key_salt);

    // A carrier without SRTP: required ends the call; optional falls back to clear RTP.
    TrunkLocal plain;
    plain.address = carrier.address;
    us.srtp = SrtpMode::Optional;
    auto clear = answer_trunk_offer(parsed(build_trunk_offer(us)), plain);
    REQUIRE(clear);
    CHECK(clear->sdp.find("crypto") == std::string::npos);
    auto opt = accept_trunk_answer(parsed(clear->sdp), us);
    REQUIRE(opt);
    CHECK_FALSE(opt->sdes);
    us.srtp = SrtpMode::Required;
    auto req = accept_trunk_answer(parsed(clear->sdp), us);
    REQUIRE_FALSE(req);
    CHECK(is_crypto_error(req.error()));
    // RTP/SAVP offered to a trunk with srtp off: nothing to answer (488).
    CHECK_FALSE(answer_trunk_offer(parsed(build_trunk_offer(us)), plain));
    // Inbound: required refuses an offer without keys; optional answers it in clear.
    us.srtp = SrtpMode::Off;
    const auto clear_offer = parsed(build_trunk_offer(us));
    carrier.srtp = SrtpMode::Required;
    auto refused = answer_trunk_offer(clear_offer, carrier);
    REQUIRE_FALSE(refused);
    CHECK(is_crypto_error(refused.error()));
    carrier.srtp = SrtpMode::Optional;
    auto fallback = answer_trunk_offer(clear_offer, carrier);
    REQUIRE(fallback);
    CHECK_FALSE(fallback->media.sdes);
    CHECK(fallback->sdp.find("RTP/AVP") != std::string::npos);
}

TEST_CASE("RTP/SAVP without a=crypto is refused even with srtp = optional (nothing to key it with)") {
    TrunkLocal us;
    us.address = *Endpoint::parse("192.0.2.5:30000");
    us.srtp = SrtpMode::Optional;
    us.crypto = offer_crypto(counter());
    const std::string savp = "v=0\r\no=c 1 1 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\n"
                             "m=audio 16000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    const auto answer = accept_trunk_answer(parsed(savp), us);
    REQUIRE_FALSE(answer);
    CHECK(answer.error().what == std::string_view("no a=crypto in an RTP/SAVP answer"));
    const auto offer = answer_trunk_offer(parsed(savp), us);
    REQUIRE_FALSE(offer);
    CHECK(offer.error().what == std::string_view("no a=crypto in an RTP/SAVP offer"));
    // With a line we cannot use (MKI) an RTP/SAVP offer is refused; an RTP/AVP one answered in clear.
    const std::string mki = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32\r\n";
    CHECK_FALSE(answer_trunk_offer(parsed(savp + mki), us));
    std::string avp = savp + mki;
    avp.replace(avp.find("RTP/SAVP"), 8, "RTP/AVP");
    const auto clear = answer_trunk_offer(parsed(avp), us);
    REQUIRE(clear);
    CHECK_FALSE(clear->media.sdes);
    CHECK(clear->sdp.find("a=crypto") == std::string::npos);
}
