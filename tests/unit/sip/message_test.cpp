// SPDX-License-Identifier: Apache-2.0
// SIP message parsing and building over libosip2 (RFC 3261 §7, §8.1.1, §8.2.6, §20).
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "samples.hpp"
#include "turnbridge/sip/message.hpp"

using namespace turnbridge::sip;

namespace {
Random counter(std::uint64_t start = 1) {
    return [n = start]() mutable { return n++; };
}
}  // namespace

TEST_CASE("a JsSIP REGISTER parses into its RFC 3261 §10.2 parts") {
    auto m = Message::parse(samples::kJsSipRegister);
    REQUIRE(m);
    CHECK_FALSE(m->validate());
    CHECK(m->is_request());
    CHECK(m->method() == "REGISTER");
    CHECK(m->request_uri() == "sip:example.org");
    CHECK(m->top_via_branch() == "z9hG4bK9573563");
    CHECK(m->top_via_transport() == "WSS");
    CHECK(m->top_via_sent_by() == "3b5kq2ugmd6u.invalid");
    CHECK(m->from_tag() == "m0dm2jo4vt");
    CHECK(m->from()->display == "Alice");
    CHECK(m->to_tag().empty());
    CHECK(m->to()->uri == "sip:alice@example.org");
    CHECK(m->call_id() == "2a1h1c9f8tp46lmbqfmr4k");
    CHECK(m->cseq() == 1);
    CHECK(m->cseq_method() == "REGISTER");
    CHECK(m->max_forwards() == 69);
    CHECK(m->header("Expires") == "600");
    CHECK(m->header("user-agent") == "JsSIP 3.10.0");
    const auto contacts = m->contacts();
    REQUIRE(contacts.size() == 1);
    CHECK(contacts[0].uri == "sip:kd3b3o1r@3b5kq2ugmd6u.invalid;transport=ws");
    CHECK(contacts[0].param("expires") == "600");
    CHECK(contacts[0].param("+sip.instance") == "\"<urn:uuid:4a9f3e1b-6d8c-4b0a-9e2c-7c2f6b9a1d3e>\"");
    CHECK(contacts[0].param("reg-id") == "1");
}

TEST_CASE("an INVITE's SDP body and Content-Type come through (RFC 3261 §7.4)") {
    auto m = Message::parse(samples::jssip_invite());
    REQUIRE(m);
    CHECK_FALSE(m->validate());
    CHECK(m->content_type() == "application/sdp");
    CHECK(m->body() == samples::kSdpOffer);
}

TEST_CASE("compact header forms are expanded (RFC 3261 §7.3.3)") {
    const std::string wire =
        "OPTIONS sip:b@example.org SIP/2.0\r\n"
        "v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKc1\r\n"
        "f: <sip:a@example.org>;tag=1\r\n"
        "t: <sip:b@example.org>\r\n"
        "i: abc@192.0.2.1\r\n"
        "CSeq: 7 OPTIONS\r\n"
        "m: <sip:a@192.0.2.1>\r\n"
        "l: 0\r\n\r\n";
    auto m = Message::parse(wire);
    REQUIRE(m);
    CHECK_FALSE(m->validate());
    CHECK(m->top_via_sent_by() == "192.0.2.1:5060");
    CHECK(m->from_tag() == "1");
    CHECK(m->call_id() == "abc@192.0.2.1");
    CHECK(m->contacts().at(0).uri == "sip:a@192.0.2.1");
}

TEST_CASE("Allow, which libosip2 keeps apart from other headers, reads back after parsing") {
    const std::string wire =
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa1\r\n"
        "From: <sip:a@example.org>;tag=1\r\n"
        "To: <sip:b@example.org>;tag=2\r\n"
        "Call-ID: x@192.0.2.1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Allow: INVITE\r\n"
        "Allow: ACK, BYE\r\n"
        "Content-Length: 0\r\n\r\n";
    auto m = Message::parse(wire);
    REQUIRE(m);
    CHECK(m->header("Allow") == "INVITE");
    CHECK(m->header("allow", 1) == "ACK");
    CHECK(m->header("Allow", 2) == "BYE");
    CHECK_FALSE(m->header("Allow", 3));
}

