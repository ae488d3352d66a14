// SPDX-License-Identifier: Apache-2.0
// The gateway's signaling router, without sockets: JsSIP-shaped requests in, actions out.
#include <doctest/doctest.h>

#include "../sip/samples.hpp"
#include "turnbridge/net/sip_router.hpp"

using namespace turnbridge;
using namespace turnbridge::net;
using namespace std::chrono_literals;

namespace {

constexpr sip::TransportId kWs = 7, kTrunk = 9;

struct Bench {
    std::shared_ptr<config::Config> cfg = [] {
        auto c = std::make_shared<config::Config>();
        config::Realm r;
        r.name = "example.org";
        r.users = {{"alice", "wonderland"}};
        r.gateway.enabled = true;
        r.gateway.trunk = {"sip:127.0.0.1:5070", "127.0.0.1", 5070, config::SipTrunk::Transport::Udp};
        r.gateway.routes = {{"+15550123", {"alice"}}};
        c->realms.emplace("example.org", r);
        config::Realm plain;
        plain.name = "turn-only.org";
        c->realms.emplace("turn-only.org", plain);
        return c;
    }();
    turn::NonceMinter nonces = turn::NonceMinter::with_random_key(600s);
    std::uint64_t n = 0;
    int media_made = 0;
    bool media_refused = false;          // the media side has no ports: the factory says nullptr
    const sip::MediaSdp* last_media = nullptr;
    std::vector<CallSummary> ended;
    std::vector<const sip::MediaSdp*> ended_media;
    std::optional<Endpoint> asked;
    bool asked_tcp = true;
    SipRouter router{cfg, nonces, SipLocal{"127.0.0.1:5062", "gw.example.org"},
                     [this](const config::Realm& r, bool outbound) -> std::unique_ptr<sip::MediaSdp> {
                         if (media_refused) return nullptr;
                         ++media_made;
                         auto m = pass_through_media(r, outbound);
                         last_media = m.get();
                         return m;
                     },
                     [this](const Endpoint& e, bool tcp) -> std::optional<sip::TransportId> {
                         asked = e;
                         asked_tcp = tcp;
                         return kTrunk;
                     },
                     [this] { return ++n; }};
    sip::Time now = sip::Time{} + 100h;
    Bench() {
        router.on_call_ended([this](const CallSummary& s, sip::MediaSdp* m) {
            ended.push_back(s);
            ended_media.push_back(m);
        });
    }
    SipFlow ws{kWs, true, true, true, *IpAddress::parse("192.0.2.7")};
    SipFlow trunk{kTrunk, false, false, false, *IpAddress::parse("127.0.0.1")};

    std::vector<sip::Message> feed(const SipFlow& f, const std::string& bytes, sip::TransportId want) {
        std::vector<sip::Action> out;
        router.on_message(now, 1'700'000'000, f, bytes, out);
        return sent(out, want);
    }
    static std::vector<sip::Message> sent(std::vector<sip::Action>& out, sip::TransportId want) {
        std::vector<sip::Message> v;
        for (auto& a : out)
            if (auto* s = std::get_if<sip::Send>(&a); s && s->transport == want) v.push_back(std::move(*sip::Message::parse(s->bytes)));
        return v;
    }
};

// The request again, answered for `challenge`, as a fresh transaction with the next CSeq.
std::string answered(const std::string& wire, const sip::Message& challenge, const std::string& user,
                     const std::string& password, std::string_view branch) {
    auto m = std::move(*sip::Message::parse(wire));
    auto answer = sip::answer_challenge(challenge, m.method(), m.request_uri(), user, password, [] { return 42; });
    REQUIRE(answer);
    m.pop_via();
    m.push_via("WSS", "3b5kq2ugmd6u.invalid", branch);
    m.set_cseq(m.cseq() + 1, m.method());
    m.add_auth_header(answer->header, answer->value);
    return m.serialize();
}

std::string register_as(const std::string& realm) {
    std::string s = sip::samples::kJsSipRegister;
    for (std::size_t p; (p = s.find("example.org")) != std::string::npos;) s.replace(p, 11, realm);
    return s;
}

}  // namespace

TEST_CASE("REGISTER: 401, then 200 with a binding; the binding goes with its WebSocket") {
    Bench b;
    auto r = b.feed(b.ws, sip::samples::kJsSipRegister, kWs);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status() == 401);
    CHECK(b.router.bindings() == 0);

    auto wrong = b.feed(b.ws, answered(sip::samples::kJsSipRegister, r[0], "alice", "nope", "z9hG4bKw"), kWs);
    REQUIRE(wrong.size() == 1);
    CHECK(wrong[0].status() == 401);
    CHECK(b.router.bindings() == 0);

