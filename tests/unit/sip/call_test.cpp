// SPDX-License-Identifier: Apache-2.0
// The B2BUA call: a browser leg and a trunk leg over one TransactionLayer, stepped by hand.
#include <doctest/doctest.h>

#include "samples.hpp"
#include "turnbridge/sip/call.hpp"
#include "turnbridge/sip/refer.hpp"

using namespace turnbridge::sip;
using namespace std::chrono_literals;

namespace {

constexpr TransportId kBrowser = 1, kTrunk = 2, kWsA = 11, kWsB = 12;

struct FakeMedia : MediaSdp {
    bool refuse = false;
    bool empty_offer = false;   // a pass-through of an INVITE without SDP
    std::optional<std::string> map_offer(bool from_browser, const std::string& sdp) override {
        if (refuse) return std::nullopt;
        if (empty_offer) return std::string();
        return std::string(from_browser ? "v=0\r\ns=to-trunk\r\n" : "v=0\r\ns=to-browser\r\n") + "x=" + std::to_string(sdp.size()) + "\r\n";
    }
    std::optional<std::string> map_answer(bool from_browser, const std::string&) override {
        return std::string(from_browser ? "v=0\r\ns=answer-to-trunk\r\n" : "v=0\r\ns=answer-to-browser\r\n");
    }
    // Mid-call offers (issue 13): what answer_locally says, and what it and current_offer saw.
    LocalAnswer::Kind local = LocalAnswer::Kind::Relay;
    std::vector<std::string> local_offers, taken;
    LocalAnswer answer_locally(bool, const std::string& sdp, bool force) override {
        local_offers.push_back(sdp);
        if (force && local == LocalAnswer::Kind::Relay) return {LocalAnswer::Kind::Answered, "v=0\r\ns=local\r\n"};
        return {local, local == LocalAnswer::Kind::Answered ? "v=0\r\ns=local\r\n" : ""};
    }
    std::optional<std::string> current_offer(bool to_browser) override {
        if (to_browser) return std::nullopt;
        return std::string("v=0\r\ns=current\r\n");
    }
    bool take_answer(bool, const std::string& sdp) override {
        taken.push_back(sdp);
        return true;
    }
    // Issue 14: the browser leg handed to another browser (a trunk's REFER).
    bool refuse_handover = false;
    std::vector<std::string> handed;
    std::optional<std::string> new_browser_offer() override { return std::string("v=0\r\ns=handover\r\n"); }
    bool take_new_browser(const std::string& sdp) override {
        handed.push_back(sdp);
        return !refuse_handover;
    }
};

Message msg(const std::string& wire) {
    auto m = Message::parse(wire);
    REQUIRE(m);
    return std::move(*m);
}

struct Bench {
    TransactionLayer layer;
    FakeMedia media;
    Time now = Time{} + 100h;
    std::vector<Action> out;
    std::optional<Call> call;
    std::uint64_t n = 0;
    Random random = [this] { return ++n; };
    LegAddress browser{kBrowser, true, {"WSS", "gw.example.org", "<sip:gw@gw.example.org;transport=ws>"}};
    LegAddress trunk{kTrunk, false, {"UDP", "127.0.0.1:5062", "<sip:gw@127.0.0.1:5062>"}};

    // Everything the call sent on `t` since the last look, parsed.
    std::vector<Message> sent(TransportId t) {
        std::vector<Message> v;
        std::vector<Action> keep;
        for (auto& a : out) {
            if (auto* s = std::get_if<Send>(&a); s && s->transport == t) v.push_back(msg(s->bytes));
            else keep.push_back(std::move(a));
        }
        out = std::move(keep);
        return v;
    }
    // A message arrives on `t`; whatever the layer reports goes to the call, as the lead's router would.
    void arrive(TransportId t, Message m) {
        std::vector<Action> in;
        layer.on_message(now, t, t != kTrunk, std::move(m), in);
        dispatch(in);
    }
    void dispatch(std::vector<Action>& in) {
        for (auto& a : in) {
            if (auto* r = std::get_if<ResponseIn>(&a)) call->on_response(now, r->tx, r->response, layer, out);
            else if (auto* q = std::get_if<RequestIn>(&a)) call->on_request(now, q->tx, q->request, layer, out);
            else if (auto* c = std::get_if<CancelIn>(&a)) call->on_cancel(now, c->invite_tx, layer, out);
            else if (auto* t = std::get_if<TransactionTimeout>(&a)) call->on_timeout(now, t->tx, layer, out);
            else out.push_back(std::move(a));
        }
    }
    // The browser's INVITE comes in; the call starts toward the trunk.
    void start_outbound(TrunkAccount acc = {"127.0.0.1:5070", ";transport=udp", "gw", "s3cret", ""}) {
        std::vector<Action> in;
        layer.on_message(now, kBrowser, true, msg(samples::jssip_invite()), in);
        std::string tx;
        for (auto& a : in)
            if (auto* q = std::get_if<RequestIn>(&a)) {
                tx = q->tx;
                call.emplace(now, tx, q->request, browser, trunk, acc, media, random, layer, out);
            } else if (std::holds_alternative<Send>(a)) {
                out.push_back(std::move(a));
            }
        REQUIRE(call);
    }
};

Message trunk_reply(const Message& invite, int status, bool sdp = false) {
    auto r = Message::response(invite, status, {}, "trunktag");
    if (status > 100 && status < 300) r.add_contact("<sip:+15550123@127.0.0.1:5070>");
    if (sdp) r.set_body("application/sdp", "v=0\r\ns=trunk-answer\r\n");
    return msg(r.serialize());
}

// An in-dialog request from the trunk on the dialog our INVITE `inv` made.
Message from_trunk(const std::string& method, const Message& inv, std::uint32_t cseq) {
    auto m = std::move(*Message::request(method, "sip:gw@127.0.0.1:5062"));
    m.push_via("UDP", "127.0.0.1:5070", "z9hG4bKtrunk" + method);
    m.set_from("<sip:+15550123@127.0.0.1:5070>;tag=trunktag");
    m.set_to(inv.from_header());
    m.set_call_id(inv.call_id());
    m.set_cseq(cseq, method);
    return m;
}

}  // namespace

TEST_CASE("outbound call: browser INVITE -> trunk INVITE, 180 and 200 mapped back, ACK to the trunk, BYE both ways") {
    Bench b;
    b.start_outbound();
    auto to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].status() == 100);
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    const auto inv = std::move(to_trunk[0]);
    CHECK(inv.request_uri() == "sip:+15550123@127.0.0.1:5070;transport=udp");
    CHECK(inv.from()->uri == "sip:alice@127.0.0.1:5062");
    CHECK(inv.to()->uri == "sip:+15550123@127.0.0.1:5070");
    CHECK(inv.body() == "v=0\r\ns=to-trunk\r\nx=" + std::to_string(samples::kSdpOffer.size()) + "\r\n");
    CHECK(inv.call_id() != "mvh2l0g3kcq1fo9tbhm5");  // a B2BUA: its own Call-ID toward the trunk

    b.arrive(kTrunk, trunk_reply(inv, 180));
    to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].status() == 180);
    const auto browser_tag = to_browser[0].to_tag();
    CHECK_FALSE(browser_tag.empty());
    CHECK(b.call->state() == Call::State::Early);

    b.arrive(kTrunk, trunk_reply(inv, 200, true));
    to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].method() == "ACK");
    CHECK(to_trunk[0].request_uri() == "sip:+15550123@127.0.0.1:5070");
    to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].status() == 200);
    CHECK(to_browser[0].to_tag() == browser_tag);
    CHECK(to_browser[0].body() == "v=0\r\ns=answer-to-browser\r\n");
    CHECK(to_browser[0].contacts().at(0).uri == "sip:gw@gw.example.org;transport=ws");
    CHECK(b.call->state() == Call::State::Confirmed);

    SUBCASE("the browser hangs up") {
        std::string bye = "BYE sip:gw@gw.example.org;transport=ws SIP/2.0\r\n"
                          "Via: SIP/2.0/WSS 3b5kq2ugmd6u.invalid;branch=z9hG4bKbye1\r\n"
                          "From: \"Alice\" <sip:alice@example.org>;tag=8fk2ra1dtq\r\n"
                          "To: <sip:+15550123@example.org>;tag=" + browser_tag + "\r\n"
                          "Call-ID: mvh2l0g3kcq1fo9tbhm5\r\nCSeq: 6216 BYE\r\nContent-Length: 0\r\n\r\n";
        CHECK(b.call->matches(msg(bye)));
        b.arrive(kBrowser, msg(bye));
        to_browser = b.sent(kBrowser);
        REQUIRE(to_browser.size() == 1);
        CHECK(to_browser[0].status() == 200);
        to_trunk = b.sent(kTrunk);
        REQUIRE(to_trunk.size() == 1);
        CHECK(to_trunk[0].method() == "BYE");
        CHECK(to_trunk[0].to_tag() == "trunktag");
        CHECK(to_trunk[0].call_id() == inv.call_id());
        CHECK(b.call->state() == Call::State::Ended);
    }
    SUBCASE("a re-INVITE (hold) from the browser goes to the trunk and the answers come back (RFC 3261 §14)") {
        std::string reinv = samples::jssip_invite("z9hG4bKreinv1");
        reinv.replace(reinv.find("To: <sip:+15550123@example.org>"), 31, "To: <sip:+15550123@example.org>;tag=" + browser_tag);
        reinv.replace(reinv.find("CSeq: 6215 INVITE"), 17, "CSeq: 6216 INVITE");
        b.arrive(kBrowser, msg(reinv));
        CHECK(b.sent(kBrowser).at(0).status() == 100);
        to_trunk = b.sent(kTrunk);
        REQUIRE(to_trunk.size() == 1);
        const auto re = std::move(to_trunk[0]);
        CHECK(re.method() == "INVITE");
        CHECK(re.call_id() == inv.call_id());
        CHECK(re.to_tag() == "trunktag");
        CHECK(re.cseq() == 2);
        CHECK(re.body().find("s=to-trunk") != std::string::npos);
        b.arrive(kTrunk, trunk_reply(re, 200, true));
        to_trunk = b.sent(kTrunk);
        REQUIRE(to_trunk.size() == 1);
        CHECK(to_trunk[0].method() == "ACK");
        CHECK(to_trunk[0].cseq() == 2);
        to_browser = b.sent(kBrowser);
        REQUIRE(to_browser.size() == 1);
        CHECK(to_browser[0].status() == 200);
        CHECK(to_browser[0].cseq() == 6216);
        CHECK(to_browser[0].to_tag() == browser_tag);
        CHECK(to_browser[0].body() == "v=0\r\ns=answer-to-browser\r\n");
        CHECK(b.call->state() == Call::State::Confirmed);

        // The trunk's own re-INVITE, refused by the browser with 488: the trunk hears 488.
        auto tre = from_trunk("INVITE", inv, 5);
        tre.add_contact("<sip:+15550123@127.0.0.1:5070>");
        tre.set_body("application/sdp", "v=0\r\ns=trunk-hold\r\n");
        b.arrive(kTrunk, msg(tre.serialize()));
        CHECK(b.sent(kTrunk).at(0).status() == 100);
        to_browser = b.sent(kBrowser);
        REQUIRE(to_browser.size() == 1);
        CHECK(to_browser[0].method() == "INVITE");
        CHECK(to_browser[0].request_uri() == "sip:kd3b3o1r@3b5kq2ugmd6u.invalid;transport=ws;ob");
        b.arrive(kBrowser, msg(Message::response(to_browser[0], 488, {}, "8fk2ra1dtq").serialize()));
        CHECK(b.sent(kBrowser).at(0).method() == "ACK");  // the client transaction ACKs the 488
        to_trunk = b.sent(kTrunk);
        REQUIRE(to_trunk.size() == 1);
        CHECK(to_trunk[0].status() == 488);
        CHECK(b.call->state() == Call::State::Confirmed);
    }
    SUBCASE("the trunk hangs up") {
        auto bye = from_trunk("BYE", inv, 1);
        b.arrive(kTrunk, msg(bye.serialize()));
        to_trunk = b.sent(kTrunk);
        REQUIRE(to_trunk.size() == 1);
        CHECK(to_trunk[0].status() == 200);
        to_browser = b.sent(kBrowser);
        REQUIRE(to_browser.size() == 1);
        CHECK(to_browser[0].method() == "BYE");
        CHECK(to_browser[0].request_uri() == "sip:kd3b3o1r@3b5kq2ugmd6u.invalid;transport=ws;ob");
        CHECK(to_browser[0].to_tag() == "8fk2ra1dtq");
        CHECK(b.call->state() == Call::State::Ended);
    }
}

