// SPDX-License-Identifier: Apache-2.0
// The gateway's signaling router, without sockets: JsSIP-shaped requests in, actions out.
#include <doctest/doctest.h>

#include "../sip/samples.hpp"
#include <fmt/format.h>

#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/sip/refer.hpp"
#include "turnbridge/sip/placement.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;
using namespace std::chrono_literals;

namespace {

constexpr sip::TransportId kWs = 7, kTrunk = 9;

// Media whose trunk legs can be joined (issue 14, attended transfer): what CallMedia does, minus
// the sockets. Each join is noted as (this, other).
class JoinableMedia final : public sip::MediaSdp {
public:
    explicit JoinableMedia(std::vector<std::pair<const sip::MediaSdp*, const sip::MediaSdp*>>& joins) : joins_(joins) {}
    std::optional<std::string> map_offer(bool, const std::string& sdp) override { return sdp; }
    std::optional<std::string> map_answer(bool, const std::string& sdp) override { return sdp; }
    bool join_trunk(sip::MediaSdp& other) override {
        joins_.emplace_back(this, &other);
        return true;
    }

private:
    std::vector<std::pair<const sip::MediaSdp*, const sip::MediaSdp*>>& joins_;
};

// Pass-through media that can also offer the call to another browser (issue 14, a trunk's REFER).
struct HandoverMedia : sip::MediaSdp {
    std::optional<std::string> map_offer(bool, const std::string& sdp) override { return sdp; }
    std::optional<std::string> map_answer(bool, const std::string& sdp) override { return sdp; }
    std::optional<std::string> new_browser_offer() override { return std::string("v=0\r\ns=handover\r\n"); }
    bool take_new_browser(const std::string&) override { return true; }
    // A transfer's fallback call offers the trunk leg's session (issue 14).
    std::optional<std::string> current_offer(bool) override { return std::string("v=0\r\ns=current\r\n"); }
    bool take_answer(bool, const std::string&) override { return true; }
};

struct Bench {
    std::shared_ptr<config::Config> cfg = [] {
        auto c = std::make_shared<config::Config>();
        config::Realm r;
        r.name = "example.org";
        r.users = {{"alice", "wonderland"}};
        r.gateway.enabled = true;
        r.gateway.trunk = {"sip:127.0.0.1:5070", "127.0.0.1", 5070, config::SipTrunk::Transport::Udp};
        r.gateway.routes = {{"+15550123", {"alice"}}};
        r.gateway.options_interval = 0;   // no OPTIONS probes among the messages these tests count
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
    bool joinable = false;               // JoinableMedia instead of the pass-through
    std::vector<std::pair<const sip::MediaSdp*, const sip::MediaSdp*>> joins;
    bool handover_media = false;         // the media side can hand the browser leg over (HandoverMedia)
    const sip::MediaSdp* last_media = nullptr;
    std::string media_trunk;              // the trunk the last media was made for (issue 14)
    std::vector<CallSummary> ended;
    std::vector<const sip::MediaSdp*> ended_media;
    std::optional<Endpoint> asked;
    bool asked_tcp = true;
    sip::TransportId next_flow = kTrunk;
    bool refuse_flow = false;             // the host cannot reach the trunk
    std::optional<Endpoint> flow_local;   // what the host says of a TLS connection's own end
    SipRouter router{cfg, nonces, SipLocal{"127.0.0.1:5062", "gw.example.org"},
                     [this](const config::Realm& r, bool outbound) -> std::unique_ptr<sip::MediaSdp> {
                         if (media_refused) return nullptr;
                         ++media_made;
                         media_trunk = r.gateway.trunk_name;
                         if (joinable) {
                             auto m = std::make_unique<JoinableMedia>(joins);
                             last_media = m.get();
                             return m;
                         }
                         auto m = handover_media ? std::make_unique<HandoverMedia>() : pass_through_media(r, outbound);
                         last_media = m.get();
                         return m;
                     },
                     [this](const config::Realm& r, const Endpoint& e) -> std::optional<TrunkFlowInfo> {
                         asked = e;
                         asked_tcp = r.gateway.trunk.transport != config::SipTrunk::Transport::Udp;
                         if (refuse_flow) return std::nullopt;
                         return TrunkFlowInfo{next_flow, flow_local};
                     },
                     [this] { return ++n; }};
    sip::Time now = sip::Time{} + 100h;
    Bench() {
        router.on_call_ended([this](const CallSummary& s, sip::MediaSdp* m) {
            ended.push_back(s);
            ended_media.push_back(m);
        });
    }
    SipFlow ws{kWs, true, true, true, *IpAddress::parse("192.0.2.7"), {}};
    SipFlow trunk{kTrunk, false, false, false, *IpAddress::parse("127.0.0.1"), {}};

    config::Gateway& gateway() { return cfg->realms.at("example.org").gateway; }
    // A browser INVITE with the right credentials (after the 407 of a first attempt).
    std::vector<sip::Action> authenticated_invite();

    TrunkHosts hosts;
    // The realm's trunk named by `host` (UDP), not looked up yet.
    void named_trunk(const std::string& host) {
        gateway().trunk = {"sip:" + host + ":5070", host, 5070, config::SipTrunk::Transport::Udp, false, true};
        hosts.set_lookups({TrunkName{host, "", 5070}});   // A/AAAA at the URI's port (no SRV: it names one)
        router.set_trunk_hosts(&hosts);
    }
    void resolve(const std::string& host, std::vector<IpAddress> found) {
        std::vector<std::string> due;
        hosts.due(now, due);
        hosts.on_resolved(now, host, std::move(found), "unknown node or service");
    }
    // An authenticated INVITE that waits for the trunk's name: 100 Trying and nothing else.
    void invite_waits() {
        auto out = authenticated_invite();
        CHECK(sent(out, kTrunk).empty());
        auto trying = sent(out, kWs);
        REQUIRE(trying.size() == 1);
        CHECK(trying[0].status() == 100);   // RFC 3261 §17.2.1
    }

    std::vector<sip::Message> feed(const SipFlow& f, const std::string& bytes, sip::TransportId want) {
        std::vector<sip::Action> out;
        router.on_message(now, 1'700'000'000, f, bytes, out);
        return sent(out, want);
    }
    static std::vector<sip::Message> sent(std::vector<sip::Action>& out, sip::TransportId want) {
        std::vector<sip::Message> v;
        for (auto& a : out)
            if (auto* s = std::get_if<sip::Send>(&a); s && s->transport == want) {
                auto m = sip::Message::parse(s->bytes);
                REQUIRE_MESSAGE(m, "unparseable: " << s->bytes);
                v.push_back(std::move(*m));
            }
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

std::vector<sip::Action> Bench::authenticated_invite() {
    auto r = feed(ws, sip::samples::jssip_invite(), kWs);
    REQUIRE(r.size() == 2);
    REQUIRE(r[1].status() == 407);
    std::vector<sip::Action> out;
    router.on_message(now, 1'700'000'000, ws, answered(sip::samples::jssip_invite(), r[1], "alice", "wonderland", "z9hG4bKi2"),
                      out);
    return out;
}

}  // namespace

TEST_CASE("REGISTER: 401, 403 for a wrong password or an unknown user, then 200 with a binding that goes with its WebSocket") {
    Bench b;
    auto r = b.feed(b.ws, sip::samples::kJsSipRegister, kWs);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status() == 401);
    CHECK(b.router.bindings() == 0);

    auto wrong = b.feed(b.ws, answered(sip::samples::kJsSipRegister, r[0], "alice", "nope", "z9hG4bKw"), kWs);
    REQUIRE(wrong.size() == 1);
    CHECK(wrong[0].status() == 403);   // a wrong password, like an unknown user, is refused
    CHECK(b.router.bindings() == 0);
    auto stranger = b.feed(b.ws, answered(sip::samples::kJsSipRegister, r[0], "mallory", "x", "z9hG4bKm"), kWs);
    REQUIRE(stranger.size() == 1);
    CHECK(stranger[0].status() == 403);
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
    SipFlow stranger{11, false, false, false, *IpAddress::parse("198.51.100.1"), {}};
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

TEST_CASE("TLS trunk: sips Request-URI, Via TLS and a sips Contact at the connection's own address (RFC 3261 §8.1.1.8)") {
    Bench b;
    b.gateway().trunk = {"sips:127.0.0.1:5061", "127.0.0.1", 5061, config::SipTrunk::Transport::Tls, true};
    b.flow_local = Endpoint::parse("127.0.0.1:40001");
    auto out = b.authenticated_invite();
    auto to_trunk = Bench::sent(out, kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].request_uri() == "sips:+15550123@127.0.0.1:5061");
    CHECK(to_trunk[0].top_via_sent_by() == "127.0.0.1:40001");
    const auto wire = to_trunk[0].serialize();
    CHECK(wire.find("Via: SIP/2.0/TLS 127.0.0.1:40001;") != std::string::npos);
    CHECK(wire.find("Contact: <sips:turnbridge@127.0.0.1:40001>") != std::string::npos);
    CHECK(b.asked == Endpoint::parse("127.0.0.1:5061"));
    CHECK(b.asked_tcp);
    // Reliable: no Timer A retransmissions, only Timer B.
    REQUIRE(b.router.next_wake());
    CHECK(*b.router.next_wake() == b.now + 32s);
}

TEST_CASE("TLS trunk as sip:;transport=tls: the parameter is kept in the Request-URI and Contact") {
    Bench b;
    b.gateway().trunk = {"sip:127.0.0.1:5061;transport=tls", "127.0.0.1", 5061, config::SipTrunk::Transport::Tls};
    b.flow_local = Endpoint::parse("127.0.0.1:40002");
    auto out = b.authenticated_invite();
    auto to_trunk = Bench::sent(out, kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].request_uri() == "sip:+15550123@127.0.0.1:5061;transport=tls");
    CHECK(to_trunk[0].serialize().find("Contact: <sip:turnbridge@127.0.0.1:40002;transport=tls>") != std::string::npos);
}

TEST_CASE("the trunk's connection fails before an answer (TLS refused): the browser gets 503 at once (RFC 3261 §8.1.3.1)") {
    Bench b;
    b.gateway().trunk = {"sips:127.0.0.1:5061", "127.0.0.1", 5061, config::SipTrunk::Transport::Tls, true};
    b.flow_local = Endpoint::parse("127.0.0.1:40003");
    auto out = b.authenticated_invite();
    REQUIRE(Bench::sent(out, kTrunk).size() == 1);
    std::vector<sip::Action> closed;
    b.router.on_flow_closed(b.now + 1s, kTrunk, closed);
    auto to_browser = Bench::sent(closed, kWs);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].status() == 503);
    CHECK(Bench::sent(closed, kTrunk).empty());   // nothing more toward the dead flow
}

