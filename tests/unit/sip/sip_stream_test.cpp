// SPDX-License-Identifier: Apache-2.0
// SIP message framing on TCP (RFC 3261 §18.3).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "turnbridge/sip/sip_stream.hpp"

using turnbridge::sip::SipStreamFramer;

namespace {
const std::string kBye = "BYE sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";
const std::string kInvite = "INVITE sip:a@b SIP/2.0\r\nCall-ID: y\r\nl: 5\r\n\r\nv=0\r\n";
}  // namespace

TEST_CASE("SIP over TCP: messages cut by Content-Length (also compact l), fed byte by byte, keep-alives skipped") {
    SipStreamFramer f;
    const std::string stream = "\r\n\r\n" + kBye + kInvite + "\r\n";
    std::vector<std::string> got;
    std::string m;
    for (char c : stream) {
        f.feed(std::string_view(&c, 1));
        while (f.next(m) == SipStreamFramer::Status::Message) got.push_back(m);
    }
    REQUIRE(got.size() == 2);
    CHECK(got[0] == kBye);
    CHECK(got[1] == kInvite);
    CHECK(f.next(m) == SipStreamFramer::Status::NeedMore);
    CHECK(f.buffered() == 0);
}

TEST_CASE("SIP over TCP: no Content-Length, a bad one, or an oversized header is an error") {
    std::string m;
    SipStreamFramer none;
    none.feed("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: z\r\n\r\n");
    CHECK(none.next(m) == SipStreamFramer::Status::Error);
    SipStreamFramer bad;
    bad.feed("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1x\r\n\r\n");
    CHECK(bad.next(m) == SipStreamFramer::Status::Error);
    SipStreamFramer huge;
    huge.feed("OPTIONS sip:a@b SIP/2.0\r\nX: " + std::string(SipStreamFramer::kMaxHeader + 1, 'a'));
    CHECK(huge.next(m) == SipStreamFramer::Status::Error);
    SipStreamFramer big_body;
    big_body.feed("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 9999999\r\n\r\n");
    CHECK(big_body.next(m) == SipStreamFramer::Status::Error);
}