    auto ok = b.feed(b.ws, answered(sip::samples::kJsSipRegister, r[0], "alice", "wonderland", "z9hG4bKr"), kWs);
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].status() == 200);
    CHECK(b.router.bindings() == 1);

    std::vector<sip::Action> out;
    b.router.on_flow_closed(b.now, kWs, out);
    CHECK(b.router.bindings() == 0);
}

TEST_CASE("REGISTER for a name that is no realm gets 404, for a realm without gateway mode 403") {
    Bench b;
    auto r = b.feed(b.ws, register_as("nowhere.org"), kWs);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status() == 404);
    auto other = register_as("turn-only.org");
    other.replace(other.find("z9hG4bK9573563"), 14, "z9hG4bK0000002");   // a new transaction, not a retransmission
    r = b.feed(b.ws, other, kWs);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status() == 403);
}

TEST_CASE("browser INVITE: 407, then an INVITE toward the realm's trunk with the media side's SDP; 200 mapped back") {
    Bench b;
    auto r = b.feed(b.ws, sip::samples::jssip_invite(), kWs);
    REQUIRE(r.size() == 2);
    CHECK(r[0].status() == 100);   // RFC 3261 §17.2.1: the INVITE server transaction's Trying
    CHECK(r[1].status() == 407);
    CHECK(b.router.calls() == 0);

    std::vector<sip::Action> out;
    b.router.on_message(b.now, 1'700'000'000, b.ws,
                        answered(sip::samples::jssip_invite(), r[1], "alice", "wonderland", "z9hG4bKi2"), out);
    auto to_trunk = Bench::sent(out, kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].method() == "INVITE");
    CHECK(to_trunk[0].request_uri() == "sip:+15550123@127.0.0.1:5070;transport=udp");
    CHECK(to_trunk[0].body() == sip::samples::kSdpOffer);   // the pass-through media seam
    CHECK(to_trunk[0].top_via_sent_by() == "127.0.0.1:5062");
    CHECK(b.media_made == 1);
    CHECK(b.asked == Endpoint::parse("127.0.0.1:5070"));
    CHECK_FALSE(b.asked_tcp);
    CHECK(b.router.calls() == 1);
    REQUIRE(b.router.next_wake());   // UDP: Timer A retransmits
    CHECK(*b.router.next_wake() == b.now + 500ms);

    auto ok = sip::Message::response(to_trunk[0], 200, {}, "trunktag");
    ok.add_contact("<sip:+15550123@127.0.0.1:5070>");
    ok.set_body("application/sdp", "v=0\r\ns=trunk\r\n");
    auto mixed = std::vector<sip::Action>{};
    b.router.on_message(b.now, 1'700'000'000, b.trunk, ok.serialize(), mixed);
    auto to_browser = Bench::sent(mixed, kWs);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].status() == 200);
    CHECK(to_browser[0].body() == "v=0\r\ns=trunk\r\n");
    auto ack = Bench::sent(mixed, kTrunk);
    REQUIRE(ack.size() == 1);
    CHECK(ack[0].method() == "ACK");
}

TEST_CASE("INVITE over UDP from an address that is no trunk: 403; from the trunk to an unrouted DID: 404") {
    Bench b;
    SipFlow stranger{11, false, false, false, *IpAddress::parse("198.51.100.1")};
    auto wire = "INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKx1\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:a@198.51.100.1>;tag=1\r\nTo: <sip:+15550123@127.0.0.1>\r\n"
                "Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@198.51.100.1>\r\nContent-Length: 0\r\n\r\n";
    auto r = b.feed(stranger, wire, 11);
    REQUIRE_FALSE(r.empty());
    CHECK(r.back().status() == 403);

    std::string unrouted = wire;
    unrouted.replace(unrouted.find("+15550123"), 9, "+15559999");
    unrouted.replace(unrouted.find("z9hG4bKx1"), 9, "z9hG4bKx2");
    r = b.feed(b.trunk, unrouted, kTrunk);
    REQUIRE_FALSE(r.empty());
    CHECK(r.back().status() == 404);

    // Routed DID, nobody registered: the call answers 480 (RFC 3261 §21.4.18).
    std::string routed = wire;
    routed.replace(routed.find("z9hG4bKx1"), 9, "z9hG4bKx3");
    r = b.feed(b.trunk, routed, kTrunk);
    REQUIRE_FALSE(r.empty());
    CHECK(r.back().status() == 480);
}