TEST_CASE("trunk errors reach the browser mapped (486 stays 486, 3xx becomes 480)") {
    for (const auto& row : {std::pair{486, 486}, {404, 404}, {503, 503}, {302, 480}, {603, 603}}) {
        const int trunk_status = row.first, browser_status = row.second;  // clang: no lambda capture of bindings
        CAPTURE(trunk_status);
        Bench b;
        b.start_outbound();
        b.sent(kBrowser);
        const auto inv = std::move(b.sent(kTrunk).at(0));
        b.arrive(kTrunk, trunk_reply(inv, trunk_status));
        auto to_trunk = b.sent(kTrunk);
        REQUIRE(to_trunk.size() == 1);
        CHECK(to_trunk[0].method() == "ACK");  // the transaction ACKs the error (§17.1.1.3)
        auto to_browser = b.sent(kBrowser);
        REQUIRE(to_browser.size() == 1);
        CHECK(to_browser[0].status() == browser_status);
        CHECK(b.call->state() == Call::State::Ended);
        CHECK(b.call->final_status() == browser_status);
    }
}

TEST_CASE("a trunk's 407 to our INVITE is answered once with credentials (RFC 3261 §22.2)") {
    Bench b;
    b.start_outbound();
    b.sent(kBrowser);
    const auto inv = std::move(b.sent(kTrunk).at(0));
    auto challenge = Message::response(inv, 407, {}, "trunktag");
    challenge.add_auth_header(AuthHeader::ProxyAuthenticate, "Digest realm=\"trunk\", nonce=\"n1\", qop=\"auth\"");
    b.arrive(kTrunk, msg(challenge.serialize()));
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 2);
    CHECK(to_trunk[0].method() == "ACK");
    const auto& retry = to_trunk[1];
    CHECK(retry.method() == "INVITE");
    CHECK(retry.cseq() == 2);
    CHECK(retry.call_id() == inv.call_id());
    CHECK(retry.top_via_branch() != inv.top_via_branch());
    REQUIRE(retry.auth_headers(AuthHeader::ProxyAuthorization).size() == 1);
    CHECK(b.sent(kBrowser).empty());
    // Refused again: the browser hears 503, not a loop.
    auto again = Message::response(retry, 407, {}, "trunktag2");
    again.add_auth_header(AuthHeader::ProxyAuthenticate, "Digest realm=\"trunk\", nonce=\"n2\", qop=\"auth\"");
    b.arrive(kTrunk, msg(again.serialize()));
    CHECK(b.sent(kBrowser).at(0).status() == 503);
}

TEST_CASE("the browser's CANCEL: 487 to the browser, CANCEL to the trunk (RFC 3261 §9)") {
    Bench b;
    b.start_outbound();
    b.sent(kBrowser);
    const auto inv = std::move(b.sent(kTrunk).at(0));
    b.arrive(kTrunk, trunk_reply(inv, 180));
    b.sent(kBrowser);
    auto cancel = samples::jssip_invite();
    cancel.replace(0, 6, "CANCEL");
    cancel.replace(cancel.find("CSeq: 6215 INVITE"), 17, "CSeq: 6215 CANCEL");
    b.arrive(kBrowser, msg(cancel));
    auto to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 2);
    CHECK(to_browser[0].status() == 200);
    CHECK(to_browser[0].cseq_method() == "CANCEL");
    CHECK(to_browser[1].status() == 487);
    CHECK(to_browser[1].cseq_method() == "INVITE");
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].method() == "CANCEL");
    CHECK(to_trunk[0].top_via_branch() == inv.top_via_branch());
    b.arrive(kTrunk, trunk_reply(inv, 487));
    CHECK(b.sent(kTrunk).at(0).method() == "ACK");
    CHECK(b.sent(kBrowser).empty());
    CHECK(b.call->state() == Call::State::Ended);

    SUBCASE("a 200 racing the CANCEL is ACKed and hung up") {
        // (the 487 above already ended the INVITE here; a fresh call shows the race)
        Bench c;
        c.start_outbound();
        c.sent(kBrowser);
        const auto inv2 = std::move(c.sent(kTrunk).at(0));
        c.arrive(kTrunk, trunk_reply(inv2, 180));
        c.sent(kBrowser);
        c.arrive(kBrowser, msg(cancel));
        c.sent(kBrowser);
        c.sent(kTrunk);
        c.arrive(kTrunk, trunk_reply(inv2, 200, true));
        auto t = c.sent(kTrunk);
        REQUIRE(t.size() == 2);
        CHECK(t[0].method() == "ACK");
        CHECK(t[1].method() == "BYE");
        CHECK(c.sent(kBrowser).empty());
    }
}

TEST_CASE("no final answer from the trunk: the browser gets 503 when Timer B fires (the trunk is down)") {
    Bench b;
    b.start_outbound();
    b.sent(kBrowser);
    b.sent(kTrunk);
    const Time start = b.now;
    for (int guard = 0; guard < 50 && b.layer.next_wake() && b.call->state() != Call::State::Ended; ++guard) {
        b.now = *b.layer.next_wake();
        std::vector<Action> fired;
        b.layer.on_timer(b.now, fired);
        b.dispatch(fired);
    }
    auto to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].status() == 503);
    CHECK(b.now - start == 32s);
}

TEST_CASE("inbound call forks to every binding; the first 200 wins and the other fork is cancelled") {
    Bench b;
    const std::string wire =
        "INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKin1\r\n"
        "From: <sip:+15557654@127.0.0.1:5070>;tag=callertag\r\n"
        "To: <sip:+15550123@127.0.0.1:5062>\r\n"
        "Call-ID: inbound-1@127.0.0.1\r\nCSeq: 1 INVITE\r\n"
        "Contact: <sip:+15557654@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\n"
        "Content-Length: 20\r\n\r\nv=0\r\ns=trunk-offer\r\n";
    std::vector<Action> in;
    b.layer.on_message(b.now, kTrunk, false, msg(wire), in);
    const std::vector<Binding> bindings = {{"sip:a1@h1.invalid;transport=ws", kWsA, b.now + 600s, "", "", "c1", 1},
                                           {"sip:a2@h2.invalid;transport=ws", kWsB, b.now + 600s, "", "", "c2", 1}};
    for (auto& a : in)
        if (auto* q = std::get_if<RequestIn>(&a))
            b.call.emplace(b.now, q->tx, q->request, b.trunk, TrunkAccount{}, bindings, "test", "example.org", b.browser.local, b.media,
                           b.random, b.layer, b.out);
        else if (std::holds_alternative<Send>(a)) b.out.push_back(std::move(a));
    REQUIRE(b.call);
    CHECK(b.sent(kTrunk).at(0).status() == 100);
    auto fork_a = b.sent(kWsA);
    auto fork_b = b.sent(kWsB);
    REQUIRE(fork_a.size() == 1);
    REQUIRE(fork_b.size() == 1);
    CHECK(fork_a[0].request_uri() == "sip:a1@h1.invalid;transport=ws");
    CHECK(fork_a[0].to()->uri == "sip:test@example.org");
    CHECK(fork_a[0].from()->uri == "sip:+15557654@example.org");
    CHECK(fork_a[0].body() == "v=0\r\ns=to-browser\r\nx=20\r\n");

    auto ring = [&](const Message& inv, int status, const std::string& tag, bool sdp = false) {
        auto r = Message::response(inv, status, {}, tag);
        if (status > 100 && status < 300) r.add_contact("<sip:x@h.invalid;transport=ws>");
        if (sdp) r.set_body("application/sdp", "v=0\r\ns=browser-answer\r\n");
        return msg(r.serialize());
    };
    b.arrive(kWsA, ring(fork_a[0], 180, "ta"));
    CHECK(b.sent(kTrunk).at(0).status() == 180);
    b.arrive(kWsB, ring(fork_b[0], 180, "tb"));
    CHECK(b.sent(kTrunk).empty());  // ringing is reported once
    b.arrive(kWsB, ring(fork_b[0], 200, "tb", true));
    auto to_b = b.sent(kWsB);
    REQUIRE(to_b.size() == 1);
    CHECK(to_b[0].method() == "ACK");
    auto to_a = b.sent(kWsA);
    REQUIRE(to_a.size() == 1);
    CHECK(to_a[0].method() == "CANCEL");
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].status() == 200);
    CHECK(to_trunk[0].body() == "v=0\r\ns=answer-to-trunk\r\n");
    CHECK(b.call->state() == Call::State::Confirmed);
    // The cancelled fork's 487 changes nothing for the trunk.
    b.arrive(kWsA, ring(fork_a[0], 487, "ta"));
    CHECK(b.sent(kTrunk).empty());
}

TEST_CASE("inbound call with nobody registered gets 480") {
    Bench b;
    const std::string wire =
        "INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKin2\r\n"
        "From: <sip:+15557654@127.0.0.1:5070>;tag=c\r\nTo: <sip:+15550123@127.0.0.1:5062>\r\n"
        "Call-ID: inbound-2@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:x@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";
    std::vector<Action> in;
    b.layer.on_message(b.now, kTrunk, false, msg(wire), in);
    for (auto& a : in)
        if (auto* q = std::get_if<RequestIn>(&a))
            b.call.emplace(b.now, q->tx, q->request, b.trunk, TrunkAccount{}, std::vector<Binding>{}, "test", "example.org", b.browser.local,
                           b.media, b.random, b.layer, b.out);
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].status() == 480);
    CHECK(b.call->state() == Call::State::Ended);
}

TEST_CASE("SDP the media side refuses gets 488 (RFC 3261 §21.4.26)") {
    Bench b;
    b.media.refuse = true;
    b.start_outbound();
    auto to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 2);
    CHECK(to_browser[1].status() == 488);
    CHECK(b.sent(kTrunk).empty());
}

TEST_CASE("an INVITE libosip2 cannot write (an empty offer) is refused with 488, and Timer B finds nothing to answer") {
    // Found by tests/fuzz/sip_router.cpp: the trunk INVITE was never sent, its copy was no message,
    // and Timer B built a 503 from that copy (a null read in libosip2).
    Bench b;
    b.media.empty_offer = true;
    b.start_outbound();
    auto to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 2);
    CHECK(to_browser[1].status() == 488);
    CHECK(b.sent(kTrunk).empty());
    CHECK(b.call->state() == Call::State::Ended);
    std::vector<Action> in;
    b.now += 64s;
    b.layer.on_timer(b.now, in);
    b.dispatch(in);
    CHECK(b.sent(kBrowser).empty());
}

namespace {

// An outbound call answered by the trunk with `headers` on its 200; returns our INVITE.
Message confirmed_outbound(Bench& b, std::initializer_list<std::pair<const char*, const char*>> headers = {},
                           SessionTimerConfig timers = {}) {
    TrunkAccount acc{"127.0.0.1:5070", ";transport=udp", "gw", "s3cret", ""};
    acc.timers = timers;
    b.start_outbound(acc);
    b.sent(kBrowser);
    auto inv = std::move(b.sent(kTrunk).at(0));
    auto ok = trunk_reply(inv, 200, true);
    for (const auto& [n, v] : headers) ok.add_header(n, v);
    b.arrive(kTrunk, msg(ok.serialize()));
    REQUIRE(b.sent(kTrunk).at(0).method() == "ACK");
    REQUIRE(b.sent(kBrowser).at(0).status() == 200);
    REQUIRE(b.call->state() == Call::State::Confirmed);
    return inv;
}

// A trunk INVITE (`extra` headers, `sdp` body or none) to one browser binding on kWsA.
void start_inbound(Bench& b, const std::string& branch, const std::string& extra, const std::string& sdp,
                   const TrunkAccount& account = {}) {
    const std::string wire =
        "INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=" + branch + "\r\n"
        "From: <sip:+15557654@127.0.0.1:5070>;tag=callertag\r\n"
        "To: <sip:+15550123@127.0.0.1:5062>\r\n"
        "Call-ID: inbound-" + branch + "@127.0.0.1\r\nCSeq: 1 INVITE\r\n" + extra +
        "Contact: <sip:+15557654@127.0.0.1:5070>\r\n" + (sdp.empty() ? "" : "Content-Type: application/sdp\r\n") +
        "Content-Length: " + std::to_string(sdp.size()) + "\r\n\r\n" + sdp;
    std::vector<Action> in;
    b.layer.on_message(b.now, kTrunk, false, msg(wire), in);
    const std::vector<Binding> bindings = {{"sip:a1@h1.invalid;transport=ws", kWsA, b.now + 600s, "", "", "c1", 1}};
    for (auto& a : in)
        if (auto* q = std::get_if<RequestIn>(&a))
            b.call.emplace(b.now, q->tx, q->request, b.trunk, account, bindings, "test", "example.org",
                           b.browser.local, b.media, b.random, b.layer, b.out);
        else if (std::holds_alternative<Send>(a)) b.out.push_back(std::move(a));
}

}  // namespace