TEST_CASE("a trunk named by host name: the INVITE waits for the lookup, then goes to the address of our family") {
    Bench b;
    b.named_trunk("localhost");
    b.invite_waits();
    REQUIRE(b.router.next_wake());
    CHECK(*b.router.next_wake() == b.now + SipRouter::kResolveWait);

    b.resolve("localhost", {*IpAddress::parse("::1"), *IpAddress::parse("127.0.0.1")});
    std::vector<sip::Action> go;
    b.router.on_trunk_resolved(b.now + 20ms, go);
    auto to_trunk = Bench::sent(go, kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].request_uri() == "sip:+15550123@localhost:5070;transport=udp");   // the name, as configured
    CHECK(b.asked == Endpoint::parse("127.0.0.1:5070"));   // sip_listen is IPv4 (127.0.0.1:5062)
    CHECK(b.router.calls() == 1);
}

TEST_CASE("a trunk host name that does not resolve in time, or failed to: 503") {
    Bench b;
    b.named_trunk("trunk.invalid");
    b.invite_waits();
    std::vector<sip::Action> early, late;
    b.router.on_timer(b.now + SipRouter::kResolveWait - 1ms, early);
    CHECK(Bench::sent(early, kWs).empty());
    b.router.on_timer(b.now + SipRouter::kResolveWait, late);
    auto to_browser = Bench::sent(late, kWs);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].status() == 503);
    CHECK(b.router.calls() == 0);

    // Once the lookup has failed, the next call is refused at once.
    Bench c;
    c.named_trunk("trunk.invalid");
    c.resolve("trunk.invalid", {});
    auto now_out = c.authenticated_invite();
    auto r = Bench::sent(now_out, kWs);
    REQUIRE(r.size() == 2);
    CHECK(r[0].status() == 100);
    CHECK(r[1].status() == 503);
    CHECK_FALSE(c.asked);
}

TEST_CASE("a CANCEL for an INVITE waiting for its trunk's name: 487") {
    Bench b;
    b.named_trunk("trunk.example.net");
    b.invite_waits();
    auto cancel = "CANCEL sip:+15550123@example.org SIP/2.0\r\nVia: SIP/2.0/WSS 3b5kq2ugmd6u.invalid;branch=z9hG4bKi2\r\n"
                  "Max-Forwards: 69\r\nTo: <sip:+15550123@example.org>\r\n"
                  "From: \"Alice\" <sip:alice@example.org>;tag=8fk2ra1dtq\r\nCall-ID: mvh2l0g3kcq1fo9tbhm5\r\n"
                  "CSeq: 6216 CANCEL\r\nContent-Length: 0\r\n\r\n";
    auto r = b.feed(b.ws, cancel, kWs);
    REQUIRE(r.size() == 2);
    CHECK(r[0].status() == 200);
    CHECK(r[0].cseq_method() == "CANCEL");
    CHECK(r[1].status() == 487);
    std::vector<sip::Action> later;
    b.router.on_timer(b.now + SipRouter::kResolveWait, later);
    CHECK(Bench::sent(later, kWs).empty());
}

TEST_CASE("an inbound call's remote number is the From URI's user, whatever '<' the display name holds") {
    Bench b;
    auto wire = "INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKd1\r\n"
                "Max-Forwards: 70\r\nFrom: \"<script>x</script> \\\"q\\\"\" <sip:+15550142@127.0.0.1>;tag=1\r\n"
                "To: <sip:+15550123@127.0.0.1>\r\nCall-ID: d1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1>\r\n"
                "Content-Length: 0\r\n\r\n";
    auto r = b.feed(b.trunk, wire, kTrunk);
    REQUIRE_FALSE(r.empty());
    CHECK(r.back().status() == 480);
    b.now += 40s;
    std::vector<sip::Action> out;
    b.router.on_timer(b.now, out);
    REQUIRE(b.ended.size() == 1);
    CHECK(b.ended[0].remote == "+15550142");
}

namespace {

// Issue 14: the realm's trunks a (its own), uk ("+44", 127.0.0.3) and us (`us_prefix`, 127.0.0.2, TCP).
void three_trunks(Bench& b, const std::string& us_prefix) {
    auto& realm = b.cfg->realms.at("example.org");
    config::Realm a = realm, uk = realm, us = realm;
    a.gateway.trunk_name = "a";
    uk.gateway.trunk_name = "uk";
    uk.gateway.trunk_index = 1;
    uk.gateway.prefixes = {"+44"};
    uk.gateway.trunk = {"sip:127.0.0.3:5090", "127.0.0.3", 5090, config::SipTrunk::Transport::Udp};
    us.gateway.trunk_name = "us";
    us.gateway.trunk_index = 2;
    us.gateway.prefixes = {us_prefix};
    us.gateway.trunk = {"sip:127.0.0.2:5080", "127.0.0.2", 5080, config::SipTrunk::Transport::Tcp};
    realm.trunks = {a, uk, us};
}

}  // namespace

TEST_CASE("several trunks (issue 14): the dialled number's longest prefix picks one, else the first") {
    Bench b;
    three_trunks(b, "+1555");
    auto out = b.authenticated_invite();   // to +15550123: "+1555" is us's
    auto to_trunk = Bench::sent(out, kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].request_uri() == "sip:+15550123@127.0.0.2:5080;transport=tcp");
    CHECK(b.asked == Endpoint::parse("127.0.0.2:5080"));
    CHECK(b.asked_tcp);
    CHECK(b.media_trunk == "us");   // its srtp and codecs make the media

    Bench other;
    three_trunks(other, "+1666");   // no prefix of the number: the first trunk
    out = other.authenticated_invite();
    to_trunk = Bench::sent(out, kTrunk);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].request_uri() == "sip:+15550123@127.0.0.1:5070;transport=udp");
    CHECK(other.media_trunk == "a");
}

TEST_CASE("several trunks (issue 14): each trunk's address may call in, no other") {
    Bench b;
    three_trunks(b, "+1555");
    for (const auto& [ip, status] : {std::pair{"127.0.0.3", 480}, std::pair{"127.0.0.9", 403}}) {
        const std::string from = ip;
        SipFlow f{21, false, false, false, *IpAddress::parse(from), {}};
        auto wire = "INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP " + from +
                    ":5090;branch=z9hG4bKm" + from + "\r\nMax-Forwards: 70\r\nFrom: <sip:a@" + from +
                    ">;tag=1\r\nTo: <sip:+15550123@127.0.0.1>\r\nCall-ID: m" + from + "\r\nCSeq: 1 INVITE\r\n"
                    "Contact: <sip:a@" + from + ">\r\nContent-Length: 0\r\n\r\n";
        auto r = b.feed(f, wire, 21);
        REQUIRE_FALSE(r.empty());
        CHECK(r.back().status() == status);   // 480: uk's, routed, nobody registered
    }
    CHECK(b.router.is_trunk(*IpAddress::parse("127.0.0.3")));
    CHECK(b.router.is_trunk(*IpAddress::parse("127.0.0.2")));
    CHECK_FALSE(b.router.is_trunk(*IpAddress::parse("127.0.0.9")));
}