TEST_CASE("a response copies Via, From, To, Call-ID and CSeq and adds a To tag (RFC 3261 §8.2.6)") {
    auto base = samples::jssip_invite();
    // A second Via below the browser's, as a proxy in front would add: order must survive.
    base.insert(base.find("Max-Forwards"), "Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKlower\r\n");
    auto req = Message::parse(base);
    REQUIRE(req);
    auto resp = Message::response(*req, 180, {}, "totag1");
    auto wire = resp.serialize();
    CAPTURE(wire);
    CHECK(wire.rfind("SIP/2.0 180 Ringing\r\n", 0) == 0);
    auto back = Message::parse(wire);
    REQUIRE(back);
    CHECK_FALSE(back->validate());
    CHECK(back->status() == 180);
    CHECK(back->via_count() == 2);
    CHECK(back->top_via_branch() == "z9hG4bK5301394");
    CHECK(back->from_tag() == "8fk2ra1dtq");
    CHECK(back->to_tag() == "totag1");
    CHECK(back->call_id() == "mvh2l0g3kcq1fo9tbhm5");
    CHECK(back->cseq() == 6215);
    CHECK(back->cseq_method() == "INVITE");
    CHECK(wire.find("Content-Length: 0") != std::string::npos);

    SUBCASE("100 Trying gets no tag") {
        auto trying = Message::response(*req, 100, {}, "totag1");
        CHECK(Message::parse(trying.serialize())->to_tag().empty());
    }
    SUBCASE("an existing To tag is kept") {
        auto again = Message::response(back->is_request() ? *back : *req, 200, "OK", "totag1");
        auto in_dialog = Message::response(*Message::parse(again.serialize()), 200, {}, "other");
        // response() of a response is unusual, but it shows the tag rule: one tag, the first.
        CHECK(Message::parse(in_dialog.serialize())->to_tag() == "totag1");
    }
    SUBCASE("a given reason phrase is used") {
        auto r = Message::response(*req, 486, "Busy Here (callee)", "t");
        CHECK(r.serialize().rfind("SIP/2.0 486 Busy Here (callee)\r\n", 0) == 0);
    }
}

TEST_CASE("a built INVITE round-trips with SDP and Content-Length (RFC 3261 §8.1.1)") {
    auto rnd = counter();
    auto req = Message::request("INVITE", "sip:+15550123@127.0.0.1:5070;transport=udp");
    REQUIRE(req);
    const auto branch = new_branch(rnd);
    CHECK(branch == "z9hG4bK0000000000000001");
    req->push_via("UDP", "127.0.0.1:5062", branch);
    req->set_from("\"Bob\" <sip:bob@example.org>;tag=" + new_tag(rnd));
    req->set_to("<sip:+15550123@127.0.0.1>");
    req->set_call_id(new_call_id(rnd, "127.0.0.1"));
    req->set_cseq(1, "INVITE");
    req->add_contact("<sip:turnbridge@127.0.0.1:5062>");
    req->set_max_forwards(70);
    req->set_body("application/sdp", samples::kSdpOffer);
    const auto wire = req->serialize();
    CAPTURE(wire);
    CHECK(wire.rfind("INVITE sip:+15550123@127.0.0.1:5070;transport=udp SIP/2.0\r\n", 0) == 0);
    CHECK(wire.find("Content-Length: " + std::to_string(samples::kSdpOffer.size()) + "\r\n") != std::string::npos);
    auto back = Message::parse(wire);
    REQUIRE(back);
    CHECK_FALSE(back->validate());
    CHECK(back->top_via_branch() == branch);
    CHECK(back->from_tag() == "0000000000000002");
    CHECK(back->call_id() == "00000000000000030000000000000004@127.0.0.1");
    CHECK(back->max_forwards() == 70);
    CHECK(back->body() == samples::kSdpOffer);
    CHECK(back->content_type() == "application/sdp");

    SUBCASE("set_body replaces a parsed message's body (one body, its length)") {
        back->set_body("application/sdp", "v=0\r\n");
        CHECK(back->body() == "v=0\r\n");
        const auto wire2 = back->serialize();
        CHECK(wire2.find("Content-Length: 5\r\n") != std::string::npos);
        auto again = Message::parse(wire2);
        REQUIRE(again);
        CHECK(again->body() == "v=0\r\n");
    }

    SUBCASE("push_via puts the new Via on top, pop_via removes it (RFC 3261 §18.2.1)") {
        back->push_via("UDP", "192.0.2.1", "z9hG4bKtop");
        CHECK(back->via_count() == 2);
        CHECK(Message::parse(back->serialize())->top_via_branch() == "z9hG4bKtop");
        back->pop_via();
        CHECK(Message::parse(back->serialize())->top_via_branch() == branch);
    }
}

