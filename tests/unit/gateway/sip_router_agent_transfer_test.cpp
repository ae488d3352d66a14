// SPDX-License-Identifier: Apache-2.0
// SipRouter's agent hand-over to a number (issue 17, agent_transfer.cpp), without sockets: a trunk
// caller's agent asks {"event":"transfer","to":"+15557001"}; the number is called through the
// trunk with the relay's SDP; its refusal or its silence past agent_ring_timeout hangs the caller
// up with a Reason (RFC 3326); an answer joins them and the record names the relayed codecs.
// Every transfer is counted by result.
#include <doctest/doctest.h>

#include "agent_router_bench.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;
using namespace std::chrono_literals;
namespace test = turnbridge::gateway::test;

namespace {

const std::string& kRelay = test::kPcmuSdp;
const std::string& kAnswer = test::kPcmuAnswerSdp;

struct FakeAgents final : AgentPort {
    std::vector<std::string> log;
    int opened = 0;
    bool open_agent(const AgentOpen&) override {
        ++opened;
        return true;
    }
    void close_agent(const std::string&, const CallSummary& s) override { log.push_back("close " + s.end_reason); }
    std::optional<std::string> hand_over(const std::string&) override {
        log.push_back("hand_over");
        return kRelay;
    }
    void relay_to(const std::string&, const std::string& sdp) override { log.push_back(sdp == kAnswer ? "relay" : "relay?"); }
};

struct Bench : test::AgentRouterBench {
    FakeAgents agents;
    std::vector<CallSummary> ended;
    std::string caller_tag;   // our To tag in the caller's dialog
    Bench() : AgentRouterBench([](config::Realm& r) { r.gateway.routes["+15550177"] = {"agent:ws://127.0.0.1:8765/a"}; }) {
        router.set_agents(&agents);
        router.on_call_ended([this](const CallSummary& s, sip::MediaSdp*) { ended.push_back(s); });
    }
    // The trunk calls the agent's DID; the agent's stream comes up (200); the agent transfers.
    // Returns the INVITE toward the number, if any.
    std::optional<sip::Message> call_and_transfer(const std::string& to = "+15557001") {
        const auto r = feed("INVITE sip:+15550177@127.0.0.1:5062 SIP/2.0\r\n"
                            "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKc1\r\n"
                            "Max-Forwards: 70\r\nFrom: <sip:+15550142@127.0.0.1>;tag=caller\r\n"
                            "To: <sip:+15550177@127.0.0.1>\r\nCall-ID: caller-1\r\nCSeq: 1 INVITE\r\n"
                            "Contact: <sip:c@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\n"
                            "Content-Length: " + std::to_string(kAnswer.size()) + "\r\n\r\n" + kAnswer);
        REQUIRE_FALSE(r.empty());
        CHECK(r.back().status() == 100);   // waiting for the agent's stream
        std::vector<sip::Action> out;
        router.agent_answered(now, "caller-1", kRelay, out);
        auto ok = sent(out);
        REQUIRE(ok.size() == 1);
        CHECK(ok[0].status() == 200);
        caller_tag = ok[0].to_tag();
        router.agent_transfer(now, "caller-1", to, out);
        auto invite = sent(out);
        if (invite.empty()) return std::nullopt;
        REQUIRE(invite.size() == 1);
        return std::move(invite[0]);
    }
    static const sip::Message* find(const std::vector<sip::Message>& v, std::string_view method, std::string_view call_id) {
        for (const auto& m : v)
            if (m.is_request() && m.method() == method && m.call_id() == call_id) return &m;
        return nullptr;
    }
};

}  // namespace

TEST_CASE("agent hand-over to a number: the trunk gets the relay's offer; a 486 hangs the caller up with a Reason") {
    Bench b;
    const auto sent = b.call_and_transfer();
    REQUIRE(sent);
    const sip::Message& invite = *sent;
    CHECK(invite.method() == "INVITE");
    CHECK(invite.request_uri().starts_with("sip:+15557001@127.0.0.1:5070"));
    CHECK(invite.body() == kRelay);
    CHECK(b.agents.log == std::vector<std::string>{"hand_over"});
    const auto out = b.answer(invite, 486);
    const auto* bye = Bench::find(out, "BYE", "caller-1");
    REQUIRE(bye != nullptr);
    CHECK(bye->header("Reason").value_or("") == "SIP ;cause=486 ;text=\"hand-over failed\"");
    CHECK(Bench::find(out, "ACK", invite.call_id()) != nullptr);   // RFC 3261 §17.1.1.3
    CHECK(b.agents.log.back() == "close handover failed: 486");
    CHECK(b.router.agent_transfers() == std::array<std::uint64_t, 4>{0, 1, 0, 1});
}

