// SPDX-License-Identifier: Apache-2.0
// The text parts of call transfer (issue 14): Refer-To (RFC 3515 §2.1), Replaces (RFC 3891 §6.1)
// and the sipfrag NOTIFY (RFC 3515 §2.4.4).
#include <doctest/doctest.h>

#include "turnbridge/sip/refer.hpp"

using namespace turnbridge::sip;

TEST_CASE("Refer-To: sip:, sips: and tel: targets, name-addr or bare, parameters and escapes") {
    auto t = parse_refer_to("<sip:+15557001@Example.org:5060;user=phone>");
    REQUIRE(t);
    CHECK(t->scheme == "sip");
    CHECK(t->user == "+15557001");
    CHECK(t->host == "example.org");
    CHECK_FALSE(t->replaces);
    t = parse_refer_to("\"Desk\" <sips:bob@[::1]:5061>;x=y");
    REQUIRE(t);
    CHECK(t->scheme == "sips");
    CHECK(t->host == "[::1]");
    t = parse_refer_to("tel:+1-555-700-1;phone-context=x");
    REQUIRE(t);
    CHECK(t->scheme == "tel");
    CHECK(t->user == "+1-555-700-1");
    CHECK(t->host.empty());
    t = parse_refer_to("sip:%2B15557001@h;transport=udp");
    REQUIRE(t);
    CHECK(t->user == "+15557001");
    CHECK(t->host == "h");
}

TEST_CASE("Refer-To: malformed values are refused") {
    for (const char* bad : {"", "<>", "<sip:alice@h", "sip:@h", "sip:h", "http://x@y/", "<mailto:a@b>", "tel:",
                            "<tel:+1555?Replaces=a>", "<sip:a%4@h>", "<sip:a%00b@h>", "<sip:a@>",
                            "<sip:a@h?Replaces=abc>", "<sip:a@h?junk>"})
        CHECK_MESSAGE(!parse_refer_to(bad), bad);
    CHECK_FALSE(parse_refer_to(std::string(2000, 'a')));
}

TEST_CASE("Replaces in a Refer-To (attended transfer) and on its own (RFC 3891 §6.1)") {
    auto t = parse_refer_to("<sip:+15557001@example.org?Replaces=abc%40host%3Bto-tag%3D12%3Bfrom-tag%3D34>");
    REQUIRE(t);
    REQUIRE(t->replaces);
    CHECK(t->replaces->call_id == "abc@host");
    CHECK(t->replaces->to_tag == "12");
    CHECK(t->replaces->from_tag == "34");
    CHECK_FALSE(t->replaces->early_only);
    auto r = parse_replaces("x1; from-tag=a ;to-tag=b;early-only");
    REQUIRE(r);
    CHECK(r->call_id == "x1");
    CHECK(r->from_tag == "a");
    CHECK(r->to_tag == "b");
    CHECK(r->early_only);
    CHECK_FALSE(parse_replaces("x1;to-tag=b"));          // from-tag required
    CHECK_FALSE(parse_replaces(";to-tag=b;from-tag=a"));  // no Call-ID
    CHECK_FALSE(parse_replaces("x1"));
}

TEST_CASE("exactly one Refer-To per REFER, long or compact form (RFC 3515 §2.4.1)") {
    auto parse = [](const std::string& headers) {
        auto m = Message::parse("REFER sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@h>;tag=1\r\n"
                                "To: <sip:a@b>;tag=2\r\nCall-ID: c\r\nCSeq: 2 REFER\r\nMax-Forwards: 70\r\n"
                                "User-Agent: x\r\n" + headers +
                                "Content-Length: 0\r\n\r\n");
        REQUIRE(m);
        return refer_target(*m);
    };
    CHECK(parse("Refer-To: <tel:+15557001>\r\n"));
    CHECK(parse("r: <tel:+15557001>\r\n"));
    CHECK_FALSE(parse(""));
    CHECK_FALSE(parse("Refer-To: <tel:+1>\r\nRefer-To: <tel:+2>\r\n"));
}

TEST_CASE("sipfrag bodies: built with the standard reason, read back, junk refused (RFC 3420, RFC 3515 §2.4.5)") {
    CHECK(sipfrag(100) == "SIP/2.0 100 Trying\r\n");
    CHECK(sipfrag(200) == "SIP/2.0 200 OK\r\n");
    CHECK(sipfrag(603, "Nope") == "SIP/2.0 603 Nope\r\n");
    CHECK(sipfrag_status("SIP/2.0 180 Ringing\r\n") == 180);
    CHECK(sipfrag_status("SIP/2.0 200\r\n") == 200);
    for (const char* bad : {"", "SIP/2.0 ", "SIP/2.0 20", "SIP/2.0 2000 OK", "SIP/2.0 099 x", "HTTP/1.1 200 OK", "SIP/2.0 7xx"})
        CHECK_MESSAGE(!sipfrag_status(bad), bad);
    auto m = Message::request("NOTIFY", "sip:a@b");
    REQUIRE(m);
    make_refer_notify(*m, 100);
    CHECK(m->header("event") == "refer");
    CHECK(m->header("subscription-state")->starts_with("active"));
    CHECK(m->body() == "SIP/2.0 100 Trying\r\n");
    CHECK(m->content_type().starts_with("message/sipfrag"));
    auto done = Message::request("NOTIFY", "sip:a@b");
    make_refer_notify(*done, 503);
    CHECK(done->header("subscription-state")->starts_with("terminated"));
    CHECK(sipfrag_status(done->body()) == 503);
}