TEST_CASE("malformed input is an error naming the problem, never a crash") {
    struct Row { std::string name; std::string wire; bool parses; std::string_view what; };
    const std::string via = "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n";
    const std::string ids = "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c1\r\n";
    const std::vector<Row> rows = {
        {"empty", "", false, "empty message"},
        {"garbage", "hello world\r\n\r\n", false, ""},
        {"binary", std::string("\x16\x03\x01\x00\x05\x00\x00\x00", 8), false, ""},
        {"no Via", "BYE sip:b@x SIP/2.0\r\n" + ids + "CSeq: 2 BYE\r\n\r\n", true, "missing Via"},
        {"no CSeq", "BYE sip:b@x SIP/2.0\r\n" + via + ids + "\r\n", true, "missing CSeq"},
        {"no Call-ID", "BYE sip:b@x SIP/2.0\r\n" + via + "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCSeq: 2 BYE\r\n\r\n",
         true, "missing Call-ID"},
        {"CSeq method mismatch", "BYE sip:b@x SIP/2.0\r\n" + via + ids + "CSeq: 2 INVITE\r\n\r\n", true,
         "CSeq method differs from request method"},
        {"CSeq too big", "BYE sip:b@x SIP/2.0\r\n" + via + ids + "CSeq: 4294967296 BYE\r\n\r\n", true, "bad CSeq number"},
        {"bad Max-Forwards", "BYE sip:b@x SIP/2.0\r\n" + via + ids + "CSeq: 2 BYE\r\nMax-Forwards: lots\r\n\r\n", true,
         "bad Max-Forwards"},
    };
    for (const auto& r : rows) {
        CAPTURE(r.name);
        auto m = Message::parse(r.wire);
        if (!r.parses) {
            REQUIRE_FALSE(m);
            CHECK(m.error().code == Status::BadRequest);
            if (!r.what.empty()) CHECK(m.error().what == r.what);
            continue;
        }
        REQUIRE(m);
        auto err = m->validate();
        REQUIRE(err);
        CHECK(err->what == r.what);
        CHECK(err->code == Status::BadRequest);
    }
    CHECK_FALSE(Message::request("INVITE", "not a uri"));
}

TEST_CASE("Contact: * is reported as the wildcard (RFC 3261 §10.2.2)") {
    const std::string wire =
        "REGISTER sip:example.org SIP/2.0\r\n"
        "Via: SIP/2.0/WS x.invalid;branch=z9hG4bK2\r\n"
        "From: <sip:alice@example.org>;tag=1\r\nTo: <sip:alice@example.org>\r\nCall-ID: r1\r\n"
        "CSeq: 3 REGISTER\r\nContact: *\r\nExpires: 0\r\n\r\n";
    auto m = Message::parse(wire);
    REQUIRE(m);
    REQUIRE(m->contacts().size() == 1);
    CHECK(m->contacts()[0].uri == "*");
}

TEST_CASE("parsing from many threads at once is safe (parser_init runs once)") {
    std::vector<std::thread> threads;
    std::vector<int> ok(4, 0);
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) ok[static_cast<std::size_t>(t)] += Message::parse(samples::kJsSipRegister) ? 1 : 0;
        });
    for (auto& t : threads) t.join();
    for (int n : ok) CHECK(n == 50);
}

TEST_CASE("a Via that is not SIP/2.0/transport sent-by is refused, at any position (RFC 3261 §20.42)") {
    const std::string ids = "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\n";
    int checked = 0;
    for (const std::string bad : {"Via: SIP/3.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n",
                                  "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nVia: SIP/4.0/UDP 192.0.2.2\r\n"}) {
        CAPTURE(bad);
        auto m = Message::parse("BYE sip:b@x SIP/2.0\r\n" + bad + ids + "\r\n");
        if (!m) continue;  // refused by the parser already: also fine
        auto err = m->validate();
        REQUIRE(err);
        CHECK(err->what == "bad Via");
        ++checked;
    }
    CHECK(checked == 2);
}