TEST_CASE("several trunks (issue 14): an inbound call's transfer fallback goes out through the trunk the target's prefix picks, not back to the caller's trunk") {
    Bench b;
    b.handover_media = true;
    three_trunks(b, "+1555");
    auto r = b.feed(b.ws, sip::samples::kJsSipRegister, kWs);
    REQUIRE(r.size() == 1);
    REQUIRE(b.feed(b.ws, answered(sip::samples::kJsSipRegister, r[0], "alice", "wonderland", "z9hG4bKr"), kWs)
                .at(0)
                .status() == 200);
    // Trunk a (127.0.0.1) calls alice's DID; her browser answers.
    const std::string sdp = "v=0\r\ns=caller\r\n";
    const std::string wire = "INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKfb1\r\n"
                             "Max-Forwards: 70\r\nFrom: <sip:+15557654@127.0.0.1:5070>;tag=c\r\n"
                             "To: <sip:+15550123@127.0.0.1:5062>\r\nCall-ID: infb@x\r\nCSeq: 1 INVITE\r\n"
                             "Contact: <sip:+15557654@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\n"
                             "Content-Length: " + std::to_string(sdp.size()) + "\r\n\r\n" + sdp;
    auto to_ws = b.feed(b.trunk, wire, kWs);
    REQUIRE(to_ws.size() == 1);
    REQUIRE(to_ws[0].method() == "INVITE");
    auto ok = sip::Message::response(to_ws[0], 200, {}, "atag");
    ok.add_contact("<sip:alice@3b5kq2ugmd6u.invalid;transport=ws>");
    ok.set_body("application/sdp", "v=0\r\ns=alice\r\n");
    REQUIRE(b.feed(b.ws, ok.serialize(), kTrunk).at(0).status() == 200);
    // Her blind transfer to a "+44" number; trunk a refuses the REFER.
    auto refer = std::move(*sip::Message::request("REFER", "sip:turnbridge@gw.example.org;transport=ws"));
    refer.push_via("WSS", "3b5kq2ugmd6u.invalid", "z9hG4bKreferfb");
    refer.set_from(ok.to_header());
    refer.set_to(ok.from_header());
    refer.set_call_id(ok.call_id());
    refer.set_cseq(5, "REFER");
    refer.add_header("Refer-To", "<sip:+447700900123@example.org>");
    auto to_trunk = b.feed(b.ws, refer.serialize(), kTrunk);
    REQUIRE(to_trunk.size() == 1);
    REQUIRE(to_trunk[0].method() == "REFER");
    b.next_flow = 23;   // the host's flow toward the uk trunk
    std::vector<sip::Action> out;
    b.router.on_message(b.now, 1'700'000'000, b.trunk, sip::Message::response(to_trunk[0], 403).serialize(), out);
    CHECK(Bench::sent(out, kTrunk).empty());   // not back to trunk a, where the call came from
    const auto fallback = Bench::sent(out, 23);
    REQUIRE(fallback.size() == 1);
    CHECK(fallback[0].method() == "INVITE");
    CHECK(fallback[0].request_uri() == "sip:+447700900123@127.0.0.3:5090;transport=udp");
    CHECK(b.asked == Endpoint::parse("127.0.0.3:5090"));
    CHECK(fallback[0].from()->uri.starts_with("sip:+15550123@"));   // calling as the DID
    const auto notify = Bench::sent(out, kWs);
    REQUIRE(notify.size() == 2);
    CHECK(notify[0].status() == 202);
}

TEST_CASE("inbound INVITE from an address the trunk's host name resolved to is the trunk's") {
    Bench b;
    b.named_trunk("trunk.example.net");
    b.resolve("trunk.example.net", {*IpAddress::parse("192.0.2.50"), *IpAddress::parse("127.0.0.1")});
    auto wire = "INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKn1\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:+15550123@127.0.0.1>\r\n"
                "Call-ID: n1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1>\r\nContent-Length: 0\r\n\r\n";
    auto r = b.feed(b.trunk, wire, kTrunk);
    REQUIRE_FALSE(r.empty());
    CHECK(r.back().status() == 480);   // the trunk's: routed, nobody registered
    b.gateway().trunk = {"sip:other.example.net", "other.example.net", 5060, config::SipTrunk::Transport::Udp};
    std::string again = wire;
    again.replace(again.find("z9hG4bKn1"), 9, "z9hG4bKn2");
    r = b.feed(b.trunk, again, kTrunk);
    REQUIRE_FALSE(r.empty());
    CHECK(r.back().status() == 403);   // a name we have not resolved matches nobody
}

TEST_CASE("inbound INVITE over our TLS connection: answers name the connection's address, transport TLS") {
    Bench b;
    b.gateway().trunk = {"sips:127.0.0.1:5061", "127.0.0.1", 5061, config::SipTrunk::Transport::Tls, true};
    SipFlow tls{kTrunk, false, true, true, *IpAddress::parse("127.0.0.1"), Endpoint::parse("127.0.0.1:40004")};
    auto wire = std::string("INVITE sips:+15550123@127.0.0.1:40004 SIP/2.0\r\n"
                "Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKt1\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:+15550123@127.0.0.1>\r\n"
                "Call-ID: t1\r\nCSeq: 1 INVITE\r\nContact: <sips:a@127.0.0.1:5061>\r\nContent-Type: application/sdp\r\n"
                "Content-Length: ") + std::to_string(sip::samples::kSdpOffer.size()) + "\r\n\r\n" + sip::samples::kSdpOffer;
    // Register alice so that the call forks to her and we can see our side of the trunk leg.
    auto r0 = b.feed(b.ws, sip::samples::kJsSipRegister, kWs);
    REQUIRE(r0.size() == 1);
    REQUIRE(b.feed(b.ws, answered(sip::samples::kJsSipRegister, r0[0], "alice", "wonderland", "z9hG4bKr"), kWs)[0].status() == 200);
    std::vector<sip::Action> out;
    b.router.on_message(b.now, 1'700'000'000, tls, wire, out);
    auto to_browser = Bench::sent(out, kWs);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].method() == "INVITE");
    auto ok = sip::Message::response(to_browser[0], 200, {}, "browsertag");
    ok.add_contact("<sip:kd3b3o1r@3b5kq2ugmd6u.invalid;transport=ws>");
    ok.set_body("application/sdp", sip::samples::kSdpOffer);
    std::vector<sip::Action> answered_out;
    b.router.on_message(b.now, 1'700'000'000, b.ws, ok.serialize(), answered_out);
    auto to_trunk = Bench::sent(answered_out, kTrunk);
    REQUIRE_FALSE(to_trunk.empty());
    CHECK(to_trunk.back().status() == 200);
    CHECK(to_trunk.back().serialize().find("Contact: <sips:turnbridge@127.0.0.1:40004>") != std::string::npos);
}

TEST_CASE("registration over a TLS connection: Contact at the connection; when it closes, register again on a new one") {
    Bench b;
    b.gateway().trunk = {"sips:127.0.0.1:5061", "127.0.0.1", 5061, config::SipTrunk::Transport::Tls, true};
    b.gateway().register_to_trunk = true;
    b.flow_local = Endpoint::parse("127.0.0.1:40005");
    std::vector<sip::Action> out;
    b.router.start(b.now, out);
    auto reg = Bench::sent(out, kTrunk);
    REQUIRE(reg.size() == 1);
    CHECK(reg[0].method() == "REGISTER");
    CHECK(reg[0].request_uri() == "sips:127.0.0.1:5061");
    CHECK(reg[0].serialize().find("Contact: <sips:turnbridge@127.0.0.1:40005>") != std::string::npos);

    std::vector<sip::Action> closed;
    b.router.on_flow_closed(b.now + 1s, kTrunk, closed);
    CHECK(Bench::sent(closed, kTrunk).empty());
    REQUIRE(b.router.next_wake());
    CHECK(*b.router.next_wake() <= b.now + 1s + SipRouter::kReRegister);
    b.next_flow = 21;
    b.flow_local = Endpoint::parse("127.0.0.1:40006");
    std::vector<sip::Action> again;
    b.router.on_timer(b.now + 1s + SipRouter::kReRegister, again);
    auto reg2 = Bench::sent(again, 21);
    REQUIRE(reg2.size() == 1);
    CHECK(reg2[0].method() == "REGISTER");
    CHECK(reg2[0].serialize().find("Contact: <sips:turnbridge@127.0.0.1:40006>") != std::string::npos);
}

TEST_CASE("a trunk that cannot be reached to register is tried again kReRegister later") {
    Bench b;
    b.gateway().register_to_trunk = true;
    b.refuse_flow = true;
    std::vector<sip::Action> out;
    b.router.start(b.now, out);
    CHECK(Bench::sent(out, kTrunk).empty());
    REQUIRE(b.router.next_wake());
    CHECK(*b.router.next_wake() == b.now + SipRouter::kReRegister);
    b.refuse_flow = false;
    std::vector<sip::Action> again;
    b.router.on_timer(b.now + SipRouter::kReRegister, again);
    auto reg = Bench::sent(again, kTrunk);
    REQUIRE(reg.size() == 1);
    CHECK(reg[0].method() == "REGISTER");
    CHECK(reg[0].request_uri() == "sip:127.0.0.1:5070;transport=udp");
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

TEST_CASE("issue 14: an outbound call names its trunk; the trunk's REFER rings the named user with a Call-ID of this worker's") {
    Bench b;
    b.handover_media = true;
    // alice also on a second browser (kWs2): the one the transfer rings.
    constexpr sip::TransportId kWs2 = 8;
    const SipFlow ws2{kWs2, true, true, true, *IpAddress::parse("192.0.2.8"), {}};
    auto challenge = b.feed(ws2, sip::samples::kJsSipRegister, kWs2);
    REQUIRE(challenge.size() == 1);
    REQUIRE(b.feed(ws2, answered(sip::samples::kJsSipRegister, challenge[0], "alice", "wonderland", "z9hG4bKr2"), kWs2)
                .at(0).status() == 200);
    auto r = b.feed(b.ws, sip::samples::jssip_invite(), kWs);
    REQUIRE(r.size() == 2);
    std::vector<sip::Action> out;
    b.router.on_message(b.now, 1'700'000'000, b.ws,
                        answered(sip::samples::jssip_invite(), r[1], "alice", "wonderland", "z9hG4bKi2"), out);
    auto to_trunk = Bench::sent(out, kTrunk);
    REQUIRE(to_trunk.size() == 1);
    const auto inv = std::move(to_trunk[0]);
    auto ok = sip::Message::response(inv, 200, {}, "trunktag");
    ok.add_contact("<sip:+15550123@127.0.0.1:5070>");
    ok.set_body("application/sdp", "v=0\r\ns=trunk\r\n");
    out.clear();
    b.router.on_message(b.now, 1'700'000'000, b.trunk, ok.serialize(), out);
    REQUIRE(Bench::sent(out, kWs).at(0).status() == 200);

    auto refer = std::move(*sip::Message::request("REFER", "sip:turnbridge@127.0.0.1:5062"));
    refer.push_via("UDP", "127.0.0.1:5070", "z9hG4bKtrunkrefer");
    refer.set_from("<sip:+15550123@127.0.0.1:5070>;tag=trunktag");
    refer.set_to(inv.from_header());
    refer.set_call_id(inv.call_id());
    refer.set_cseq(1, "REFER");
    refer.add_contact("<sip:+15550123@127.0.0.1:5070>");
    refer.add_header("Refer-To", "<sip:alice@example.org>");
    out.clear();
    b.router.on_message(b.now, 1'700'000'000, b.trunk, refer.serialize(), out);
    to_trunk = Bench::sent(out, kTrunk);
    REQUIRE(to_trunk.size() == 2);
    CHECK(to_trunk[0].status() == 202);   // armed for outbound calls too (it was 403)
    CHECK(to_trunk[1].method() == "NOTIFY");
    CHECK(Bench::sent(out, kWs).empty());   // the calling browser's own connection does not ring
    auto to_ws2 = Bench::sent(out, kWs2);
    REQUIRE(to_ws2.size() == 1);
    CHECK(to_ws2[0].method() == "INVITE");
    // Its answer must come back to this worker (sip::Placement reads the mark in the Call-ID).
    CHECK(sip::Placement::owned_by(to_ws2[0].call_id()) == 0u);

    // The trunk hangs up: the call record names the trunk ("default": the single-trunk form).
    auto bye = std::move(*sip::Message::request("BYE", "sip:turnbridge@127.0.0.1:5062"));
    bye.push_via("UDP", "127.0.0.1:5070", "z9hG4bKtrunkbye");
    bye.set_from("<sip:+15550123@127.0.0.1:5070>;tag=trunktag");
    bye.set_to(inv.from_header());
    bye.set_call_id(inv.call_id());
    bye.set_cseq(2, "BYE");
    out.clear();
    b.router.on_message(b.now, 1'700'000'000, b.trunk, bye.serialize(), out);
    b.router.on_timer(b.now, out);
    REQUIRE(b.ended.size() == 1);
    CHECK(b.ended[0].trunk == "default");
    CHECK(b.ended[0].outbound);
}

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

namespace {

std::string options_from(const std::string& host, const std::string& branch, const std::string& transport = "UDP") {
    return "OPTIONS sip:127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/" + transport + " " + host + ":5060;branch=z9hG4bK" + branch +
           "\r\nMax-Forwards: 70\r\nFrom: <sip:probe@" + host + ">;tag=p" + branch + "\r\nTo: <sip:127.0.0.1:5062>\r\n"
           "Call-ID: opt-" + branch + "@" + host + "\r\nCSeq: 1 OPTIONS\r\nContact: <sip:probe@" + host + ":5060>\r\n"
           "Accept: application/sdp\r\nContent-Length: 0\r\n\r\n";
}

std::size_t limit(const SipRouter& r, sip::Limit l) { return r.limits()[static_cast<std::size_t>(l)]; }

}  // namespace

TEST_CASE("UDP from an address that is no trunk: one stateless final answer no larger than the request, never retransmitted") {
    Bench b;
    SipFlow stranger{11, false, false, false, *IpAddress::parse("198.51.100.1"), {}};
    const std::string invite = "INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\n"
                               "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKs1\r\n"
                               "Max-Forwards: 70\r\nFrom: <sip:a@198.51.100.1>;tag=1\r\nTo: <sip:+15550123@127.0.0.1>\r\n"
                               "Call-ID: s1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@198.51.100.1>\r\nContent-Length: 0\r\n\r\n";
    std::vector<sip::Action> out;
    b.router.on_message(b.now, 0, stranger, invite, out);
    auto r = Bench::sent(out, 11);
    REQUIRE(r.size() == 1);   // no 100 Trying: nothing but the final answer
    CHECK(r[0].status() == 403);
    CHECK(r[0].serialize().size() <= invite.size());
    CHECK(b.router.transactions() == 0);   // no state: nothing to retransmit, nothing to evict
    CHECK_FALSE(b.router.next_wake());
    CHECK_FALSE(b.router.uses_flow(11));

    auto ok = b.feed(stranger, options_from("198.51.100.1", "o1"), 11);
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].status() == 200);
    CHECK(b.router.transactions() == 0);

    SUBCASE("an answer larger than the request is not sent") {
        // No Contact, no Accept: the 200 (with a To tag and Allow) would outgrow it.
        std::string tiny = options_from("198.51.100.1", "tiny");
        tiny.erase(tiny.find("Contact:"), tiny.find("Content-Length") - tiny.find("Contact:"));
        REQUIRE(sip::Message::parse(tiny));
        CHECK(b.feed(stranger, tiny, 11).empty());
        CHECK(limit(b.router, sip::Limit::StrangerSilent) == 1);
    }
    SUBCASE("server.sip_hide_from_strangers: no answer at all") {
        b.cfg->sip_hide_from_strangers = true;
        CHECK(b.feed(stranger, options_from("198.51.100.1", "o2"), 11).empty());
        CHECK(limit(b.router, sip::Limit::StrangerSilent) == 1);
        // The trunk is no stranger: its OPTIONS is still answered.
        CHECK(b.feed(b.trunk, options_from("127.0.0.1", "o3"), kTrunk).size() == 1);
    }
}

TEST_CASE("requests per source are held to sip_requests_per_second; other sources and the trunk are still answered") {
    Bench b;   // defaults: 20 a second, 40 at once
    SipFlow a{11, false, false, false, *IpAddress::parse("198.51.100.1"), {}};
    SipFlow c{12, false, false, false, *IpAddress::parse("198.51.100.2"), {}};
    std::size_t answered = 0;
    for (int i = 0; i < 200; ++i) answered += b.feed(a, options_from("198.51.100.1", "a" + std::to_string(i)), 11).size();
    CHECK(answered == 40);
    CHECK(limit(b.router, sip::Limit::RequestRate) == 160);
    CHECK(b.feed(c, options_from("198.51.100.2", "c1"), 12).size() == 1);
    answered = 0;
    for (int i = 0; i < 500; ++i) answered += b.feed(b.trunk, options_from("127.0.0.1", "t" + std::to_string(i)), kTrunk).size();
    CHECK(answered == 400);   // a trunk's address gets kTrunkRateFactor (10) times the burst
    CHECK(limit(b.router, sip::Limit::RequestRate) == 160 + 100);
    // The window is burst/rate = 2 s; half-way through the next one, half of the old count is
    // still in it: 20 more.
    b.now += 3s;
    answered = 0;
    for (int i = 0; i < 100; ++i) answered += b.feed(a, options_from("198.51.100.1", "b" + std::to_string(i)), 11).size();
    CHECK(answered == 20);

    SUBCASE("over a WebSocket the source is told to slow down with 503") {
        std::vector<sip::Message> last;
        for (int i = 0; i < 60; ++i) last = b.feed(b.ws, options_from("h.invalid", "w" + std::to_string(i), "WSS"), kWs);
        REQUIRE(last.size() == 1);
        CHECK(last[0].status() == 503);
        CHECK(last[0].header("Retry-After") == "1");
    }
}

TEST_CASE("calls per user: beyond gateway.max_calls_per_user an INVITE gets 486; beyond the realm's max_calls 503") {
    Bench b;
    b.gateway().max_calls_per_user = 2;
    auto first = b.feed(b.ws, sip::samples::jssip_invite(), kWs);   // 100 and 407
    REQUIRE(first.size() == 2);
    auto invite = [&](int i) {
        std::string w = sip::samples::jssip_invite();
        w.replace(w.find("mvh2l0g3kcq1fo9tbhm5"), 20, "limit-call-" + std::to_string(i));
        auto r = b.feed(b.ws, answered(w, first[1], "alice", "wonderland", "z9hG4bKlim" + std::to_string(i)), kWs);
        REQUIRE_FALSE(r.empty());
        return r.back().status();
    };
    CHECK(invite(1) == 100);
    CHECK(invite(2) == 100);
    CHECK(b.router.calls() == 2);
    CHECK(invite(3) == 486);
    CHECK(b.router.calls() == 2);
    CHECK(limit(b.router, sip::Limit::CallsPerUser) == 1);

    b.gateway().max_calls_per_user = 0;   // unlimited per user: the realm's bound is next
    b.gateway().max_calls = 3;
    CHECK(invite(4) == 100);
    CHECK(invite(5) == 503);
    CHECK(limit(b.router, sip::Limit::CallsPerRealm) == 1);
    // The default realm share: 1,000 media ports hold 333 calls (three ports each), for the one gateway realm.
    b.gateway().max_calls = 0;
    CHECK(b.cfg->realm_max_calls(b.cfg->realms.at("example.org")) == 333);
}

TEST_CASE("REGISTER digest guessing: past auth_failures_per_minute 503 with Retry-After, no check; other sources register") {
    Bench b;
    AuthThrottle throttle(3, 1);
    b.router.set_auth_throttle(&throttle);
    auto r = b.feed(b.ws, sip::samples::kJsSipRegister, kWs);
    REQUIRE(r.size() == 1);
    REQUIRE(r[0].status() == 401);
    std::vector<int> statuses;
    for (int i = 0; i < 6; ++i) {
        auto got = b.feed(b.ws, answered(sip::samples::kJsSipRegister, r[0], "alice", "guess" + std::to_string(i),
                                         "z9hG4bKg" + std::to_string(i)), kWs);
        REQUIRE(got.size() == 1);
        statuses.push_back(got[0].status());
        if (i == 5) CHECK(got[0].header("Retry-After") == "20");   // 3 a minute: a token every 20 s
    }
    CHECK(statuses == std::vector<int>{403, 403, 403, 503, 503, 503});   // RFC 3261 §21.5.4
    CHECK(throttle.counters().failures[1] == 3);
    CHECK(throttle.counters().throttled[1] == 3);
    // Even the right password is not checked from there now ...
    auto held = b.feed(b.ws, answered(sip::samples::kJsSipRegister, r[0], "alice", "wonderland", "z9hG4bKh"), kWs);
    REQUIRE(held.size() == 1);
    CHECK(held[0].status() == 503);
    CHECK(b.router.bindings() == 0);
    // ... while alice registers from her own address (a fresh nonce: nonces are bound to the IP).
    SipFlow home{kWs + 1, true, true, true, *IpAddress::parse("198.51.100.20"), {}};
    std::string fresh = sip::samples::kJsSipRegister;   // a new transaction: another branch
    fresh.replace(fresh.find("z9hG4bK9573563"), 14, "z9hG4bKhome001");
    auto c = b.feed(home, fresh, kWs + 1);
    REQUIRE(c.size() == 1);
    auto ok = b.feed(home, answered(fresh, c[0], "alice", "wonderland", "z9hG4bKo"), kWs + 1);
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].status() == 200);
}

TEST_CASE("test_numbers (issue 16): echo, 9196, tone, dtmf go to the test line over UDP; other numbers and realms without it to the trunk") {
    Bench b;
    const sip::TransportId kTestLine = 4242;
    std::optional<Endpoint> asked_line;
    b.router.set_test_line(*Endpoint::parse("127.0.0.1:40000"), [&](const Endpoint& to) -> std::optional<sip::TransportId> {
        asked_line = to;
        return kTestLine;
    });
    // A browser's authenticated INVITE to `number` (fresh Call-ID and branches): where it went.
    int n = 0;
    auto call = [&](const std::string& number) {
        std::string wire = sip::samples::jssip_invite("z9hG4bKt" + std::to_string(++n));
        for (std::size_t p; (p = wire.find("+15550123")) != std::string::npos;) wire.replace(p, 9, number);
        wire.replace(wire.find("mvh2l0g3kcq1fo9tbhm5"), 20, "testline-call-" + std::to_string(n));
        auto r = b.feed(b.ws, wire, kWs);
        REQUIRE(r.size() == 2);
        REQUIRE(r[1].status() == 407);
        std::vector<sip::Action> out;
        b.router.on_message(b.now, 1'700'000'000, b.ws, answered(wire, r[1], "alice", "wonderland", "z9hG4bKa" + std::to_string(n)), out);
        return out;
    };
    SUBCASE("off: the trunk") {
        auto out = call("echo");
        REQUIRE(Bench::sent(out, kTrunk).size() == 1);
        CHECK(Bench::sent(out, kTestLine).empty());
        CHECK_FALSE(asked_line);
    }
    SUBCASE("on") {
        b.gateway().test_numbers = true;
        b.gateway().max_calls_per_user = 0;   // five live calls of alice's
        for (const std::string number : {"echo", "9196", "tone", "dtmf"}) {
            CAPTURE(number);
            auto out = call(number);
            auto to_line = Bench::sent(out, kTestLine);
            REQUIRE(to_line.size() == 1);
            CHECK(to_line[0].request_uri() == "sip:" + number + "@127.0.0.1:40000;transport=udp");
            CHECK(to_line[0].top_via_transport() == "UDP");
            CHECK(Bench::sent(out, kTrunk).empty());
        }
        CHECK(asked_line == Endpoint::parse("127.0.0.1:40000"));
        auto out = call("+15550199");
        CHECK(Bench::sent(out, kTestLine).empty());
        REQUIRE(Bench::sent(out, kTrunk).size() == 1);
        CHECK(Bench::sent(out, kTrunk)[0].request_uri() == "sip:+15550199@127.0.0.1:5070;transport=udp");
    }
}

TEST_CASE("fleet (issue 15): a trunk INVITE for a user registered on another live node is proxied there; silence: 480") {
    Bench b;
    FleetLocations fleet;
    constexpr sip::TransportId kNodeA = 33;
    auto snap = std::make_shared<RemoteLocations>();
    snap->peers.push_back({"node-a", Endpoint{*IpAddress::parse("127.0.0.11"), 5062}, b.now + 3s});
    snap->aors["alice@example.org"] = {0};
    fleet.publish(snap);
    std::vector<Endpoint> asked;
    b.router.set_fleet(&fleet, "127.0.0.1:5062", [&](const Endpoint& to) -> std::optional<sip::TransportId> {
        asked.push_back(to);
        return kNodeA;
    });
    auto invite = [](std::string_view call_id) {
        return fmt::format("INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\n"
                           "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{0}\r\n"
                           "Max-Forwards: 70\r\nFrom: <sip:+1999@127.0.0.1>;tag=1\r\nTo: <sip:+15550123@127.0.0.1>\r\n"
                           "Call-ID: {0}\r\nCSeq: 1 INVITE\r\nContact: <sip:t@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n",
                           call_id);
    };
    std::vector<sip::Action> out;
    b.router.on_message(b.now, 1'700'000'000, b.trunk, invite("fl1"), out);
    auto to_a = Bench::sent(out, kNodeA);
    auto to_trunk = Bench::sent(out, kTrunk);
    REQUIRE(to_a.size() == 1);
    REQUIRE(asked.size() == 1);
    CHECK(asked[0].to_string() == "127.0.0.11:5062");
    CHECK(to_a[0].method() == "INVITE");
    CHECK(to_a[0].top_via_branch().starts_with("z9hG4bKfleet"));
    CHECK(to_a[0].via_count() == 2);
    CHECK(to_a[0].max_forwards() == 69);
    REQUIRE(to_a[0].record_routes().size() == 1);
    CHECK(to_a[0].record_routes()[0].find("fleet@127.0.0.1:5062") != std::string::npos);
    REQUIRE(to_trunk.size() == 1);
    CHECK(to_trunk[0].status() == 100);   // ours: the trunk stops retransmitting

    // Node A's 180 and 200 come back through us, our Via popped, on the trunk's flow.
    SipFlow from_a{kNodeA, false, false, false, *IpAddress::parse("127.0.0.11"), {}};
    for (int code : {180, 200}) {
        auto r = sip::Message::response(to_a[0], code, {}, "tagA");
        auto back = b.feed(from_a, r.serialize(), kTrunk);
        REQUIRE(back.size() == 1);
        CHECK(back[0].status() == code);
        CHECK(back[0].via_count() == 1);
        CHECK(back[0].top_via_branch() == "z9hG4bKfl1");
    }

    // A node that answers nothing (it died since the snapshot): 480 after 2 s.
    out.clear();
    b.router.on_message(b.now, 1'700'000'000, b.trunk, invite("fl2"), out);
    REQUIRE(Bench::sent(out, kNodeA).size() == 1);
    REQUIRE(b.router.next_wake());
    CHECK(*b.router.next_wake() <= b.now + 2s);
    b.now += 2100ms;
    out.clear();
    b.router.on_timer(b.now, out);
    auto late = Bench::sent(out, kTrunk);
    REQUIRE(late.size() == 1);
    CHECK(late[0].status() == 480);

    // Its heartbeat older than 3 s: not proxied; the local path answers 480 at once.
    b.now += 2s;
    auto r = b.feed(b.trunk, invite("fl3"), kTrunk);
    REQUIRE_FALSE(r.empty());
    CHECK(r.back().status() == 480);
    CHECK(asked.size() == 2);
}

TEST_CASE("fleet (issue 15): forking across two nodes: the first 2xx wins and the other branch is CANCELed") {
    Bench b;
    FleetLocations fleet;
    auto snap = std::make_shared<RemoteLocations>();
    snap->peers.push_back({"node-a", Endpoint{*IpAddress::parse("127.0.0.11"), 5062}, b.now + 3s});
    snap->peers.push_back({"node-c", Endpoint{*IpAddress::parse("127.0.0.13"), 5062}, b.now + 3s});
    snap->aors["alice@example.org"] = {0, 1};
    fleet.publish(snap);
    b.router.set_fleet(&fleet, "127.0.0.1:5062", [](const Endpoint& to) -> std::optional<sip::TransportId> {
        return to.ip.to_string() == "127.0.0.11" ? 41 : 43;
    });
    const std::string invite = "INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\n"
                               "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKfork1\r\n"
                               "Max-Forwards: 70\r\nFrom: <sip:+1999@127.0.0.1>;tag=1\r\nTo: <sip:+15550123@127.0.0.1>\r\n"
                               "Call-ID: fork1\r\nCSeq: 1 INVITE\r\nContact: <sip:t@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";
    std::vector<sip::Action> out;
    b.router.on_message(b.now, 1'700'000'000, b.trunk, invite, out);
    auto to_a = Bench::sent(out, 41), to_c = Bench::sent(out, 43);
    REQUIRE(to_a.size() == 1);
    REQUIRE(to_c.size() == 1);
    CHECK(to_a[0].top_via_branch() != to_c[0].top_via_branch());
    CHECK(b.router.fleet_forks() == 1);

    // Node C rings, node A answers: the 200 goes to the trunk, node C gets a CANCEL for its branch.
    SipFlow from_a{41, false, false, false, *IpAddress::parse("127.0.0.11"), {}};
    SipFlow from_c{43, false, false, false, *IpAddress::parse("127.0.0.13"), {}};
    CHECK(b.feed(from_c, sip::Message::response(to_c[0], 180, {}, "tagC").serialize(), kTrunk).size() == 1);
    out.clear();
    b.router.on_message(b.now, 1'700'000'000, from_a, sip::Message::response(to_a[0], 200, {}, "tagA").serialize(), out);
    auto up = Bench::sent(out, kTrunk);
    REQUIRE(up.size() == 1);
    CHECK(up[0].status() == 200);
    auto cancel = Bench::sent(out, 43);
    REQUIRE(cancel.size() == 1);
    CHECK(cancel[0].method() == "CANCEL");
    CHECK(cancel[0].top_via_branch() == to_c[0].top_via_branch());   // RFC 3261 §9.1
    // Node C's 487 is not the trunk's business any more.
    CHECK(b.feed(from_c, sip::Message::response(to_c[0], 487, {}, "tagC").serialize(), kTrunk).empty());
}

TEST_CASE("fleet (issue 15): bindings here and on another node: both ring (this node is a branch of its own fork); the first answer wins") {
    Bench b;
    FleetLocations fleet;
    constexpr sip::TransportId kNodeA = 41, kSelf = 45;
    auto snap = std::make_shared<RemoteLocations>();
    snap->peers.push_back({"node-a", Endpoint{*IpAddress::parse("127.0.0.11"), 5062}, b.now + 3s});
    fleet.publish(snap);
    std::vector<Endpoint> asked;
    b.router.set_fleet(&fleet, "127.0.0.1:5062", [&](const Endpoint& to) -> std::optional<sip::TransportId> {
        asked.push_back(to);
        return to.ip.to_string() == "127.0.0.11" ? kNodeA : kSelf;
    });
    // alice's browser registers here.
    auto r0 = b.feed(b.ws, sip::samples::kJsSipRegister, kWs);
    REQUIRE(r0.size() == 1);
    REQUIRE(b.feed(b.ws, answered(sip::samples::kJsSipRegister, r0[0], "alice", "wonderland", "z9hG4bKr"), kWs)[0].status() == 200);
    auto invite = [](std::string_view call_id) {
        return fmt::format("INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\n"
                           "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{0}\r\n"
                           "Max-Forwards: 70\r\nFrom: <sip:+1999@127.0.0.1>;tag=1\r\nTo: <sip:+15550123@127.0.0.1>\r\n"
                           "Call-ID: {0}\r\nCSeq: 1 INVITE\r\nContact: <sip:t@127.0.0.1:5070>\r\n"
                           "Content-Type: application/sdp\r\nContent-Length: {1}\r\n\r\n{2}",
                           call_id, sip::samples::kSdpOffer.size(), sip::samples::kSdpOffer);
    };
    // The same flow our host gives for our own address: a datagram we sent ourselves.
    SipFlow self{kSelf, false, false, false, *IpAddress::parse("127.0.0.1"), {}};
    SipFlow from_a{kNodeA, false, false, false, *IpAddress::parse("127.0.0.11"), {}};

    SUBCASE("alice only here: the local browser rings, nothing is proxied") {
        std::vector<sip::Action> out;
        b.router.on_message(b.now, 1'700'000'000, b.trunk, invite("lo1"), out);
        CHECK(Bench::sent(out, kWs).size() == 1);
        CHECK(asked.empty());
        CHECK(b.router.fleet_forks() == 0);
    }

    snap->aors["alice@example.org"] = {0};   // and on node A
    // The trunk's INVITE: one fork, two branches (node A and ourselves), no browser rung yet.
    std::vector<sip::Action> out;
    b.router.on_message(b.now, 1'700'000'000, b.trunk, invite("both1"), out);
    auto to_a = Bench::sent(out, kNodeA), to_self = Bench::sent(out, kSelf);
    REQUIRE(to_a.size() == 1);
    REQUIRE(to_self.size() == 1);
    CHECK(Bench::sent(out, kWs).empty());
    CHECK(b.router.fleet_forks() == 1);
    CHECK(to_self[0].top_via_sent_by() == "127.0.0.1:5062");
    CHECK(to_self[0].top_via_branch() != to_a[0].top_via_branch());
    REQUIRE(Bench::sent(out, kTrunk).size() == 1);
    CHECK(Bench::sent(out, kTrunk)[0].status() == 100);

    // Our own branch comes back in: the local browser rings (not proxied again).
    const auto calls_before = b.router.calls();
    out.clear();
    b.router.on_message(b.now, 1'700'000'000, self, to_self[0].serialize(), out);
    auto to_browser = Bench::sent(out, kWs);
    REQUIRE(to_browser.size() == 1);
    CHECK(to_browser[0].method() == "INVITE");
    CHECK(Bench::sent(out, kNodeA).empty());
    CHECK(b.router.fleet_forks() == 1);
    CHECK(b.router.calls() == calls_before + 1);
    // Our branch's 180 reaches the trunk through the fork.
    for (auto& m : Bench::sent(out, kSelf)) {
        auto back = b.feed(self, m.serialize(), kTrunk);
        if (m.status() == 100) CHECK(back.empty());
    }
    out.clear();
    auto ringing = sip::Message::response(to_browser[0], 180, {}, "browsertag");
    b.router.on_message(b.now, 1'700'000'000, b.ws, ringing.serialize(), out);
    auto r180 = Bench::sent(out, kSelf);
    REQUIRE(r180.size() == 1);
    auto up180 = b.feed(self, r180[0].serialize(), kTrunk);
    REQUIRE(up180.size() == 1);
    CHECK(up180[0].status() == 180);
    CHECK(up180[0].top_via_branch() == "z9hG4bKboth1");

    SUBCASE("node A answers: the trunk gets its 200, our branch a CANCEL, and the local browser a CANCEL") {
        out.clear();
        b.router.on_message(b.now, 1'700'000'000, from_a, sip::Message::response(to_a[0], 200, {}, "tagA").serialize(), out);
        auto up = Bench::sent(out, kTrunk);
        REQUIRE(up.size() == 1);
        CHECK(up[0].status() == 200);
        auto cancel = Bench::sent(out, kSelf);
        REQUIRE(cancel.size() == 1);
        CHECK(cancel[0].method() == "CANCEL");
        CHECK(cancel[0].top_via_branch() == to_self[0].top_via_branch());
        CHECK(Bench::sent(out, kNodeA).empty());
        // The CANCEL comes back in: the ringing browser is CANCELed, our branch answers 200/487.
        out.clear();
        b.router.on_message(b.now, 1'700'000'000, self, cancel[0].serialize(), out);
        auto to_ws = Bench::sent(out, kWs);
        REQUIRE(to_ws.size() == 1);
        CHECK(to_ws[0].method() == "CANCEL");
        CHECK(Bench::sent(out, kNodeA).empty());   // not sent on to the other branches
        // Our branch's 200 (CANCEL) and 487 stop at the fork; the trunk has its answer.
        bool acked = false;
        for (auto& m : Bench::sent(out, kSelf)) {
            std::vector<sip::Action> back;
            b.router.on_message(b.now, 1'700'000'000, self, m.serialize(), back);
            CHECK(Bench::sent(back, kTrunk).empty());
            if (m.status() != 487) continue;
            // The fork ACKs its branch's 487 itself (§17.1.1.3), with the branch's Via and the 487's To tag.
            auto ack = Bench::sent(back, kSelf);
            REQUIRE(ack.size() == 1);
            CHECK(ack[0].method() == "ACK");
            CHECK(ack[0].top_via_branch() == to_self[0].top_via_branch());
            CHECK(ack[0].to_tag() == m.to_tag());
            acked = true;
        }
        CHECK(acked);
    }
    SUBCASE("the local browser answers: its 200 reaches the trunk, node A's branch gets a CANCEL") {
        out.clear();
        auto ok = sip::Message::response(to_browser[0], 200, {}, "browsertag");
        ok.add_contact("<sip:kd3b3o1r@3b5kq2ugmd6u.invalid;transport=ws>");
        ok.set_body("application/sdp", sip::samples::kSdpOffer);
        b.router.on_message(b.now, 1'700'000'000, b.ws, ok.serialize(), out);
        auto ours = Bench::sent(out, kSelf);
        REQUIRE_FALSE(ours.empty());
        REQUIRE(ours.back().status() == 200);
        out.clear();
        b.router.on_message(b.now, 1'700'000'000, self, ours.back().serialize(), out);
        auto up = Bench::sent(out, kTrunk);
        REQUIRE(up.size() == 1);
        CHECK(up[0].status() == 200);
        REQUIRE(up[0].record_routes().size() == 1);   // the trunk's ACK and BYE come through us
        auto cancel = Bench::sent(out, kNodeA);
        REQUIRE(cancel.size() == 1);
        CHECK(cancel[0].method() == "CANCEL");
        CHECK(cancel[0].top_via_branch() == to_a[0].top_via_branch());
        REQUIRE(up[0].contacts().size() == 1);
        const std::string contact = up[0].contacts()[0].uri;
        // The trunk's ACK, routed through us, goes to our own branch's dialog, not to every branch.
        auto ack = fmt::format("ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKack1\r\n"
                               "Route: {}\r\nMax-Forwards: 70\r\nFrom: <sip:+1999@127.0.0.1>;tag=1\r\n"
                               "To: <sip:+15550123@127.0.0.1>;tag={}\r\nCall-ID: both1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
                               contact,
                               up[0].record_routes()[0], up[0].to_tag());
        out.clear();
        b.router.on_message(b.now, 1'700'000'000, b.trunk, ack, out);
        CHECK(Bench::sent(out, kNodeA).empty());
        auto acks = Bench::sent(out, kSelf);
        REQUIRE(acks.size() == 1);
        CHECK(acks[0].method() == "ACK");
        CHECK(acks[0].routes().empty());   // our Route is spent (§16.4): it does not loop back to us
        out.clear();
        b.router.on_message(b.now, 1'700'000'000, self, acks[0].serialize(), out);
        CHECK(Bench::sent(out, kNodeA).empty());
        CHECK(Bench::sent(out, kSelf).empty());
    }
}

// --- issue 14: attended transfer between two calls of one user (sip_router_attended.cpp) ----

namespace {

constexpr sip::TransportId kWsBob = 8;

// A browser call of `user` (Call-ID `call_id`) answered by the trunk: the browser's 200 and our
// INVITE to the trunk.
std::pair<sip::Message, sip::Message> browser_call(Bench& b, const std::string& user, const std::string& password,
                                                   const std::string& call_id, const SipFlow& flow) {
    std::string wire = sip::samples::jssip_invite("z9hG4bK" + call_id);
    wire.replace(wire.find("mvh2l0g3kcq1fo9tbhm5"), 20, call_id);
    wire.replace(wire.find("<sip:alice@"), 11, "<sip:" + user + "@");
    auto r = b.feed(flow, wire, flow.id);
    REQUIRE(r.size() == 2);
    std::vector<sip::Action> out;
    b.router.on_message(b.now, 1'700'000'000, flow, answered(wire, r[1], user, password, "z9hG4bKa" + call_id), out);
    auto to_trunk = Bench::sent(out, kTrunk);
    REQUIRE(to_trunk.size() == 1);
    auto resp = sip::Message::response(to_trunk[0], 200, {}, "tt-" + call_id);
    resp.add_contact("<sip:+15550123@127.0.0.1:5070>");
    resp.set_body("application/sdp", "v=0\r\ns=trunk\r\n");
    out.clear();
    b.router.on_message(b.now, 1'700'000'000, b.trunk, resp.serialize(), out);
    auto ok = Bench::sent(out, flow.id);
    REQUIRE(ok.size() == 1);
    REQUIRE(ok[0].status() == 200);
    return {std::move(ok[0]), std::move(to_trunk[0])};
}

// JsSIP's REFER on the dialog of `ok` whose Refer-To replaces the browser dialog of `other`.
std::string refer_replacing(const sip::Message& ok, std::uint32_t cseq, const std::string& call_id,
                            const std::string& to_tag, const std::string& from_tag) {
    auto m = std::move(*sip::Message::request("REFER", "sip:turnbridge@gw.example.org;transport=ws"));
    m.push_via("WSS", "3b5kq2ugmd6u.invalid", "z9hG4bKrefer" + std::to_string(cseq));
    m.set_from(ok.from_header());
    m.set_to(ok.to_header());
    m.set_call_id(ok.call_id());
    m.set_cseq(cseq, "REFER");
    m.add_header("Refer-To", "<sip:+15557002@example.org?Replaces=" + call_id + "%3Bto-tag%3D" + to_tag +
                                 "%3Bfrom-tag%3D" + from_tag + ">");
    return m.serialize();
}

std::string refer_replacing(const sip::Message& ok, std::uint32_t cseq, const sip::Message& other) {
    return refer_replacing(ok, cseq, other.call_id(), other.to_tag(), other.from_tag());
}

}  // namespace

TEST_CASE("attended transfer: alice's REFER with Replaces joins her two calls' trunk legs; both browser legs end; one party's BYE ends both") {
    Bench b;
    b.joinable = true;
    b.cfg->realms.at("example.org").users.emplace("bob", "builder");
    const SipFlow ws_bob{kWsBob, true, true, true, *IpAddress::parse("192.0.2.8"), {}};
    const auto a = browser_call(b, "alice", "wonderland", "call-a", b.ws);
    const auto* media_a = b.last_media;
    const auto bcall = browser_call(b, "alice", "wonderland", "call-b", b.ws);
    const auto* media_b = b.last_media;
    const auto c = browser_call(b, "bob", "builder", "call-c", ws_bob);
    std::uint32_t cseq = 7000;
    const auto refer = [&](const std::string& wire) {
        std::vector<sip::Action> out;
        b.router.on_message(b.now, 1'700'000'000, b.ws, wire, out);
        return out;
    };
    // Refusals: nothing joined, nobody hung up.
    {
        // Bob's call (never joined) and no call: 202, then the outcome NOTIFY 481.
        const auto outcome = [](std::vector<sip::Action>& out) {
            auto to_ws = Bench::sent(out, kWs);
            REQUIRE(to_ws.size() == 2);
            CHECK(to_ws[0].status() == 202);
            return sip::sipfrag_status(to_ws[1].body()).value_or(0);
        };
        auto out = refer(refer_replacing(a.first, ++cseq, c.first));
        CHECK(outcome(out) == 481);
        CHECK(Bench::sent(out, kWsBob).empty());
        out = refer(refer_replacing(a.first, ++cseq, "no-such-call", "x", "y"));
        CHECK(outcome(out) == 481);
        out = refer(refer_replacing(a.first, ++cseq, a.first));   // the call itself
        CHECK(Bench::sent(out, kWs).at(0).status() == 400);
        CHECK(b.joins.empty());
        CHECK(Bench::sent(out, kTrunk).empty());
    }
    // The join.
    auto out = refer(refer_replacing(a.first, ++cseq, bcall.first));
    REQUIRE(b.joins.size() == 1);
    CHECK(b.joins[0] == std::pair<const sip::MediaSdp*, const sip::MediaSdp*>{media_a, media_b});
    auto to_ws = Bench::sent(out, kWs);
    std::vector<std::string> seen;
    for (const auto& m : to_ws) seen.push_back(m.is_request() ? m.method() + " " + m.call_id() : std::to_string(m.status()));
    CHECK(seen == std::vector<std::string>{"BYE call-b", "202", "NOTIFY call-a", "NOTIFY call-a", "BYE call-a"});
    CHECK(Bench::sent(out, kTrunk).empty());
    CHECK(Bench::sent(out, kWsBob).empty());
    // A second join of the same calls: B's REFER toward A (its browser dialog ended) gets 403.
    out = refer(refer_replacing(bcall.first, 6300, a.first));
    CHECK(Bench::sent(out, kWs).at(0).status() == 403);
    CHECK(b.joins.size() == 1);
    // The browser's WebSocket closing ends neither call.
    out.clear();
    b.router.on_flow_closed(b.now, kWs, out);
    CHECK(Bench::sent(out, kTrunk).empty());
    CHECK(b.ended.empty());
    // The party of call A hangs up: its BYE ends call A, and call B's party gets our BYE.
    auto bye = std::move(*sip::Message::request("BYE", "sip:turnbridge@127.0.0.1:5062"));
    bye.push_via("UDP", "127.0.0.1:5070", "z9hG4bKbyeA");
    bye.set_from("<sip:+15550123@127.0.0.1:5070>;tag=tt-call-a");
    bye.set_to(a.second.from_header());
    bye.set_call_id(a.second.call_id());
    bye.set_cseq(5, "BYE");
    out.clear();
    b.router.on_message(b.now, 1'700'000'000, b.trunk, bye.serialize(), out);
    auto to_trunk = Bench::sent(out, kTrunk);
    REQUIRE(to_trunk.size() == 2);
    CHECK(to_trunk[0].status() == 200);
    CHECK(to_trunk[1].method() == "BYE");
    CHECK(to_trunk[1].call_id() == bcall.second.call_id());
    REQUIRE(b.ended.size() == 2);
    CHECK(b.ended[0].end_reason == "transferred");
    CHECK(b.ended[1].end_reason == "transferred");
    CHECK(b.ended[0].account == "alice");
    // Bob's call goes on, and the joined calls no longer count as alice's.
    CHECK(b.router.calls() == 3);
}

TEST_CASE("attended transfer: media that cannot be joined (the pass-through) gets 202 + NOTIFY 503 and both calls go on") {
    Bench b;
    const auto a = browser_call(b, "alice", "wonderland", "call-a", b.ws);
    const auto bcall = browser_call(b, "alice", "wonderland", "call-b", b.ws);
    std::vector<sip::Action> out;
    b.router.on_message(b.now, 1'700'000'000, b.ws, refer_replacing(a.first, 7001, bcall.first), out);
    auto to_ws = Bench::sent(out, kWs);
    REQUIRE(to_ws.size() == 2);
    CHECK(to_ws[0].status() == 202);
    CHECK(sip::sipfrag_status(to_ws[1].body()) == 503);
    CHECK(Bench::sent(out, kTrunk).empty());
    CHECK(b.ended.empty());
}

TEST_CASE("attended transfer: a user's calls are placed together: a browser INVITE by its caller, a trunk INVITE by the DID's first user") {
    Bench b;
    const auto browser = sip::Message::parse(sip::samples::jssip_invite());
    REQUIRE(browser);
    CHECK(b.router.placement_user(b.ws, *browser) == "alice@example.org");
    std::string wire = "INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKpl\r\n"
                       "From: <sip:+15557654@127.0.0.1:5070>;tag=c\r\nTo: <sip:+15550123@127.0.0.1:5062>\r\n"
                       "Call-ID: placed@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    const auto inbound = sip::Message::parse(wire);
    REQUIRE(inbound);
    CHECK(b.router.placement_user(b.trunk, *inbound) == "alice@example.org");
    wire.replace(wire.find("+15550123@127.0.0.1:5062 SIP"), 8, "+1555999");   // a DID routed nowhere
    const auto unrouted = sip::Message::parse(wire);
    REQUIRE(unrouted);
    CHECK(b.router.placement_user(b.trunk, *unrouted).empty());
    const SipFlow stranger{kTrunk, false, false, false, *IpAddress::parse("192.0.2.99"), {}};
    CHECK(b.router.placement_user(stranger, *inbound).empty());   // no trunk of ours
}

// Issue 15 hardening: any UDP source may send a response, and anyone may connect over TCP.
TEST_CASE("fleet: a response whose Via branch we did not make goes nowhere (it would name the flow it is sent on)") {
    Bench b;
    FleetLocations fleet;
    auto snap = std::make_shared<RemoteLocations>();
    snap->peers.push_back({"node-a", Endpoint{*IpAddress::parse("127.0.0.11"), 5062}, b.now + 3s});
    fleet.publish(snap);
    b.router.set_fleet(&fleet, "127.0.0.1:5062", [](const Endpoint&) -> std::optional<sip::TransportId> { return 41; });
    const SipFlow stranger{77, false, false, false, *IpAddress::parse("203.0.113.9"), {}};
    // A 200 OK "for" our branch naming the browser's WebSocket flow (kWs = 7), with the Via the
    // browser would expect under it: every shape a forger might try.
    for (const std::string forged : {"z9hG4bKfleet7x0123456789abcdef", "z9hG4bKfleet7x0123456789abcdef0123456789abcdef",
                                     "z9hG4bKfleet7x00000000000000000000000000000000", "z9hG4bKfleet7x"}) {
        CAPTURE(forged);
        const auto r = fmt::format("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch={}\r\n"
                                   "Via: SIP/2.0/WSS 3b5kq2ugmd6u.invalid;branch=z9hG4bKjs1\r\n"
                                   "From: <sip:alice@example.org>;tag=a\r\nTo: <sip:bob@example.org>;tag=b\r\n"
                                   "Call-ID: forged1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
                                   forged);
        const auto before = limit(b.router, sip::Limit::FleetRefused);
        std::vector<sip::Action> out;
        b.router.on_message(b.now, 1'700'000'000, stranger, r, out);
        CHECK(Bench::sent(out, kWs).empty());
        CHECK(out.empty());
        if (forged.size() > 14) CHECK(limit(b.router, sip::Limit::FleetRefused) == before + 1);
    }
}

TEST_CASE("fleet: a request routed through our Record-Route goes on only from a trunk or a node, and only to one (no open relay)") {
    Bench b;
    FleetLocations fleet;
    auto snap = std::make_shared<RemoteLocations>();
    snap->peers.push_back({"node-a", Endpoint{*IpAddress::parse("127.0.0.11"), 5062}, b.now + 3s});
    fleet.publish(snap);
    std::vector<Endpoint> asked;
    b.router.set_fleet(&fleet, "127.0.0.1:5062", [&](const Endpoint& to) -> std::optional<sip::TransportId> {
        asked.push_back(to);
        return 41;
    });
    const auto routed = [](std::string_view target) {
        return fmt::format("MESSAGE {} SIP/2.0\r\nVia: SIP/2.0/TCP 203.0.113.9:40000;branch=z9hG4bKrelay1\r\n"
                           "Route: <sip:fleet@127.0.0.1:5062;lr>\r\nMax-Forwards: 70\r\n"
                           "From: <sip:a@example.org>;tag=a\r\nTo: <sip:b@example.org>;tag=b\r\nCall-ID: relay1\r\n"
                           "CSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
                           target);
    };
    const SipFlow tcp_stranger{78, false, false, true, *IpAddress::parse("203.0.113.9"), {}};
    std::vector<sip::Action> out;
    SUBCASE("anyone over TCP, toward a node: dropped") {
        b.router.on_message(b.now, 1'700'000'000, tcp_stranger, routed("sip:x@127.0.0.11:5062"), out);
        CHECK(asked.empty());
        CHECK(Bench::sent(out, 41).empty());
        CHECK(limit(b.router, sip::Limit::FleetRefused) == 1);
    }
    SUBCASE("the trunk, toward an address that is neither a trunk nor a node: dropped") {
        b.router.on_message(b.now, 1'700'000'000, b.trunk, routed("sip:victim@198.51.100.7:9999"), out);
        CHECK(asked.empty());
        CHECK(limit(b.router, sip::Limit::FleetRefused) == 1);
    }
    SUBCASE("the trunk, toward a node: on its way, our Via on top") {
        b.router.on_message(b.now, 1'700'000'000, b.trunk, routed("sip:x@127.0.0.11:5062"), out);
        REQUIRE(asked.size() == 1);
        CHECK(asked[0].to_string() == "127.0.0.11:5062");
        auto on = Bench::sent(out, 41);
        REQUIRE(on.size() == 1);
        CHECK(on[0].top_via_branch().starts_with("z9hG4bKfleet"));
        CHECK(limit(b.router, sip::Limit::FleetRefused) == 0);
        // Node A's answer comes back through the branch we made: on the trunk's flow.
        const SipFlow from_a{41, false, false, false, *IpAddress::parse("127.0.0.11"), {}};
        auto back = b.feed(from_a, sip::Message::response(on[0], 200).serialize(), kTrunk);
        REQUIRE(back.size() == 1);
        CHECK(back[0].status() == 200);
    }
}

TEST_CASE("fleet: a new call from a node's address rings browsers only while that node is alive, and only over UDP (else 403)") {
    Bench b;
    FleetLocations fleet;
    auto snap = std::make_shared<RemoteLocations>();
    snap->peers.push_back({"node-a", Endpoint{*IpAddress::parse("127.0.0.11"), 5062}, b.now + 3s});
    fleet.publish(snap);
    b.router.set_fleet(&fleet, "127.0.0.1:5062", [](const Endpoint&) -> std::optional<sip::TransportId> { return 41; });
    auto r0 = b.feed(b.ws, sip::samples::kJsSipRegister, kWs);
    REQUIRE(r0.size() == 1);
    REQUIRE(b.feed(b.ws, answered(sip::samples::kJsSipRegister, r0[0], "alice", "wonderland", "z9hG4bKr"), kWs)[0].status() == 200);
    const auto invite = [](std::string_view call_id) {
        return fmt::format("INVITE sip:+15550123@127.0.0.1:5062 SIP/2.0\r\n"
                           "Via: SIP/2.0/UDP 127.0.0.11:5062;branch=z9hG4bK{0}\r\n"
                           "Max-Forwards: 69\r\nFrom: <sip:+1999@127.0.0.1>;tag=1\r\nTo: <sip:+15550123@127.0.0.1>\r\n"
                           "Call-ID: {0}\r\nCSeq: 1 INVITE\r\nContact: <sip:t@127.0.0.1:5070>\r\n"
                           "Content-Type: application/sdp\r\nContent-Length: {1}\r\n\r\n{2}",
                           call_id, sip::samples::kSdpOffer.size(), sip::samples::kSdpOffer);
    };
    const SipFlow from_a{41, false, false, false, *IpAddress::parse("127.0.0.11"), {}};
    const SipFlow tcp_from_a{42, false, false, true, *IpAddress::parse("127.0.0.11"), {}};
    std::vector<sip::Action> out;
    SUBCASE("alive, over UDP: alice's browser rings") {
        b.router.on_message(b.now, 1'700'000'000, from_a, invite("live1"), out);
        CHECK(Bench::sent(out, kWs).size() == 1);
    }
    SUBCASE("over TCP from its address: 403") {
        b.router.on_message(b.now, 1'700'000'000, tcp_from_a, invite("tcp1"), out);
        CHECK(Bench::sent(out, kWs).empty());
        auto r = Bench::sent(out, 42);
        REQUIRE_FALSE(r.empty());
        CHECK(r.back().status() == 403);
        CHECK(limit(b.router, sip::Limit::FleetRefused) == 1);
    }
    SUBCASE("its heartbeat over 3 s old (its address may be someone else's now): 403") {
        b.now += 4s;
        b.router.on_message(b.now, 1'700'000'000, from_a, invite("dead1"), out);
        CHECK(Bench::sent(out, kWs).empty());
        auto r = Bench::sent(out, 41);
        REQUIRE_FALSE(r.empty());
        CHECK(r.back().status() == 403);
        CHECK(limit(b.router, sip::Limit::FleetRefused) == 1);
    }
}