TEST_CASE("our INVITE to the trunk offers session timers and UPDATE (RFC 4028 §7.1, RFC 3311 §6)") {
    Bench b;
    b.start_outbound();
    const auto inv = std::move(b.sent(kTrunk).at(0));
    CHECK(inv.has_option_tag("supported", "timer"));
    CHECK(inv.header("session-expires") == "1800");
    CHECK(inv.header("min-se") == "90");
    CHECK(inv.has_option_tag("allow", "UPDATE"));
}

TEST_CASE("a 422 from the trunk: the INVITE again with the Session-Expires its Min-SE asks for (RFC 4028 §7.3)") {
    Bench b;
    b.start_outbound();
    b.sent(kBrowser);
    const auto inv = std::move(b.sent(kTrunk).at(0));
    auto too_small = trunk_reply(inv, 422);
    too_small.add_header("Min-SE", "1900");
    b.arrive(kTrunk, msg(too_small.serialize()));
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 2);   // the ACK for the 422, the new INVITE
    CHECK(to_trunk[0].method() == "ACK");
    CHECK(to_trunk[1].method() == "INVITE");
    CHECK(to_trunk[1].cseq() == inv.cseq() + 1);
    CHECK(to_trunk[1].header("session-expires") == "1900");
    CHECK(to_trunk[1].header("min-se") == "1900");
    const auto wire = to_trunk[1].serialize();
    CHECK(wire.find("Session-Expires") == wire.rfind("Session-Expires"));   // the old one is gone
    CHECK(b.sent(kBrowser).empty());
}

TEST_CASE("trunk refreshes are answered here and never reach the browser (RFC 4028 §9, RFC 3311, RFC 3264 §8)") {
    Bench b;
    const auto inv = confirmed_outbound(b, {{"Session-Expires", "90;refresher=uas"}, {"Require", "timer"}});
    CHECK_FALSE(b.call->session_timer().we_refresh());
    SUBCASE("an SDP-less re-INVITE: 200 with our current offer, the answer taken from the ACK (RFC 3261 §14.2)") {
        auto re = from_trunk("INVITE", inv, 2);
        re.add_contact("<sip:+15550123@10.0.0.7:5070>");
        re.add_header("Supported", "timer");
        re.add_header("Session-Expires", "90;refresher=uac");
        b.arrive(kTrunk, msg(re.serialize()));
        auto to_trunk = b.sent(kTrunk);
        REQUIRE(to_trunk.size() == 2);
        CHECK(to_trunk[0].status() == 100);
        CHECK(to_trunk[1].status() == 200);
        CHECK(to_trunk[1].body() == "v=0\r\ns=current\r\n");
        CHECK(to_trunk[1].header("session-expires") == "90;refresher=uac");
        CHECK(to_trunk[1].has_option_tag("require", "timer"));
        CHECK(to_trunk[1].contacts().at(0).uri == "sip:gw@127.0.0.1:5062");
        auto ack = from_trunk("ACK", inv, 2);
        ack.set_body("application/sdp", "v=0\r\ns=answer-in-ack\r\n");
        b.arrive(kTrunk, msg(ack.serialize()));
        REQUIRE(b.media.taken.size() == 1);
        CHECK(b.media.taken[0] == "v=0\r\ns=answer-in-ack\r\n");
        // The re-INVITE refreshed the target (§12.2): our next request goes to its new Contact.
        b.call->hang_up(b.now, b.layer, b.out);
        CHECK(b.sent(kTrunk).at(0).request_uri() == "sip:+15550123@10.0.0.7:5070");
        CHECK(b.sent(kBrowser).at(0).method() == "BYE");
        return;
    }
    SUBCASE("an SDP-less UPDATE: 200 (RFC 3311 §5.2)") {
        auto up = from_trunk("UPDATE", inv, 2);
        up.add_header("Session-Expires", "90;refresher=uac");
        up.add_header("Supported", "timer");
        b.arrive(kTrunk, msg(up.serialize()));
        auto to_trunk = b.sent(kTrunk);
        REQUIRE(to_trunk.size() == 1);
        CHECK(to_trunk[0].status() == 200);
        CHECK(to_trunk[0].body().empty());
        CHECK(to_trunk[0].header("session-expires") == "90;refresher=uac");
    }
    SUBCASE("a re-INVITE the media side answers (same version, new address): 200 from here") {
        b.media.local = MediaSdp::LocalAnswer::Kind::Answered;
        auto re = from_trunk("INVITE", inv, 2);
        re.add_contact("<sip:+15550123@127.0.0.1:5070>");
        re.set_body("application/sdp", "v=0\r\ns=same\r\n");
        b.arrive(kTrunk, msg(re.serialize()));
        auto to_trunk = b.sent(kTrunk);
        REQUIRE(to_trunk.size() == 2);
        CHECK(to_trunk[1].status() == 200);
        CHECK(to_trunk[1].body() == "v=0\r\ns=local\r\n");
    }
    SUBCASE("a re-INVITE with SDP we cannot read: 488, and the call goes on (RFC 3261 §14.2)") {
        b.media.local = MediaSdp::LocalAnswer::Kind::Refused;
        auto re = from_trunk("INVITE", inv, 2);
        re.add_contact("<sip:+15550123@127.0.0.1:5070>");
        re.set_body("application/sdp", "garbage");
        b.arrive(kTrunk, msg(re.serialize()));
        CHECK(b.sent(kTrunk).at(1).status() == 488);
        CHECK(b.call->state() == Call::State::Confirmed);
    }
    CHECK(b.sent(kBrowser).empty());
    CHECK(b.call->state() == Call::State::Confirmed);
}

TEST_CASE("a trunk that stops refreshing: BYE both ways before the session expires, reason session-expired (RFC 4028 §10)") {
    Bench b;
    const auto inv = confirmed_outbound(b, {{"Session-Expires", "90;refresher=uas"}});
    const auto answered = b.now;
    REQUIRE(b.call->next_wake() == answered + 90s - 30s);   // min(32, 90/3) early
    b.now = answered + 59s;
    b.call->on_timer(b.now, b.layer, b.out);
    CHECK(b.sent(kTrunk).empty());
    // A refresh (an UPDATE) restarts the clock.
    b.now = answered + 50s;
    auto up = from_trunk("UPDATE", inv, 2);
    up.add_header("Session-Expires", "90;refresher=uac");
    up.add_header("Supported", "timer");
    b.arrive(kTrunk, msg(up.serialize()));
    CHECK(b.sent(kTrunk).at(0).status() == 200);
    b.now = answered + 100s;
    b.call->on_timer(b.now, b.layer, b.out);
    CHECK(b.sent(kTrunk).empty());
    b.now = answered + 110s;
    b.call->on_timer(b.now, b.layer, b.out);
    CHECK(b.sent(kTrunk).at(0).method() == "BYE");
    CHECK(b.sent(kBrowser).at(0).method() == "BYE");
    CHECK(b.call->state() == Call::State::Ended);
    CHECK(b.call->end_reason() == "session-expired");
}

TEST_CASE("refresher=uac in the trunk's 200: we refresh at half the interval, by UPDATE when allowed (RFC 4028 §7.4, §10)") {
    Bench b;
    const auto answered = b.now;
    SUBCASE("the trunk allows UPDATE") {
        confirmed_outbound(b, {{"Session-Expires", "120;refresher=uac"}, {"Allow", "INVITE, ACK, BYE, UPDATE"}});
        CHECK(b.call->session_timer().we_refresh());
        CHECK(b.call->next_wake() == answered + 60s);
        b.now = answered + 60s;
        b.call->on_timer(b.now, b.layer, b.out);
        auto to_trunk = b.sent(kTrunk);
        REQUIRE(to_trunk.size() == 1);
        CHECK(to_trunk[0].method() == "UPDATE");
        CHECK(to_trunk[0].body().empty());
        CHECK(to_trunk[0].header("session-expires") == "120;refresher=uac");
        CHECK(b.call->next_wake() == answered + 120s);   // one refresh at a time
        auto ok = trunk_reply(to_trunk[0], 200);
        ok.add_header("Session-Expires", "120;refresher=uac");
        b.arrive(kTrunk, msg(ok.serialize()));
        CHECK(b.call->next_wake() == answered + 120s);   // 60 + 60
        CHECK(b.sent(kTrunk).empty());
    }
    SUBCASE("no UPDATE in its Allow: a re-INVITE with our current session, ACKed") {
        confirmed_outbound(b, {{"Session-Expires", "120;refresher=uac"}});
        b.now = answered + 60s;
        b.call->on_timer(b.now, b.layer, b.out);
        auto to_trunk = b.sent(kTrunk);
        REQUIRE(to_trunk.size() == 1);
        CHECK(to_trunk[0].method() == "INVITE");
        CHECK(to_trunk[0].body() == "v=0\r\ns=current\r\n");
        auto ok = trunk_reply(to_trunk[0], 200, true);
        ok.add_header("Session-Expires", "120;refresher=uac");
        b.arrive(kTrunk, msg(ok.serialize()));
        to_trunk = b.sent(kTrunk);
        REQUIRE(to_trunk.size() == 1);
        CHECK(to_trunk[0].method() == "ACK");
        CHECK(b.media.taken.size() == 1);
    }
    CHECK(b.sent(kBrowser).empty());
    CHECK(b.call->state() == Call::State::Confirmed);
}

TEST_CASE("our refresh answered 481: the dialog is gone, both legs end (RFC 4028 §10, RFC 3261 §12.2.1.2)") {
    Bench b;
    const auto answered = b.now;
    confirmed_outbound(b, {{"Session-Expires", "120;refresher=uac"}, {"Allow", "UPDATE"}});
    b.now = answered + 60s;
    b.call->on_timer(b.now, b.layer, b.out);
    auto up = std::move(b.sent(kTrunk).at(0));
    b.arrive(kTrunk, msg(trunk_reply(up, 481).serialize()));
    CHECK(b.sent(kBrowser).at(0).method() == "BYE");
    CHECK(b.call->state() == Call::State::Ended);
    CHECK(b.call->end_reason() == "session-expired");
}

TEST_CASE("a trunk INVITE with Session-Expires below our Min-SE gets 422 with Min-SE (RFC 4028 §8.1)") {
    Bench b;
    start_inbound(b, "z9hG4bKin422", "Supported: timer\r\nSession-Expires: 60\r\n", "v=0\r\ns=trunk-offer\r\n");
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 2);
    CHECK(to_trunk[1].status() == 422);
    CHECK(to_trunk[1].header("min-se") == "90");
    CHECK(b.sent(kWsA).empty());
}

TEST_CASE("an inbound INVITE without SDP (late offer): our offer in the 200, the trunk's answer taken from its ACK (RFC 3261 §13.2.1)") {
    Bench b;
    start_inbound(b, "z9hG4bKlate", "", "");
    auto to_browser = b.sent(kWsA);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].body().find("s=to-browser") != std::string::npos);   // the media side's own offer
    b.arrive(kWsA, msg(Message::response(to_browser[0], 200, {}, "browsertag").serialize()));
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 2);
    CHECK(to_trunk[0].status() == 100);
    CHECK(to_trunk[1].status() == 200);
    CHECK(to_trunk[1].body() == "v=0\r\ns=answer-to-trunk\r\n");   // here: our offer
    auto ack = std::move(*Message::request("ACK", "sip:gw@127.0.0.1:5062"));
    ack.push_via("UDP", "127.0.0.1:5070", "z9hG4bKlateack");
    ack.set_from("<sip:+15557654@127.0.0.1:5070>;tag=callertag");
    ack.set_to(to_trunk[1].to_header());
    ack.set_call_id("inbound-z9hG4bKlate@127.0.0.1");
    ack.set_cseq(1, "ACK");
    ack.set_body("application/sdp", "v=0\r\ns=trunk-answer\r\n");
    b.arrive(kTrunk, msg(ack.serialize()));
    REQUIRE(b.media.taken.size() == 1);
    CHECK(b.media.taken[0] == "v=0\r\ns=trunk-answer\r\n");
}

namespace {

// A browser call with late_offer = true: the INVITE we sent the trunk (checked to have no SDP).
Message start_late_offer(Bench& b, MediaSdp& media) {
    TrunkAccount acc{"127.0.0.1:5070", ";transport=udp", "gw", "s3cret", ""};
    acc.late_offer = true;
    std::vector<Action> in;
    b.layer.on_message(b.now, kBrowser, true, msg(samples::jssip_invite()), in);
    for (auto& a : in)
        if (auto* q = std::get_if<RequestIn>(&a))
            b.call.emplace(b.now, q->tx, q->request, b.browser, b.trunk, acc, media, b.random, b.layer, b.out);
    auto inv = std::move(b.sent(kTrunk).at(0));
    CHECK(inv.body().empty());
    return inv;
}

// A reliable provisional from the trunk (RFC 3262 §3: Require: 100rel and an RSeq).
Message reliable_reply(const Message& inv, int status, std::string_view rseq, bool sdp = false) {
    auto r = trunk_reply(inv, status, sdp);
    r.add_header("Require", "100rel");
    r.add_header("RSeq", rseq);
    return r;
}

}  // namespace

