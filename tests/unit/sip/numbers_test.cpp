// SPDX-License-Identifier: Apache-2.0
// Telephone numbers as carriers spell them (issue 13): DID matching, the "+" policy, anonymity.
#include <doctest/doctest.h>

#include "turnbridge/sip/numbers.hpp"

using namespace turnbridge::sip;

namespace {

const NumberPlan kNanp{"1", 10};

Message invite(const char* ruri, const char* from, const char* to = "<sip:gw@127.0.0.1>",
               std::initializer_list<std::pair<const char*, const char*>> headers = {}) {
    auto m = std::move(*Message::parse(std::string("INVITE ") + ruri + " SIP/2.0\r\n"
                                       "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKn1\r\n"
                                       "From: " + from + ";tag=a\r\nTo: " + to + "\r\nCall-ID: n-1\r\n"
                                       "CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"));
    for (const auto& [n, v] : headers) m.add_header(n, v);
    return m;
}

}  // namespace

TEST_SUITE_BEGIN("sip");

TEST_CASE("the four spellings of a DID are one number under national_prefix = \"1\"; other plans keep them apart") {
    for (const char* did : {"+15551234567", "15551234567", "5551234567", "+1-555-123-4567", "1 (555) 123.4567"}) {
        CAPTURE(did);
        CHECK(e164_of(did, kNanp) == "15551234567");
        CHECK(same_number("+15551234567", did, kNanp));
    }
    // No plan: "+" or not is the same number, but a national number is not (no country to add).
    CHECK(same_number("+15551234567", "15551234567", {}));
    CHECK_FALSE(same_number("+15551234567", "5551234567", {}));
    // Short codes and extensions have no E.164 form under a plan; they match only exactly.
    CHECK_FALSE(e164_of("911", kNanp));
    CHECK(same_number("911", "911", kNanp));
    CHECK_FALSE(same_number("+15551234567", "+15551234568", kNanp));
    CHECK_FALSE(same_number("+445551234567", "5551234567", kNanp));   // another country
    CHECK_FALSE(e164_of("alice", kNanp));
    CHECK_FALSE(phone_digits("+"));
    CHECK_FALSE(phone_digits("12#4"));
}

TEST_CASE("numbers we send follow e164_plus: \"+\" added (national numbers completed), removed, or left alone") {
    CHECK(format_number("5551234567", true, kNanp) == "+15551234567");
    CHECK(format_number("15551234567", true, kNanp) == "+15551234567");
    CHECK(format_number("+15551234567", true, kNanp) == "+15551234567");
    CHECK(format_number("+15551234567", false, kNanp) == "15551234567");
    CHECK(format_number("5551234567", false, kNanp) == "5551234567");
    CHECK(format_number("+15551234567", std::nullopt, kNanp) == "+15551234567");
    CHECK(format_number("911", true, kNanp) == "911");       // no E.164 form: as dialled
    CHECK(format_number("alice", true, kNanp) == "alice");
    CHECK(is_phone_user("+15551234567"));
    CHECK(is_phone_user("911"));
    CHECK_FALSE(is_phone_user("alice"));
    CHECK_FALSE(is_phone_user("+"));
}

TEST_CASE("the dialled number comes from a sip:, sips: or tel: Request-URI, else from To (RFC 3966)") {
    CHECK(uri_user("sip:+15551234567@gw.example;user=phone") == "+15551234567");
    CHECK(uri_user("sip:+15551234567;isub=12@gw.example") == "+15551234567");
    CHECK(uri_user("SIPS:5551234567@gw.example:5061") == "5551234567");
    CHECK(uri_user("tel:+15551234567;phone-context=example.com") == "+15551234567");
    CHECK(uri_user("sip:gw.example") == "");
    CHECK(uri_user("mailto:a@b") == "");
    CHECK(dialled_number(invite("sip:15551234567@127.0.0.1", "<sip:a@b>")) == "15551234567");
    CHECK(dialled_number(invite("tel:+15551234567", "<sip:a@b>")) == "+15551234567");
    CHECK(dialled_number(invite("sip:127.0.0.1", "<sip:a@b>", "<tel:+15551234567>")) == "+15551234567");
}

TEST_CASE("a withheld caller (From anonymous, Privacy: id/user/header) is anonymous (RFC 3323, RFC 3325)") {
    CHECK(caller_withheld(invite("sip:1@h", "\"Anonymous\" <sip:anonymous@anonymous.invalid>")));
    CHECK(caller_withheld(invite("sip:1@h", "<sip:Anonymous@carrier.example>")));
    CHECK(caller_withheld(invite("sip:1@h", "<sip:+15550100@carrier.example>", "<sip:1@h>",
                                 {{"P-Asserted-Identity", "<sip:+15550100@carrier.example>"}, {"Privacy", "id"}})));
    CHECK(caller_withheld(invite("sip:1@h", "<sip:+15550100@c>", "<sip:1@h>", {{"Privacy", "critical; user"}})));
    CHECK_FALSE(caller_withheld(invite("sip:1@h", "<sip:+15550100@c>", "<sip:1@h>", {{"Privacy", "none"}})));
    CHECK_FALSE(caller_withheld(invite("sip:1@h", "<sip:+15550100@c>")));
}

TEST_SUITE_END();