TEST_CASE("agent hand-over to a number not answered within agent_ring_timeout: CANCEL, and BYE to the caller") {
    Bench b;
    const auto sent = b.call_and_transfer();
    REQUIRE(sent);
    const sip::Message& invite = *sent;
    b.answer(invite, 180);
    REQUIRE(b.router.next_wake());
    CHECK(*b.router.next_wake() <= b.now + 20s);
    b.now += 19s;
    std::vector<sip::Action> out;
    b.router.on_timer(b.now, out);
    CHECK(Bench::find(b.sent(out), "BYE", "caller-1") == nullptr);
    b.now += 1s;
    b.router.on_timer(b.now, out);
    const auto msgs = b.sent(out);
    CHECK(Bench::find(msgs, "CANCEL", invite.call_id()) != nullptr);
    const auto* bye = Bench::find(msgs, "BYE", "caller-1");
    REQUIRE(bye != nullptr);
    CHECK(bye->header("Reason").value_or("").find("cause=480") != std::string::npos);
    CHECK(b.agents.log.back() == "close handover failed: no answer");
    b.answer(invite, 487);
    CHECK(b.router.agent_transfers() == std::array<std::uint64_t, 4>{0, 1, 0, 1});   // counted once
    CHECK(b.router.agent_calls() == 0);
}

TEST_CASE("agent hand-over to a number answered: the relay joins them; the record names PCMU/PCMU; BYE ends both") {
    Bench b;
    const auto sent = b.call_and_transfer();
    REQUIRE(sent);
    const sip::Message& invite = *sent;
    const auto ack = b.answer(invite, 200, kAnswer);
    CHECK(Bench::find(ack, "ACK", invite.call_id()) != nullptr);
    CHECK(b.agents.log == std::vector<std::string>{"hand_over", "relay"});
    // The caller hangs up: the number gets BYE; its 200 ends the number's call, whose record
    // names the relay's codec and the trunk's (the media is not the gateway's: signaling knows).
    auto msgs = b.feed("BYE sip:turnbridge@127.0.0.1:5062 SIP/2.0\r\n"
                       "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKc2\r\n"
                       "Max-Forwards: 70\r\nFrom: <sip:+15550142@127.0.0.1>;tag=caller\r\n"
                       "To: <sip:+15550177@127.0.0.1>;tag=" + b.caller_tag +
                       "\r\nCall-ID: caller-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n");
    const auto* to_number = Bench::find(msgs, "BYE", invite.call_id());
    REQUIRE(to_number != nullptr);
    CHECK(std::any_of(msgs.begin(), msgs.end(), [](const sip::Message& m) { return !m.is_request() && m.status() == 200; }));
    b.feed(sip::Message::response(*to_number, 200).serialize());
    std::vector<sip::Action> out;
    b.router.on_timer(b.now, out);
    REQUIRE(b.ended.size() == 1);
    CHECK(b.ended[0].remote == "+15557001");
    CHECK(b.ended[0].codecs == "PCMU/PCMU");
    CHECK(b.ended[0].status == 200);
    CHECK(b.ended[0].end_reason == "bye-trunk");
    CHECK(b.agents.log.back() == "close bye-trunk");
    CHECK(b.router.agent_transfers() == std::array<std::uint64_t, 4>{0, 1, 0, 0});
}

TEST_CASE("agent transfers that go nowhere are ignored and counted: no such user, a second transfer") {
    Bench b;
    const auto none = b.call_and_transfer("nobody");
    CHECK_FALSE(none);
    CHECK(b.agents.log.empty());   // the agent keeps the call
    CHECK(b.router.agent_transfers() == std::array<std::uint64_t, 4>{0, 0, 1, 0});
    std::vector<sip::Action> out;
    b.router.agent_transfer(b.now, "caller-1", "+15557001", out);
    const auto invite = b.sent(out);   // a number: the trunk is called
    REQUIRE(invite.size() == 1);
    CHECK(invite[0].method() == "INVITE");
    b.router.agent_transfer(b.now, "caller-1", "+15557002", out);       // handed over already
    CHECK(b.sent(out).empty());
    CHECK(b.router.agent_transfers() == std::array<std::uint64_t, 4>{0, 1, 2, 0});
}

TEST_CASE("agent DID: an offer the agent's leg cannot take (G.729 alone) gets 488 and no agent is dialled; PCMA is taken") {
    Bench b;
    auto invite = [&](const std::string& call_id, const std::string& rtpmap) {
        const std::string sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                                "m=audio 42000 RTP/AVP " + rtpmap + "\r\n";
        return b.feed("INVITE sip:+15550177@127.0.0.1:5062 SIP/2.0\r\n"
                      "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK" + call_id + "\r\n"
                      "Max-Forwards: 70\r\nFrom: <sip:+15550142@127.0.0.1>;tag=caller\r\n"
                      "To: <sip:+15550177@127.0.0.1>\r\nCall-ID: " + call_id + "\r\nCSeq: 1 INVITE\r\n"
                      "Contact: <sip:c@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\n"
                      "Content-Length: " + std::to_string(sdp.size()) + "\r\n\r\n" + sdp);
    };
    const auto g729 = invite("g729", "18\r\na=rtpmap:18 G729/8000");
    REQUIRE_FALSE(g729.empty());
    CHECK(g729.back().status() == 488);
    CHECK(b.agents.opened == 0);
    const auto pcma = invite("pcma", "8\r\na=rtpmap:8 PCMA/8000");
    REQUIRE_FALSE(pcma.empty());
    CHECK(pcma.back().status() == 100);   // the agent is dialled; 200 when its stream is up
    CHECK(b.agents.opened == 1);
}