TEST_CASE("late_offer = true: our INVITE to the trunk has no SDP; the ACK answers the offer in its 200 (RFC 3261 §13.2.1)") {
    struct LateMedia : FakeMedia {
        std::optional<LateAnswers> answer_late_offer(const std::string& offer) override {
            return LateAnswers{"v=0\r\ns=ack-answer\r\n", "v=0\r\ns=browser-answer " + std::to_string(offer.size()) + "\r\n"};
        }
    };
    Bench b;
    LateMedia late;
    auto inv = start_late_offer(b, late);
    b.arrive(kTrunk, trunk_reply(inv, 200, true));
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].method() == "ACK");
    CHECK(to_trunk[0].body() == "v=0\r\ns=ack-answer\r\n");
    auto to_browser = b.sent(kBrowser);
    CHECK(to_browser.back().status() == 200);
    CHECK(to_browser.back().body().find("s=browser-answer") != std::string::npos);
}

TEST_CASE("late_offer = true: the trunk's offer in a reliable 183 is answered in the PRACK; the 200 changes nothing (RFC 3262 §5)") {
    struct LateMedia : FakeMedia {
        int asked = 0;
        std::optional<LateAnswers> answer_late_offer(const std::string&) override {
            ++asked;
            return LateAnswers{"v=0\r\ns=prack-answer\r\n", "v=0\r\ns=browser-answer\r\n"};
        }
    };
    Bench b;
    LateMedia late;
    auto inv = start_late_offer(b, late);
    auto early = reliable_reply(inv, 183, "1", true);   // with the trunk's offer
    b.arrive(kTrunk, msg(early.serialize()));
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].method() == "PRACK");
    CHECK(to_trunk[0].header("rack") == "1 1 INVITE");
    CHECK(to_trunk[0].body() == "v=0\r\ns=prack-answer\r\n");
    auto to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].status() == 183);
    CHECK(to_browser[0].body() == "v=0\r\ns=browser-answer\r\n");
    b.arrive(kTrunk, msg(early.serialize()));   // a retransmission: nothing new
    CHECK(b.sent(kTrunk).empty());
    CHECK(b.sent(kBrowser).empty());
    b.arrive(kTrunk, msg(Message::response(to_trunk[0], 200).serialize()));
    b.arrive(kTrunk, trunk_reply(inv, 200, true));   // the offer repeated: no new offer (RFC 3261 §13.2.1)
    to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].method() == "ACK");
    CHECK(to_trunk[0].body().empty());
    to_browser = b.sent(kBrowser);
    REQUIRE(!to_browser.empty());
    CHECK(to_browser.back().status() == 200);
    CHECK(to_browser.back().body() == "v=0\r\ns=browser-answer\r\n");
    CHECK(late.asked == 1);
}

// --- RFC 3262: reliable provisionals and PRACK on the trunk leg ----------------------------

namespace {

// A request from the trunk in the early dialog of its inbound call (start_inbound's `branch`).
Message inbound_request(const std::string& method, const std::string& branch, const Message& our_response,
                        std::uint32_t cseq, const std::string& rack) {
    auto m = std::move(*Message::request(method, "sip:gw@127.0.0.1:5062"));
    m.push_via("UDP", "127.0.0.1:5070", "z9hG4bK" + method + std::to_string(cseq) + rack.substr(0, 1));
    m.set_from("<sip:+15557654@127.0.0.1:5070>;tag=callertag");
    m.set_to(our_response.to_header());
    m.set_call_id("inbound-" + branch + "@127.0.0.1");
    m.set_cseq(cseq, method);
    if (!rack.empty()) m.add_header("RAck", rack);
    return msg(m.serialize());
}

// The trunk's INVITE with `extra`, answered 180 by the browser: what the trunk got since.
std::vector<Message> ringing_inbound(Bench& b, const std::string& branch, const std::string& extra,
                                     const TrunkAccount& account = {}) {
    start_inbound(b, branch, extra, "v=0\r\ns=trunk-offer\r\n", account);
    auto to_browser = b.sent(kWsA);
    REQUIRE(to_browser.size() == 1);
    b.arrive(kWsA, msg(Message::response(to_browser[0], 180, {}, "browsertag").serialize()));
    return b.sent(kTrunk);
}

}  // namespace

TEST_CASE("100rel outbound: Supported on our INVITE; each new reliable provisional PRACKed once with its RAck (RFC 3262 §4)") {
    Bench b;
    b.start_outbound();
    b.sent(kBrowser);
    std::string wire;
    for (const auto& a : b.out)
        if (const auto* snd = std::get_if<Send>(&a); snd && snd->transport == kTrunk) wire.assign(snd->bytes.begin(), snd->bytes.end());
    CHECK(wire.find("Supported: 100rel, timer\r\n") != std::string::npos);   // one header: some peers read only the first
    auto inv = std::move(b.sent(kTrunk).at(0));
    CHECK(inv.has_option_tag("supported", "100rel"));
    CHECK(inv.has_option_tag("allow", "PRACK"));
    auto early = reliable_reply(inv, 183, "7", true);
    b.arrive(kTrunk, msg(early.serialize()));
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].method() == "PRACK");
    CHECK(to_trunk[0].header("rack") == "7 1 INVITE");
    CHECK(to_trunk[0].cseq() == 2);
    CHECK(to_trunk[0].request_uri() == "sip:+15550123@127.0.0.1:5070");   // the 183's Contact
    CHECK(to_trunk[0].to_tag() == "trunktag");
    auto to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].status() == 183);   // early media goes on to the browser
    CHECK(to_browser[0].body() == "v=0\r\ns=answer-to-browser\r\n");
    CHECK(!to_browser[0].has_option_tag("require", "100rel"));   // the browser leg is not reliable

    b.arrive(kTrunk, msg(early.serialize()));   // a retransmission: no second PRACK, nothing new
    CHECK(b.sent(kTrunk).empty());
    CHECK(b.sent(kBrowser).empty());
    auto skipped = reliable_reply(inv, 180, "9");        // RSeq 9 after 7: out of order, not acknowledged
    b.arrive(kTrunk, msg(skipped.serialize()));
    CHECK(b.sent(kTrunk).empty());
    auto next = reliable_reply(inv, 180, "8");
    b.arrive(kTrunk, msg(next.serialize()));
    to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].header("rack") == "8 1 INVITE");
    CHECK(to_trunk[0].cseq() == 3);
    b.arrive(kTrunk, msg(Message::response(to_trunk[0], 200).serialize()));   // the PRACK's 200: nothing to do
    b.arrive(kTrunk, trunk_reply(inv, 200, true));
    to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].method() == "ACK");
    CHECK(b.call->state() == Call::State::Confirmed);
}

TEST_CASE("100rel off for the realm: no Supported: 100rel, and a trunk's Require: 100rel gets 420 Unsupported (RFC 3262 §4, RFC 3261 §8.2.2.3)") {
    TrunkAccount off;
    off.rel100 = false;
    Bench b;
    start_inbound(b, "z9hG4bKno100rel", "Require: 100rel\r\n", "v=0\r\ns=trunk-offer\r\n", off);
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(!to_trunk.empty());
    CHECK(b.sent(kWsA).empty());
    CHECK(to_trunk.back().status() == 420);
    CHECK(to_trunk.back().header("unsupported") == "100rel");
    CHECK(b.call->state() == Call::State::Ended);
    Bench o;
    TrunkAccount acc{"127.0.0.1:5070", ";transport=udp", "gw", "s3cret", ""};
    acc.rel100 = false;
    o.start_outbound(acc);
    CHECK(!o.sent(kTrunk).at(0).has_option_tag("supported", "100rel"));
}

TEST_CASE("100rel inbound: our 180 is reliable, retransmitted at T1 doubling until the PRACK; a PRACK for an unknown RSeq gets 481 (RFC 3262 §3)") {
    Bench b;
    const std::string branch = "z9hG4bKrel";
    auto to_trunk = ringing_inbound(b, branch, "Require: 100rel\r\n");
    REQUIRE(to_trunk.size() == 2);
    CHECK(to_trunk[0].status() == 100);
    const auto ringing = std::move(to_trunk[1]);
    CHECK(ringing.status() == 180);
    CHECK(ringing.has_option_tag("require", "100rel"));
    CHECK(ringing.header("rseq") == "1");
    REQUIRE(b.call->next_wake() == b.now + 500ms);
    b.now += 500ms;
    b.call->on_timer(b.now, b.layer, b.out);
    to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].header("rseq") == "1");
    CHECK(b.call->next_wake() == b.now + 1s);   // doubled
    b.now += 400ms;
    b.call->on_timer(b.now, b.layer, b.out);
    CHECK(b.sent(kTrunk).empty());

    b.arrive(kTrunk, inbound_request("PRACK", branch, ringing, 2, "5 1 INVITE"));   // no such RSeq
    to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].status() == 481);
    CHECK(b.call->state() == Call::State::Early);   // the call goes on
    b.arrive(kTrunk, inbound_request("PRACK", branch, ringing, 3, "1 1 INVITE"));
    to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].status() == 200);
    CHECK(to_trunk[0].cseq_method() == "PRACK");
    CHECK(!b.call->next_wake());   // acknowledged: no more retransmissions
    b.now += 10s;
    b.call->on_timer(b.now, b.layer, b.out);
    CHECK(b.sent(kTrunk).empty());
    CHECK(b.call->state() == Call::State::Early);
}

TEST_CASE("100rel inbound: a trunk that only supports it gets reliable provisionals too; no PRACK in 64*T1: 504 and the browsers cancelled (RFC 3262 §3)") {
    Bench b;
    auto to_trunk = ringing_inbound(b, "z9hG4bKnoprack", "Supported: 100rel\r\n");
    REQUIRE(to_trunk.size() == 2);
    CHECK(to_trunk[1].header("rseq") == "1");
    int resent = 0;
    for (int i = 0; i < 100 && b.call->next_wake() && b.call->state() == Call::State::Early; ++i) {
        b.now = *b.call->next_wake();
        b.call->on_timer(b.now, b.layer, b.out);
        for (auto& m : b.sent(kTrunk)) {
            if (m.status() == 180) ++resent;
            else CHECK(m.status() == 504);
        }
    }
    CHECK(resent == 6);   // at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; the 504 at 32 s
    CHECK(b.call->state() == Call::State::Ended);
    CHECK(b.call->final_status() == 504);
    auto to_browser = b.sent(kWsA);
    REQUIRE(!to_browser.empty());
    CHECK(to_browser.back().method() == "CANCEL");
}

TEST_CASE("100rel inbound: the browser answers before the PRACK: the 200 ends the retransmissions, a late PRACK still gets 200") {
    Bench b;
    const std::string branch = "z9hG4bKrelok";
    start_inbound(b, branch, "Require: 100rel\r\n", "v=0\r\ns=trunk-offer\r\n");
    auto to_browser = b.sent(kWsA);
    REQUIRE(to_browser.size() == 1);
    b.arrive(kWsA, msg(Message::response(to_browser[0], 180, {}, "browsertag").serialize()));
    auto ringing = std::move(b.sent(kTrunk).back());
    b.arrive(kWsA, msg(Message::response(to_browser[0], 200, {}, "browsertag").serialize()));
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(!to_trunk.empty());
    CHECK(to_trunk.back().status() == 200);
    CHECK(b.call->state() == Call::State::Confirmed);
    b.arrive(kTrunk, inbound_request("PRACK", branch, ringing, 2, "1 1 INVITE"));
    to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].status() == 200);
    b.now += 2s;
    b.call->on_timer(b.now, b.layer, b.out);
    CHECK(b.sent(kTrunk).empty());
}

// Issue 14: failover to the trunk's next target (RFC 3263 §4.3).
namespace {

constexpr TransportId kTrunk2 = 3;

struct FailoverBench : Bench {
    int asked = 0;
    bool has_next = true;
    void arm() {
        call->set_failover(now, [this]() -> std::optional<LegAddress> {
            ++asked;
            if (!has_next) return std::nullopt;
            has_next = false;
            return LegAddress{kTrunk2, false, {"UDP", "127.0.0.1:5062", "<sip:gw@127.0.0.1:5062>"}};
        });
    }
    // The browser calls; failover is armed; the INVITE to the first target.
    Message first_invite() {
        start_outbound();
        arm();
        sent(kBrowser);
        return std::move(sent(kTrunk).at(0));
    }
    void tick(Time to) {
        now = to;
        std::vector<Action> fired;
        layer.on_timer(now, fired);
        call->on_timer(now, layer, out);
        dispatch(fired);
    }
};

}  // namespace