TEST_CASE("OPTIONS gets 200 with Allow; unreadable bytes are dropped; keep-alive CRLFs are ignored") {
    Bench b;
    auto opt = "OPTIONS sip:example.org SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bKo1\r\nMax-Forwards: 70\r\n"
               "From: <sip:alice@example.org>;tag=a\r\nTo: <sip:example.org>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n"
               "Content-Length: 0\r\n\r\n";
    auto r = b.feed(b.ws, opt, kWs);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status() == 200);
    CHECK(r[0].serialize().find("\r\nAllow: INVITE") != std::string::npos);
    CHECK(b.feed(b.ws, "\x01\x02 not sip\r\n\r\n", kWs).empty());
    CHECK(b.feed(b.ws, "\r\n\r\n", kWs).empty());
}

namespace {

// A browser call the trunk answers with `trunk_status`.
void answered_call(Bench& b, int trunk_status = 200) {
    auto r = b.feed(b.ws, sip::samples::jssip_invite(), kWs);
    REQUIRE(r.size() == 2);
    std::vector<sip::Action> out;
    b.router.on_message(b.now, 1'700'000'000, b.ws,
                        answered(sip::samples::jssip_invite(), r[1], "alice", "wonderland", "z9hG4bKi2"), out);
    auto to_trunk = Bench::sent(out, kTrunk);
    REQUIRE(to_trunk.size() == 1);
    b.now += 2s;
    auto resp = sip::Message::response(to_trunk[0], trunk_status, {}, "trunktag");
    resp.add_contact("<sip:+15550123@127.0.0.1:5070>");
    if (trunk_status == 200) resp.set_body("application/sdp", "v=0\r\ns=trunk\r\n");
    out.clear();
    b.router.on_message(b.now, 1'700'000'000, b.trunk, resp.serialize(), out);
}

}  // namespace

TEST_CASE("a call whose media fails is hung up both ways and summarised once for its call record") {
    Bench b;
    answered_call(b);
    CHECK(b.ended.empty());
    b.now += 5s;
    std::vector<sip::Action> out;
    b.router.hang_up(b.now, b.last_media, "DTLS fingerprint mismatch", out);
    auto bye_trunk = Bench::sent(out, kTrunk);
    auto bye_browser = Bench::sent(out, kWs);
    REQUIRE(bye_trunk.size() == 1);
    REQUIRE(bye_browser.size() == 1);
    CHECK(bye_trunk[0].method() == "BYE");
    CHECK(bye_browser[0].method() == "BYE");
    // The trunk and the browser answer their BYEs; the call ends and is reported once.
    out.clear();
    b.router.on_message(b.now, 1'700'000'000, b.trunk, sip::Message::response(bye_trunk[0], 200, {}, "").serialize(), out);
    b.router.on_message(b.now, 1'700'000'000, b.ws, sip::Message::response(bye_browser[0], 200, {}, "").serialize(), out);
    b.now += 40s;
    out.clear();
    b.router.on_timer(b.now, out);
    REQUIRE(b.ended.size() == 1);
    CHECK(b.ended_media[0] == b.last_media);   // its media, to be finished and read
    const CallSummary& s = b.ended[0];
    CHECK(s.realm == "example.org");
    CHECK(s.account == "alice");
    CHECK(s.outbound);
    CHECK(s.remote == "+15550123");
    CHECK(s.status == 200);
    REQUIRE(s.answered);
    CHECK(*s.answered - s.started == 2s);
    CHECK(s.ended - *s.answered == 5s);
    CHECK(s.end_reason == "media: DTLS fingerprint mismatch");
    CHECK(b.router.calls() == 0);   // gone after the linger
}

TEST_CASE("a call the trunk rejects is summarised with its status and no answer time") {
    Bench b;
    answered_call(b, 486);
    REQUIRE(b.ended.size() == 1);
    CHECK(b.ended[0].status == 486);
    CHECK_FALSE(b.ended[0].answered);
    CHECK(b.ended[0].end_reason == "rejected");
    CHECK(b.ended[0].account == "alice");
}

TEST_CASE("no media ports: the browser's INVITE gets 503 and no call is made") {
    Bench b;
    b.media_refused = true;
    auto r = b.feed(b.ws, sip::samples::jssip_invite(), kWs);
    REQUIRE(r.size() == 2);
    auto again = b.feed(b.ws, answered(sip::samples::jssip_invite(), r[1], "alice", "wonderland", "z9hG4bKi2"), kWs);
    REQUIRE_FALSE(again.empty());
    CHECK(again.back().status() == 503);
    CHECK(b.router.calls() == 0);
    CHECK(b.ended.empty());
}