TEST_CASE("failover: which final answers move to the next target (503 and 408 do; busy, declined, not found do not)") {
    CHECK(Call::fails_over(503));
    CHECK(Call::fails_over(408));
    for (int status : {486, 603, 404, 480, 500, 403, 200, 180}) CHECK_FALSE(Call::fails_over(status));
}

TEST_CASE("failover: a 503 sends the INVITE to the next target at once; its 200 reaches the browser") {
    FailoverBench b;
    const auto first = b.first_invite();
    b.arrive(kTrunk, trunk_reply(first, 503));
    CHECK(b.sent(kTrunk).at(0).method() == "ACK");
    auto second = b.sent(kTrunk2);
    REQUIRE(second.size() == 1);
    CHECK(second[0].method() == "INVITE");
    CHECK(second[0].call_id() == first.call_id());
    CHECK(second[0].cseq() == first.cseq() + 1);
    CHECK(second[0].request_uri() == first.request_uri());
    CHECK(b.sent(kBrowser).empty());   // the browser hears nothing of the failed target
    CHECK(b.call->targets_tried() == 2);
    b.arrive(kTrunk2, trunk_reply(second[0], 200, true));
    auto to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].status() == 200);
    CHECK(b.call->state() == Call::State::Confirmed);
}

TEST_CASE("failover: 486 is not retried elsewhere; a 503 with no target left reaches the browser") {
    for (int status : {486, 503}) {
        CAPTURE(status);
        FailoverBench b;
        if (status == 503) b.has_next = false;
        const auto first = b.first_invite();
        b.arrive(kTrunk, trunk_reply(first, status));
        CHECK(b.sent(kTrunk2).empty());
        auto to_browser = b.sent(kBrowser);
        REQUIRE(to_browser.size() == 1);
        CHECK(to_browser[0].status() == status);
        CHECK(b.asked == (status == 503 ? 1 : 0));
    }
}

TEST_CASE("failover: a UDP target silent for kTryingWait is abandoned (no more retransmissions) for the next") {
    FailoverBench b;
    b.first_invite();
    const Time start = b.now;
    REQUIRE(b.call->next_wake());
    CHECK(*b.call->next_wake() == start + Call::kTryingWait);
    b.tick(start + 1s);   // Timer A retransmissions meanwhile: still the first target
    CHECK(b.sent(kTrunk2).empty());
    b.sent(kTrunk);
    b.tick(start + Call::kTryingWait);
    auto second = b.sent(kTrunk2);
    REQUIRE(second.size() == 1);
    CHECK(second[0].method() == "INVITE");
    b.sent(kTrunk);   // Timer A's copy due at 1.5 s went out in that tick
    // The first target's transaction is gone: nothing more goes there, even at Timer B.
    for (auto t = start + 3s; t < start + 40s; t += 1s) b.tick(t);
    CHECK(b.sent(kTrunk).empty());
}

TEST_CASE("failover: a 100 Trying within kTryingWait keeps the call on its target") {
    FailoverBench b;
    const auto first = b.first_invite();
    b.arrive(kTrunk, trunk_reply(first, 100));
    CHECK_FALSE(b.call->next_wake());
    b.tick(b.now + 3s);
    CHECK(b.sent(kTrunk2).empty());
    CHECK(b.asked == 0);
}

// --- issue 14: transfers the trunk asks for (call_refer_in.cpp) -----------------------------

namespace {

// An inbound call answered by the browser on kWsA; returns the 200 the trunk got.
Message answered_inbound(Bench& b, const std::string& branch) {
    start_inbound(b, branch, "", "v=0\r\ns=trunk-offer\r\n");
    auto to_a = b.sent(kWsA);
    REQUIRE(to_a.size() == 1);
    auto ok = Message::response(to_a[0], 200, {}, "atag");
    ok.add_contact("<sip:a@h1.invalid;transport=ws>");
    ok.set_body("application/sdp", "v=0\r\ns=a-answer\r\n");
    b.arrive(kWsA, msg(ok.serialize()));
    CHECK(b.sent(kWsA).at(0).method() == "ACK");
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(!to_trunk.empty());
    REQUIRE(to_trunk.back().status() == 200);
    return std::move(to_trunk.back());
}

Message trunk_refer(const std::string& branch, const Message& ok, std::uint32_t cseq, const std::string& refer_to) {
    auto m = inbound_request("REFER", branch, ok, cseq, "");
    if (!refer_to.empty()) m.add_header("Refer-To", refer_to);
    return msg(m.serialize());
}

// The sipfrag status of each NOTIFY in `v`, answering each 200 as the trunk would.
std::vector<int> notifies(Bench& b, const std::vector<Message>& v) {
    std::vector<int> out;
    for (const auto& m : v)
        if (m.method() == "NOTIFY") {
            CHECK(m.header("event").value_or("").starts_with("refer"));
            out.push_back(sipfrag_status(m.body()).value_or(0));
            b.arrive(kTrunk, msg(Message::response(m, 200).serialize()));
        }
    return out;
}

const Binding kBobBinding{"sip:bob@h2.invalid;transport=ws", kWsB, Time{} + 200h, "", "", "c2", 1};

void refer_to_bob(Bench& b) {
    b.call->set_refer_lookup([&b](const ReferTarget& t) -> std::optional<Call::ReferredUser> {
        if (t.user != "bob" || (!t.host.empty() && t.host != "example.org")) return std::nullopt;
        return Call::ReferredUser{"bob", {kBobBinding, {"sip:a1@h1.invalid;transport=ws", kWsA, b.now + 600s, "", "", "c1", 1}}};
    });
}

}  // namespace

TEST_CASE("a REFER from the trunk: 202, NOTIFY 100, the named user's browser rings; its answer takes the browser leg, the old browser gets BYE, NOTIFY 200 (RFC 3515)") {
    Bench b;
    const std::string branch = "z9hG4bKrefer1";
    const auto ok = answered_inbound(b, branch);
    refer_to_bob(b);
    b.arrive(kTrunk, trunk_refer(branch, ok, 2, "<sip:bob@example.org>"));
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 2);
    CHECK(to_trunk[0].status() == 202);
    to_trunk.erase(to_trunk.begin());
    CHECK(notifies(b, to_trunk) == std::vector<int>{100});
    CHECK(b.sent(kWsA).empty());   // the browser being transferred away does not ring again
    auto to_bob = b.sent(kWsB);
    REQUIRE(to_bob.size() == 1);
    CHECK(to_bob[0].method() == "INVITE");
    CHECK(to_bob[0].to()->uri == "sip:bob@example.org");
    CHECK(to_bob[0].from()->uri == "sip:+15557654@example.org");
    CHECK(to_bob[0].body() == "v=0\r\ns=handover\r\n");
    CHECK(b.call->transferring() == false);
    // One transfer at a time: another REFER meanwhile gets 491.
    b.arrive(kTrunk, trunk_refer(branch, ok, 3, "<sip:bob@example.org>"));
    CHECK(b.sent(kTrunk).at(0).status() == 491);

    b.arrive(kWsB, msg(Message::response(to_bob[0], 180, {}, "btag").serialize()));
    CHECK(notifies(b, b.sent(kTrunk)) == std::vector<int>{180});
    auto answer = Message::response(to_bob[0], 200, {}, "btag");
    answer.add_contact("<sip:bob@h2.invalid;transport=ws>");
    answer.set_body("application/sdp", "v=0\r\ns=bob-answer\r\n");
    b.arrive(kWsB, msg(answer.serialize()));
    CHECK(b.media.handed == std::vector<std::string>{"v=0\r\ns=bob-answer\r\n"});
    CHECK(b.sent(kWsB).at(0).method() == "ACK");
    auto to_a = b.sent(kWsA);
    REQUIRE(to_a.size() == 1);
    CHECK(to_a[0].method() == "BYE");
    CHECK(notifies(b, b.sent(kTrunk)) == std::vector<int>{200});
    CHECK(b.call->taken_over_by() == "bob");
    CHECK(b.call->state() == Call::State::Confirmed);
    // The old browser's own BYE (crossing ours) ends nothing: the call is bob's now.
    auto bye_a = Message::request("BYE", "sip:gw@gw.example.org");
    REQUIRE(bye_a);
    bye_a->push_via("WSS", "h1.invalid", "z9hG4bKbyea");
    bye_a->set_from(to_a[0].to_header());
    bye_a->set_to(to_a[0].from_header());
    bye_a->set_call_id(to_a[0].call_id());
    bye_a->set_cseq(5, "BYE");
    b.arrive(kWsA, msg(bye_a->serialize()));
    CHECK(b.sent(kWsA).at(0).status() == 200);
    CHECK(b.sent(kTrunk).empty());
    CHECK(b.call->state() == Call::State::Confirmed);
    // The trunk hangs up: the BYE goes to bob's browser.
    b.arrive(kTrunk, msg(inbound_request("BYE", branch, ok, 4, "").serialize()));
    CHECK(b.sent(kWsB).at(0).method() == "BYE");
    CHECK(b.sent(kWsA).empty());
    CHECK(b.call->state() == Call::State::Ended);
}

TEST_CASE("a REFER from the trunk: bad, foreign or unsupported targets are refused; a browser that declines leaves the call as it was") {
    Bench b;
    const std::string branch = "z9hG4bKrefer2";
    const auto ok = answered_inbound(b, branch);
    // No lookup (the router did not arm it): 403.
    b.arrive(kTrunk, trunk_refer(branch, ok, 2, "<sip:bob@example.org>"));
    CHECK(b.sent(kTrunk).at(0).status() == 403);
    refer_to_bob(b);
    std::uint32_t cseq = 2;
    // Not a structured binding: CHECK_MESSAGE's lambda cannot capture one (clang 14, the ASan build).
    for (const auto& row : std::vector<std::pair<std::string, int>>{
             {"", 400},                                              // no Refer-To (RFC 3515 §2.4.1)
             {"<sip:%zz@example.org>", 400},                         // malformed
             {"<http://example.org/>", 400},                         // no SIP or tel URI
             {"<sip:bob@evil.example>", 403},                        // outside the realm
             {"<sip:carol@example.org>", 403},                       // no user of the realm
             {"<sip:bob@example.org?Replaces=x%3Bto-tag%3D1%3Bfrom-tag%3D2>", 501}}) {
        const std::string& refer_to = row.first;
        const int want = row.second;
        b.arrive(kTrunk, trunk_refer(branch, ok, ++cseq, refer_to));
        const auto got = b.sent(kTrunk);
        REQUIRE(got.size() == 1);
        CHECK_MESSAGE(got[0].status() == want, refer_to);
    }
    CHECK(b.sent(kWsB).empty());
    // Accepted, but bob's browser is busy: NOTIFY 486, and the call stays with the first browser.
    b.arrive(kTrunk, trunk_refer(branch, ok, ++cseq, "<tel:bob>"));
    CHECK(b.sent(kTrunk).size() == 2);
    auto to_bob = b.sent(kWsB);
    REQUIRE(to_bob.size() == 1);
    b.arrive(kWsB, msg(Message::response(to_bob[0], 486, {}, "btag").serialize()));
    CHECK(notifies(b, b.sent(kTrunk)) == std::vector<int>{486});
    CHECK(b.sent(kWsB).at(0).method() == "ACK");   // the transaction layer's, for the 486
    CHECK(b.sent(kWsA).empty());
    CHECK(b.call->taken_over_by().empty());
    // A browser whose answer the media side cannot take is BYEd: 488 to the trunk.
    b.media.refuse_handover = true;
    b.arrive(kTrunk, trunk_refer(branch, ok, ++cseq, "<sip:bob@example.org>"));
    CHECK(b.sent(kTrunk).size() == 2);
    to_bob = b.sent(kWsB);
    REQUIRE(to_bob.size() == 1);
    auto answer = Message::response(to_bob[0], 200, {}, "btag2");
    answer.add_contact("<sip:bob@h2.invalid;transport=ws>");
    answer.set_body("application/sdp", "v=0\r\ns=bad\r\n");
    b.arrive(kWsB, msg(answer.serialize()));
    auto after = b.sent(kWsB);
    REQUIRE(after.size() == 2);
    CHECK(after[0].method() == "ACK");
    CHECK(after[1].method() == "BYE");
    CHECK(notifies(b, b.sent(kTrunk)) == std::vector<int>{488});
    CHECK(b.sent(kWsA).empty());
    // Nobody answers within kTransferWait: the fork is cancelled and the trunk hears 408.
    b.media.refuse_handover = false;
    b.arrive(kTrunk, trunk_refer(branch, ok, ++cseq, "<sip:bob@example.org>"));
    CHECK(b.sent(kTrunk).size() == 2);
    to_bob = b.sent(kWsB);
    REQUIRE(to_bob.size() == 1);
    b.arrive(kWsB, msg(Message::response(to_bob[0], 180, {}, "btag3").serialize()));   // a CANCEL follows a provisional (RFC 3261 §9.1)
    CHECK(notifies(b, b.sent(kTrunk)) == std::vector<int>{180});
    b.now += Call::kTransferWait;
    REQUIRE(b.call->next_wake());
    CHECK(*b.call->next_wake() <= b.now);
    b.call->on_timer(b.now, b.layer, b.out);
    CHECK(b.sent(kWsB).at(0).method() == "CANCEL");
    CHECK(notifies(b, b.sent(kTrunk)) == std::vector<int>{408});
    CHECK(b.call->state() == Call::State::Confirmed);
}

TEST_CASE("a REFER from the trunk on an outbound call: the named user's browser takes the browser leg over; BYE to the old one, NOTIFY 100, 180, 200 in the trunk's dialog (RFC 3515)") {
    Bench b;
    b.start_outbound();
    CHECK(b.sent(kBrowser).at(0).status() == 100);
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    const auto inv = std::move(to_trunk[0]);
    b.arrive(kTrunk, trunk_reply(inv, 200, true));
    CHECK(b.sent(kTrunk).at(0).method() == "ACK");
    auto to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 1);
    REQUIRE(to_browser[0].status() == 200);
    const auto browser_tag = to_browser[0].to_tag();
    const auto refer = [&](std::uint32_t cseq) {   // from_trunk's, with a branch of its own
        auto m = std::move(*Message::request("REFER", "sip:gw@127.0.0.1:5062"));
        m.push_via("UDP", "127.0.0.1:5070", "z9hG4bKtrunkrefer" + std::to_string(cseq));
        m.set_from("<sip:+15550123@127.0.0.1:5070>;tag=trunktag");
        m.set_to(inv.from_header());
        m.set_call_id(inv.call_id());
        m.set_cseq(cseq, "REFER");
        m.add_contact("<sip:+15550123@127.0.0.1:5070>");
        m.add_header("Refer-To", "<sip:bob@example.org>");
        return msg(m.serialize());
    };
    // Not armed (an agent's call, the test line): 403 as before.
    b.arrive(kTrunk, refer(2));
    CHECK(b.sent(kTrunk).at(0).status() == 403);
    // bob's browser, and one on the calling browser's own connection, which must not ring.
    b.call->set_refer_lookup([&b](const ReferTarget& t) -> std::optional<Call::ReferredUser> {
        if (t.user != "bob") return std::nullopt;
        return Call::ReferredUser{"bob", {kBobBinding, {"sip:a9@h1.invalid;transport=ws", kBrowser, b.now + 600s, "", "", "c9", 1}}};
    });
    b.arrive(kTrunk, refer(3));
    to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 2);
    CHECK(to_trunk[0].status() == 202);
    CHECK(to_trunk[0].to_tag() == inv.from_tag());   // our tag in the trunk's dialog
    CHECK(to_trunk[1].call_id() == inv.call_id());
    CHECK(to_trunk[1].to_tag() == "trunktag");
    to_trunk.erase(to_trunk.begin());
    CHECK(notifies(b, to_trunk) == std::vector<int>{100});
    CHECK(b.sent(kBrowser).empty());
    auto to_bob = b.sent(kWsB);
    REQUIRE(to_bob.size() == 1);
    CHECK(to_bob[0].method() == "INVITE");
    CHECK(to_bob[0].to()->uri == "sip:bob@example.org");
    CHECK(to_bob[0].from()->uri == "sip:+15550123@example.org");   // the number the first browser called
    CHECK(to_bob[0].body() == "v=0\r\ns=handover\r\n");
    b.arrive(kWsB, msg(Message::response(to_bob[0], 180, {}, "btag").serialize()));
    CHECK(notifies(b, b.sent(kTrunk)) == std::vector<int>{180});
    auto answer = Message::response(to_bob[0], 200, {}, "btag");
    answer.add_contact("<sip:bob@h2.invalid;transport=ws>");
    answer.set_body("application/sdp", "v=0\r\ns=bob-answer\r\n");
    b.arrive(kWsB, msg(answer.serialize()));
    CHECK(b.media.handed == std::vector<std::string>{"v=0\r\ns=bob-answer\r\n"});
    CHECK(b.sent(kWsB).at(0).method() == "ACK");
    to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].method() == "BYE");
    CHECK(to_browser[0].to_tag() == "8fk2ra1dtq");
    CHECK(notifies(b, b.sent(kTrunk)) == std::vector<int>{200});
    CHECK(b.call->taken_over_by() == "bob");
    CHECK(b.call->state() == Call::State::Confirmed);
    // The old browser's own BYE (crossing ours) ends nothing: the call is bob's now.
    std::string bye = "BYE sip:gw@gw.example.org;transport=ws SIP/2.0\r\n"
                      "Via: SIP/2.0/WSS 3b5kq2ugmd6u.invalid;branch=z9hG4bKbyeold\r\n"
                      "From: \"Alice\" <sip:alice@example.org>;tag=8fk2ra1dtq\r\n"
                      "To: <sip:+15550123@example.org>;tag=" + browser_tag + "\r\n"
                      "Call-ID: mvh2l0g3kcq1fo9tbhm5\r\nCSeq: 6216 BYE\r\nContent-Length: 0\r\n\r\n";
    b.arrive(kBrowser, msg(bye));
    CHECK(b.sent(kBrowser).at(0).status() == 200);
    CHECK(b.sent(kTrunk).empty());
    CHECK(b.call->state() == Call::State::Confirmed);
    // bob's re-INVITE (hold) goes to the trunk, its answer back to bob: bob is the browser leg.
    auto hold = std::move(*Message::request("INVITE", "sip:gw@gw.example.org;transport=ws"));
    hold.push_via("WSS", "h2.invalid", "z9hG4bKbobhold");
    hold.set_from(to_bob[0].to_header() + ";tag=btag");
    hold.set_to(to_bob[0].from_header());
    hold.set_call_id(to_bob[0].call_id());
    hold.set_cseq(1, "INVITE");
    hold.add_contact("<sip:bob@h2.invalid;transport=ws>");
    hold.set_body("application/sdp", "v=0\r\ns=bob-hold\r\n");
    b.arrive(kWsB, msg(hold.serialize()));
    CHECK(b.sent(kWsB).at(0).status() == 100);
    to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].method() == "INVITE");
    CHECK(to_trunk[0].to_tag() == "trunktag");
    CHECK(to_trunk[0].body().find("s=to-trunk") != std::string::npos);
    b.arrive(kTrunk, trunk_reply(to_trunk[0], 200, true));
    CHECK(b.sent(kTrunk).at(0).method() == "ACK");
    auto to_b = b.sent(kWsB);
    REQUIRE(to_b.size() == 1);
    CHECK(to_b[0].status() == 200);
    CHECK(to_b[0].body() == "v=0\r\ns=answer-to-browser\r\n");
    // The trunk hangs up: the BYE goes to bob's browser, none to the old one.
    b.arrive(kTrunk, msg(from_trunk("BYE", inv, 4).serialize()));
    CHECK(b.sent(kTrunk).at(0).status() == 200);
    CHECK(b.sent(kWsB).at(0).method() == "BYE");
    CHECK(b.sent(kBrowser).empty());
    CHECK(b.call->state() == Call::State::Ended);
}

TEST_CASE("an INVITE with Replaces naming the trunk's dialog takes it over; a Replaces of another dialog does not match (RFC 3891 §3)") {
    Bench b;
    const std::string branch = "z9hG4bKrepl";
    const auto ok = answered_inbound(b, branch);
    const auto invite = [&](const std::string& replaces) {
        auto m = Message::request("INVITE", "sip:gw@127.0.0.1:5062");
        m->push_via("UDP", "127.0.0.1:5071", "z9hG4bKnew" + std::to_string(replaces.size()));
        m->set_from("<sip:+15557654@127.0.0.1:5071>;tag=newtag");
        m->set_to("<sip:gw@127.0.0.1:5062>");
        m->set_call_id("replacing@127.0.0.1");
        m->set_cseq(1, "INVITE");
        m->add_contact("<sip:node2@127.0.0.1:5071>");
        m->add_header("Replaces", replaces);
        m->set_body("application/sdp", "v=0\r\ns=moved\r\n");
        return msg(m->serialize());
    };
    const std::string ours = "inbound-" + branch + "@127.0.0.1;to-tag=" + ok.to_tag() + ";from-tag=callertag";
    CHECK_FALSE(b.call->replaces_trunk_dialog(invite("nosuch@x;to-tag=" + ok.to_tag() + ";from-tag=callertag")));
    CHECK_FALSE(b.call->replaces_trunk_dialog(invite("inbound-" + branch + "@127.0.0.1;to-tag=zz;from-tag=callertag")));
    CHECK_FALSE(b.call->replaces_trunk_dialog(invite("inbound-" + branch + "@127.0.0.1;to-tag=" + ok.to_tag() + ";from-tag=other")));
    CHECK_FALSE(b.call->replaces_trunk_dialog(invite(ours + ";early-only")));   // the dialog is confirmed
    CHECK_FALSE(b.call->replaces_trunk_dialog(invite("not a replaces")));
    const auto inv = invite(ours);
    REQUIRE(b.call->replaces_trunk_dialog(inv));
    std::vector<Action> in;
    b.layer.on_message(b.now, kTrunk, false, inv.clone(), in);
    std::string tx;
    for (auto& a : in)
        if (auto* q = std::get_if<RequestIn>(&a)) tx = q->tx;
    REQUIRE(!tx.empty());
    b.call->replace_trunk_dialog(b.now, tx, inv, b.trunk, b.layer, b.out);
    auto to_trunk = b.sent(kTrunk);
    std::vector<std::string> seen;
    for (const auto& m : to_trunk) seen.push_back(m.is_request() ? m.method() + " " + m.call_id() : std::to_string(m.status()) + " " + m.call_id());
    REQUIRE(to_trunk.size() >= 2);
    CHECK(std::find(seen.begin(), seen.end(), "200 replacing@127.0.0.1") != seen.end());
    CHECK(std::find(seen.begin(), seen.end(), "BYE inbound-" + branch + "@127.0.0.1") != seen.end());
    CHECK(b.media.local_offers.back() == "v=0\r\ns=moved\r\n");
    CHECK(b.sent(kWsA).empty());   // the browser hears nothing of it
    CHECK(b.call->state() == Call::State::Confirmed);
    // The new dialog is the trunk leg now: its BYE ends the call toward the browser.
    auto bye = Message::request("BYE", "sip:gw@127.0.0.1:5062");
    bye->push_via("UDP", "127.0.0.1:5071", "z9hG4bKnewbye");
    bye->set_from("<sip:+15557654@127.0.0.1:5071>;tag=newtag");
    for (const auto& m : to_trunk)
        if (m.status() == 200 && m.call_id() == "replacing@127.0.0.1") bye->set_to(m.to_header());
    bye->set_call_id("replacing@127.0.0.1");
    bye->set_cseq(2, "BYE");
    b.arrive(kTrunk, msg(bye->serialize()));
    CHECK(b.sent(kWsA).at(0).method() == "BYE");
    CHECK(b.call->state() == Call::State::Ended);
}

TEST_CASE("transfer fallback: our own call to the target fails over to the trunk's next target on 503, like the call's INVITE") {
    FailoverBench b;
    const auto first = b.first_invite();
    b.arrive(kTrunk, trunk_reply(first, 200, true));
    auto ok = b.sent(kBrowser);
    REQUIRE(ok.size() == 1);
    REQUIRE(ok[0].status() == 200);
    CHECK(b.sent(kTrunk).at(0).method() == "ACK");
    const int asked_before = b.asked;
    // The browser's REFER (JsSIP's session.refer) in its dialog.
    auto refer = Message::request("REFER", "sip:gw@gw.example.org;transport=ws");
    REQUIRE(refer);
    refer->push_via("WSS", "3b5kq2ugmd6u.invalid", "z9hG4bKrefer");
    refer->set_from(ok[0].from_header());
    refer->set_to(ok[0].to_header());
    refer->set_call_id(ok[0].call_id());
    refer->set_cseq(6216, "REFER");
    refer->add_header("Refer-To", "<sip:+15557001@example.org>");
    b.arrive(kBrowser, msg(refer->serialize()));
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    REQUIRE(to_trunk[0].method() == "REFER");
    b.arrive(kTrunk, trunk_reply(to_trunk[0], 403));   // the trunk will not transfer: our own call
    auto fallback = b.sent(kTrunk);
    REQUIRE(fallback.size() == 1);
    CHECK(fallback[0].method() == "INVITE");
    b.arrive(kTrunk, msg(Message::response(fallback[0], 503, {}, "t503").serialize()));
    CHECK(b.asked == asked_before + 1);
    CHECK(b.sent(kTrunk).at(0).method() == "ACK");   // for the 503, and nothing else there
    auto moved = b.sent(kTrunk2);
    REQUIRE(moved.size() == 1);
    CHECK(moved[0].method() == "INVITE");
    CHECK(moved[0].call_id() == fallback[0].call_id());
    CHECK(moved[0].cseq() == fallback[0].cseq() + 1);
    auto answer = Message::response(moved[0], 200, {}, "target");
    answer.add_contact("<sip:+15557001@127.0.0.1:5072>");
    answer.set_body("application/sdp", "v=0\r\ns=target\r\n");
    b.arrive(kTrunk2, msg(answer.serialize()));
    CHECK(b.sent(kTrunk2).at(0).method() == "ACK");
    auto old = b.sent(kTrunk);
    REQUIRE(old.size() == 1);
    CHECK(old[0].method() == "BYE");   // the party the browser transferred away
    std::vector<int> frags;
    for (const auto& m : b.sent(kBrowser))
        if (m.method() == "NOTIFY") frags.push_back(sipfrag_status(m.body()).value_or(0));
    REQUIRE(!frags.empty());
    CHECK(frags.back() == 200);
    CHECK_FALSE(b.call->transferring());
}

TEST_CASE("transfer fallback on an inbound call: the trunk refuses the browser's REFER, our own call to the target goes out through the routed trunk (credentials, failover) and becomes the trunk leg; the old leg's BYE ends nothing") {
    Bench b;
    // The router's trunk for the number (SipRouter::arm_trunk_router): its first target on
    // kTrunk2, its next on kTrunk3, its account with a host and credentials.
    constexpr TransportId kTrunk3 = 4;
    std::string routed_number;
    int routed = 0, next_asked = 0;
    const std::string branch = "z9hG4bKinfb";
    start_inbound(b, branch, "", "v=0\r\ns=trunk-offer\r\n");
    const auto to_a = b.sent(kWsA);
    REQUIRE(to_a.size() == 1);
    auto ok_a = Message::response(to_a[0], 200, {}, "atag");
    ok_a.add_contact("<sip:a@h1.invalid;transport=ws>");
    ok_a.set_body("application/sdp", "v=0\r\ns=a-answer\r\n");
    b.arrive(kWsA, msg(ok_a.serialize()));
    CHECK(b.sent(kWsA).at(0).method() == "ACK");
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(!to_trunk.empty());
    const auto ok_trunk = std::move(to_trunk.back());
    REQUIRE(ok_trunk.status() == 200);
    b.call->set_trunk_router([&](std::string_view number) -> std::optional<Call::TrunkRoute> {
        ++routed;
        routed_number = number;
        TrunkAccount a;
        a.host = "carrier.example:5080";
        a.uri_params = ";transport=udp";
        a.username = "acct";
        a.password = "secret";
        a.identity = TrunkAccount::Identity::Pai;
        Call::NextTarget next = [&]() -> std::optional<LegAddress> {
            if (next_asked++ > 0) return std::nullopt;
            return LegAddress{kTrunk3, false, {"UDP", "127.0.0.1:5064", "<sip:gw@127.0.0.1:5064>"}};
        };
        return Call::TrunkRoute{LegAddress{kTrunk2, false, {"UDP", "127.0.0.1:5063", "<sip:gw@127.0.0.1:5063>"}},
                                std::move(a), std::move(next)};
    });
    // The browser's blind transfer (JsSIP's session.refer) in the dialog our INVITE made with it.
    const auto from_browser = [&](const std::string& method, std::uint32_t cseq) {
        auto m = std::move(*Message::request(method, "sip:gw@gw.example.org;transport=ws"));
        m.push_via("WSS", "h1.invalid", "z9hG4bKa" + method + std::to_string(cseq));
        m.set_from(ok_a.to_header());
        m.set_to(ok_a.from_header());
        m.set_call_id(to_a[0].call_id());
        m.set_cseq(cseq, method);
        return m;
    };
    auto refer = from_browser("REFER", 1);
    refer.add_header("Refer-To", "<sip:+15557001@example.org>");
    b.arrive(kWsA, msg(refer.serialize()));
    to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    REQUIRE(to_trunk[0].method() == "REFER");
    CHECK(to_trunk[0].call_id() == "inbound-" + branch + "@127.0.0.1");
    b.arrive(kTrunk, msg(Message::response(to_trunk[0], 403).serialize()));   // the trunk will not transfer
    auto to_browser = b.sent(kWsA);
    REQUIRE(to_browser.size() == 2);
    CHECK(to_browser[0].status() == 202);
    CHECK(sipfrag_status(to_browser[1].body()) == 100);
    CHECK(b.sent(kTrunk).empty());   // not back to where the trunk's INVITE came from
    CHECK(routed == 1);
    CHECK(routed_number == "+15557001");
    auto fallback = b.sent(kTrunk2);   // the routed trunk's first target
    REQUIRE(fallback.size() == 1);
    const auto first = std::move(fallback[0]);
    CHECK(first.method() == "INVITE");
    CHECK(first.request_uri() == "sip:+15557001@carrier.example:5080;transport=udp");   // the account's host
    CHECK(first.to()->uri == "sip:+15557001@carrier.example:5080");
    CHECK(first.from()->uri == "sip:+15550123@127.0.0.1:5063");   // the number the trunk called, our address there
    CHECK(first.header("P-Asserted-Identity").value_or("") == "<sip:+15550123@127.0.0.1:5063>");   // the account's identity
    CHECK(first.call_id() != ok_trunk.call_id());
    CHECK(first.body() == "v=0\r\ns=current\r\n");   // the trunk leg's session as it is now
    // The carrier challenges: answered once with the account's credentials (RFC 3261 §22.2).
    auto challenge = Message::response(first, 407, {}, "c407");
    challenge.add_auth_header(AuthHeader::ProxyAuthenticate, "Digest realm=\"carrier\", nonce=\"n1\", qop=\"auth\"");
    b.arrive(kTrunk2, msg(challenge.serialize()));
    auto to_carrier = b.sent(kTrunk2);
    REQUIRE(to_carrier.size() == 2);
    CHECK(to_carrier[0].method() == "ACK");
    const auto authed = std::move(to_carrier[1]);
    CHECK(authed.method() == "INVITE");
    CHECK(authed.call_id() == first.call_id());
    CHECK(authed.cseq() == first.cseq() + 1);
    const auto creds = authed.auth_headers(AuthHeader::ProxyAuthorization);
    REQUIRE(creds.size() == 1);
    CHECK(creds[0].find("username=\"acct\"") != std::string::npos);
    // That target is out of service: the trunk's next target (RFC 3263 §4.3), credentials kept.
    b.arrive(kTrunk2, msg(Message::response(authed, 503, {}, "c503").serialize()));
    CHECK(b.sent(kTrunk2).at(0).method() == "ACK");
    CHECK(next_asked == 1);
    fallback = b.sent(kTrunk3);
    REQUIRE(fallback.size() == 1);
    const auto inv = std::move(fallback[0]);
    CHECK(inv.method() == "INVITE");
    CHECK(inv.call_id() == first.call_id());
    CHECK(inv.cseq() == authed.cseq() + 1);
    CHECK(inv.request_uri() == first.request_uri());
    CHECK(inv.auth_headers(AuthHeader::ProxyAuthorization).size() == 1);
    CHECK(b.sent(kWsA).empty());   // the browser heard nothing of the retries

    b.arrive(kTrunk3, msg(Message::response(inv, 180, {}, "target").serialize()));
    to_browser = b.sent(kWsA);
    REQUIRE(to_browser.size() == 1);
    CHECK(sipfrag_status(to_browser[0].body()) == 180);
    auto answer = Message::response(inv, 200, {}, "target");
    answer.add_contact("<sip:+15557001@127.0.0.1:5072>");
    answer.add_header("Session-Expires", "120;refresher=uac");   // we refresh the new dialog (RFC 4028)
    answer.add_header("Allow", "INVITE, ACK, BYE, UPDATE");
    answer.set_body("application/sdp", "v=0\r\ns=target\r\n");
    const auto answered_at = b.now;
    b.arrive(kTrunk3, msg(answer.serialize()));
    to_carrier = b.sent(kTrunk3);
    REQUIRE(to_carrier.size() == 1);
    CHECK(to_carrier[0].method() == "ACK");
    CHECK(to_carrier[0].call_id() == inv.call_id());
    CHECK(to_carrier[0].request_uri() == "sip:+15557001@127.0.0.1:5072");
    to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].method() == "BYE");   // the party the browser transferred away, where it called from
    CHECK(to_trunk[0].call_id() == ok_trunk.call_id());
    CHECK(to_trunk[0].to_tag() == "callertag");
    CHECK(b.media.taken == std::vector<std::string>{"v=0\r\ns=target\r\n"});
    to_browser = b.sent(kWsA);
    REQUIRE(to_browser.size() == 1);
    CHECK(sipfrag_status(to_browser[0].body()) == 200);
    CHECK_FALSE(b.call->transferring());
    CHECK(b.call->state() == Call::State::Confirmed);
    // A retransmission of the target's 200 (our ACK lost) is ACKed again, and ends nothing.
    b.arrive(kTrunk3, msg(answer.serialize()));
    to_carrier = b.sent(kTrunk3);
    REQUIRE(to_carrier.size() == 1);
    CHECK(to_carrier[0].method() == "ACK");
    CHECK(b.call->state() == Call::State::Confirmed);

    // The old trunk leg's own BYE (crossing ours) ends nothing: its dialog is no longer the call's.
    const auto old_bye = inbound_request("BYE", branch, ok_trunk, 3, "");
    CHECK_FALSE(b.call->matches(old_bye));
    b.arrive(kTrunk, msg(old_bye.serialize()));
    CHECK(b.sent(kTrunk).at(0).status() == 481);
    CHECK(b.sent(kWsA).empty());
    CHECK(b.call->state() == Call::State::Confirmed);

    // An in-dialog request from the target, in the dialog our INVITE made.
    const auto from_target = [&](const std::string& method, std::uint32_t cseq) {
        auto m = std::move(*Message::request(method, "sip:gw@127.0.0.1:5064"));
        m.push_via("UDP", "127.0.0.1:5072", "z9hG4bKt" + method + std::to_string(cseq));
        m.set_from(answer.to_header());
        m.set_to(inv.from_header());
        m.set_call_id(inv.call_id());
        m.set_cseq(cseq, method);
        return m;
    };
    SUBCASE("the target hangs up: the BYE reaches the browser") {
        const auto bye = from_target("BYE", 7);
        CHECK(b.call->matches(bye));
        b.arrive(kTrunk3, msg(bye.serialize()));
        CHECK(b.sent(kTrunk3).at(0).status() == 200);
        to_browser = b.sent(kWsA);
        REQUIRE(to_browser.size() == 1);
        CHECK(to_browser[0].method() == "BYE");
        CHECK(b.call->state() == Call::State::Ended);
    }
    SUBCASE("the target's re-INVITE (hold) is relayed to the browser") {
        auto re = from_target("INVITE", 8);
        re.add_contact("<sip:+15557001@127.0.0.1:5072>");
        re.set_body("application/sdp", "v=0\r\ns=hold\r\n");
        b.arrive(kTrunk3, msg(re.serialize()));
        to_browser = b.sent(kWsA);
        REQUIRE(to_browser.size() == 1);
        CHECK(to_browser[0].method() == "INVITE");
        CHECK(to_browser[0].call_id() == to_a[0].call_id());
        CHECK(to_browser[0].body().find("s=to-browser") != std::string::npos);
    }
    SUBCASE("our session refresh goes in the target's dialog (RFC 4028 §7.4)") {
        CHECK(b.call->session_timer().we_refresh());
        b.now = answered_at + 60s;
        b.call->on_timer(b.now, b.layer, b.out);
        CHECK(b.sent(kTrunk).empty());
        to_trunk = b.sent(kTrunk3);
        REQUIRE(to_trunk.size() == 1);
        CHECK(to_trunk[0].method() == "UPDATE");
        CHECK(to_trunk[0].call_id() == inv.call_id());
        CHECK(to_trunk[0].request_uri() == "sip:+15557001@127.0.0.1:5072");
        b.arrive(kTrunk3, msg(Message::response(to_trunk[0], 200).serialize()));
        CHECK(b.call->state() == Call::State::Confirmed);
    }
    SUBCASE("the browser hangs up: the BYE goes to the target, not the old trunk leg") {
        b.arrive(kWsA, msg(from_browser("BYE", 2).serialize()));
        CHECK(b.sent(kWsA).at(0).status() == 200);
        CHECK(b.sent(kTrunk).empty());
        to_trunk = b.sent(kTrunk3);
        REQUIRE(to_trunk.size() == 1);
        CHECK(to_trunk[0].method() == "BYE");
        CHECK(to_trunk[0].call_id() == inv.call_id());
        CHECK(to_trunk[0].request_uri() == "sip:+15557001@127.0.0.1:5072");
        CHECK(b.call->state() == Call::State::Ended);
    }
}

// --- issue 14: attended transfer (call_attended.cpp) ------------------------------------------

namespace {

// An outbound call answered by the trunk: the browser's 200 (its dialog's tags) and our INVITE
// to the trunk (its dialog, for the trunk's own requests).
std::pair<Message, Message> answered_outbound(Bench& b) {
    b.start_outbound();
    b.sent(kBrowser);
    auto inv = std::move(b.sent(kTrunk).at(0));
    b.arrive(kTrunk, trunk_reply(inv, 200, true));
    b.sent(kTrunk);   // the ACK
    auto ok = b.sent(kBrowser);
    REQUIRE(ok.size() == 1);
    REQUIRE(ok[0].status() == 200);
    return {std::move(ok[0]), std::move(inv)};
}

// The browser's REFER in the dialog its 200 `ok` made (JsSIP's refer(target, {replaces})).
Message browser_refer(const Message& ok, std::uint32_t cseq, const std::string& refer_to) {
    auto refer = Message::request("REFER", "sip:gw@gw.example.org;transport=ws");
    REQUIRE(refer);
    refer->push_via("WSS", "3b5kq2ugmd6u.invalid", "z9hG4bKatt" + std::to_string(cseq));
    refer->set_from(ok.from_header());
    refer->set_to(ok.to_header());
    refer->set_call_id(ok.call_id());
    refer->set_cseq(cseq, "REFER");
    refer->add_header("Refer-To", refer_to);
    return msg(refer->serialize());
}

}  // namespace

TEST_CASE("attended transfer: a Replaces naming another call of the user joins the trunk legs; 202, NOTIFY 100 and 200, BYE to the browser (RFC 3891, RFC 3515)") {
    Bench b;
    const auto legs = answered_outbound(b);   // no structured bindings: clang 14 and doctest
    const Message& ok = legs.first;
    const Message& inv = legs.second;
    CHECK(b.call->joinable());
    const Replaces other{"other-call", "ourtag", "browsertag", false};
    std::vector<Replaces> asked;
    int verdict = 481;
    b.call->set_attended_join([&](Time, const Replaces& r, TransactionLayer&, std::vector<Action>&) {
        asked.push_back(r);
        return verdict;
    });
    const std::string to_other = "<sip:+15557002@example.org?Replaces=other-call%3Bto-tag%3Dourtag%3Bfrom-tag%3Dbrowsertag>";
    std::uint32_t cseq = 6300;
    // This call's own dialog, tags in either order: 400, nothing asked.
    for (const auto& self : {ok.call_id() + "%3Bto-tag%3D" + ok.to_tag() + "%3Bfrom-tag%3D" + ok.from_tag(),
                             ok.call_id() + "%3Bto-tag%3D" + ok.from_tag() + "%3Bfrom-tag%3D" + ok.to_tag()}) {
        b.arrive(kBrowser, browser_refer(ok, ++cseq, "<sip:+15557002@example.org?Replaces=" + self + ">"));
        CHECK(b.sent(kBrowser).at(0).status() == 400);
    }
    // An early-only Replaces is never joined.
    b.arrive(kBrowser, browser_refer(ok, ++cseq, "<sip:x@example.org?Replaces=c%3Bto-tag%3D1%3Bfrom-tag%3D2%3Bearly-only>"));
    CHECK(b.sent(kBrowser).at(0).status() == 403);
    CHECK(asked.empty());
    // The router's refusals: 491 answers the REFER; no such call (481) or none that can be joined
    // (503) is the REFER's outcome, 202 then a final NOTIFY (a 481 to the REFER itself would
    // mean this call's dialog is gone). The call goes on either way.
    for (const int why : {481, 491, 503}) {
        verdict = why;
        b.arrive(kBrowser, browser_refer(ok, ++cseq, to_other));
        auto got = b.sent(kBrowser);
        if (why == 491) {
            REQUIRE(got.size() == 1);
            CHECK(got[0].status() == 491);
        } else {
            REQUIRE(got.size() == 2);
            CHECK(got[0].status() == 202);
            CHECK(got[1].method() == "NOTIFY");
            CHECK(sipfrag_status(got[1].body()) == why);
            CHECK(got[1].header("subscription-state").value_or("").starts_with("terminated"));
        }
        CHECK(b.sent(kTrunk).empty());
        CHECK_FALSE(b.call->joined());
    }
    REQUIRE(asked.size() == 3);
    CHECK(asked[0].call_id == "other-call");
    CHECK(asked[0].to_tag == "ourtag");
    CHECK(asked[0].from_tag == "browsertag");
    // Joined.
    verdict = 0;
    b.arrive(kBrowser, browser_refer(ok, ++cseq, to_other));
    auto to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 4);   // (the NOTIFYs above are not answered: nothing needs it)
    CHECK(to_browser[0].status() == 202);
    CHECK(to_browser[1].method() == "NOTIFY");
    CHECK(to_browser[1].header("event") == "refer;id=" + std::to_string(cseq));
    CHECK(sipfrag_status(to_browser[1].body()) == 100);
    CHECK(sipfrag_status(to_browser[2].body()) == 200);
    CHECK(to_browser[2].header("subscription-state").value_or("").starts_with("terminated"));
    CHECK(to_browser[3].method() == "BYE");
    CHECK(b.sent(kTrunk).empty());   // the trunk dialog stays as it is
    CHECK(b.call->joined());
    CHECK_FALSE(b.call->joinable());
    CHECK(b.call->state() == Call::State::Confirmed);
    // Another REFER on the joined call (a browser's late one): nothing joins or transfers twice.
    b.arrive(kBrowser, browser_refer(ok, ++cseq, to_other));
    CHECK(b.sent(kBrowser).at(0).status() == 403);
    CHECK(asked.size() == 4);
    // A hold from the trunk party is answered here: no browser to relay it to.
    auto hold = from_trunk("INVITE", inv, 2);
    hold.add_contact("<sip:+15550123@127.0.0.1:5070>");
    hold.set_body("application/sdp", "v=0\r\ns=hold\r\na=sendonly\r\n");
    b.arrive(kTrunk, msg(hold.serialize()));
    auto answered = b.sent(kTrunk);
    REQUIRE(!answered.empty());
    CHECK(answered.back().status() == 200);
    CHECK(answered.back().body() == "v=0\r\ns=local\r\n");
    CHECK(b.sent(kBrowser).empty());
    // The trunk party hangs up: the call ends, and only the trunk hears of it.
    b.arrive(kTrunk, msg(from_trunk("BYE", inv, 3).serialize()));
    CHECK(b.sent(kTrunk).at(0).status() == 200);
    CHECK(b.sent(kBrowser).empty());
    CHECK(b.call->state() == Call::State::Ended);
}

TEST_CASE("attended transfer: the other call's browser leg is released; a crossing browser BYE ends nothing, the router's hang-up BYEs the trunk") {
    Bench b;
    const auto legs = answered_outbound(b);   // no structured bindings: clang 14 and doctest
    const Message& ok = legs.first;
    Replaces mine{ok.call_id(), ok.to_tag(), ok.from_tag(), false};
    CHECK(b.call->has_browser_dialog(mine));
    std::swap(mine.to_tag, mine.from_tag);   // JsSIP writes the tags as its INVITE had them
    CHECK(b.call->has_browser_dialog(mine));
    mine.to_tag = "nosuch";
    CHECK_FALSE(b.call->has_browser_dialog(mine));
    b.call->release_browser(b.now, b.layer, b.out);
    auto to_browser = b.sent(kBrowser);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].method() == "BYE");
    CHECK(b.call->joined());
    // The browser's own BYE crossing ours: 200, and the trunk leg stays.
    std::string bye = "BYE sip:gw@gw.example.org;transport=ws SIP/2.0\r\n"
                      "Via: SIP/2.0/WSS 3b5kq2ugmd6u.invalid;branch=z9hG4bKbyex\r\n"
                      "From: " + ok.from_header() + "\r\nTo: " + ok.to_header() + "\r\n"
                      "Call-ID: " + ok.call_id() + "\r\nCSeq: 6217 BYE\r\nContent-Length: 0\r\n\r\n";
    b.arrive(kBrowser, msg(bye));
    b.sent(kBrowser);
    CHECK(b.sent(kTrunk).empty());
    CHECK(b.call->state() == Call::State::Confirmed);
    // The call it was joined to ended: the router hangs this one up.
    b.call->hang_up(b.now, b.layer, b.out);
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].method() == "BYE");
    CHECK(b.sent(kBrowser).empty());   // its browser leg was over already
    CHECK(b.call->state() == Call::State::Ended);
}

TEST_CASE("a trunk's NOTIFY storm during a browser's transfer: the browser hears each news once, at most kTransferNotifies, and the final one") {
    FailoverBench b;
    const auto first = b.first_invite();
    b.arrive(kTrunk, trunk_reply(first, 200, true));
    auto ok = b.sent(kBrowser);
    REQUIRE(ok.size() == 1);
    b.sent(kTrunk);   // the ACK
    auto refer = Message::request("REFER", "sip:gw@gw.example.org;transport=ws");
    REQUIRE(refer);
    refer->push_via("WSS", "3b5kq2ugmd6u.invalid", "z9hG4bKrefer");
    refer->set_from(ok[0].from_header());
    refer->set_to(ok[0].to_header());
    refer->set_call_id(ok[0].call_id());
    refer->set_cseq(6216, "REFER");
    refer->add_header("Refer-To", "<sip:+15557001@example.org>");
    b.arrive(kBrowser, msg(refer->serialize()));
    auto to_trunk = b.sent(kTrunk);
    REQUIRE(to_trunk.size() == 1);
    REQUIRE(to_trunk[0].method() == "REFER");
    b.arrive(kTrunk, trunk_reply(to_trunk[0], 202));
    b.sent(kBrowser);   // the 202
    std::uint32_t cseq = 1;
    const auto notify = [&](int status, bool terminated) {
        auto m = from_trunk("NOTIFY", first, ++cseq);
        m.pop_via();
        m.push_via("UDP", "127.0.0.1:5070", "z9hG4bKstorm" + std::to_string(cseq));
        m.add_header("Event", "refer");
        m.add_header("Subscription-State", terminated ? "terminated;reason=noresource" : "active;expires=60");
        m.set_body("message/sipfrag;version=2.0", "SIP/2.0 " + std::to_string(status) + " X\r\n");
        b.arrive(kTrunk, msg(m.serialize()));
        auto answers = b.sent(kTrunk);
        REQUIRE(answers.size() == 1);
        CHECK(answers[0].status() == 200);   // every one is answered (RFC 6665 §4.1.3)
    };
    for (int i = 0; i < 50; ++i) notify(180, false);   // the same news fifty times
    for (int i = 0; i < 50; ++i) notify(i % 2 ? 183 : 100, false);   // news that flaps
    notify(200, true);
    std::vector<int> frags;
    for (const auto& m : b.sent(kBrowser))
        if (m.method() == "NOTIFY") frags.push_back(sipfrag_status(m.body()).value_or(0));
    REQUIRE(frags.size() == Call::kTransferNotifies + 1);
    CHECK(frags[0] == 180);
    CHECK(frags[1] == 100);
    CHECK(frags.back() == 200);
    CHECK(b.call->notifies_dropped() == 100 - Call::kTransferNotifies);
    CHECK_FALSE(b.call->transferring());
}

TEST_CASE("100rel: a trunk's flood of reliable provisionals gets at most kMaxPracks PRACKs in a call; the rest are dropped and counted") {
    Bench b;
    b.start_outbound();
    b.sent(kBrowser);
    auto inv = std::move(b.sent(kTrunk).at(0));
    std::size_t pracks = 0, relayed = 0;
    for (int rseq = 1; rseq <= 100; ++rseq) {
        b.arrive(kTrunk, msg(reliable_reply(inv, 180, std::to_string(rseq)).serialize()));
        for (auto& m : b.sent(kTrunk))
            if (m.method() == "PRACK") {
                ++pracks;
                b.arrive(kTrunk, msg(Message::response(m, 200).serialize()));
            }
        relayed += b.sent(kBrowser).size();
    }
    CHECK(pracks == Call::kMaxPracks);
    CHECK(relayed <= Call::kMaxPracks);
    CHECK(b.call->reliable_dropped() == 100 - Call::kMaxPracks);
    b.arrive(kTrunk, trunk_reply(inv, 200, true));   // the call still answers
    CHECK(b.call->state() == Call::State::Confirmed);
}
