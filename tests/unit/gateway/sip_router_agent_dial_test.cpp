// SPDX-License-Identifier: Apache-2.0
// SipRouter's outbound agent calls (issue 17, POST /api/v1/calls), without sockets: the INVITE
// toward the trunk carries the agent host's offer, and the agent is connected only on 200 OK.
#include <doctest/doctest.h>

#include "agent_router_bench.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;
using namespace std::chrono_literals;
namespace test = turnbridge::gateway::test;

namespace {

const std::string& kOffer = test::kPcmuSdp;
const std::string& kAnswer = test::kPcmuAnswerSdp;

// What the router asked of the agent host, in order.
struct FakeAgents final : AgentPort {
    std::vector<std::string> log;
    std::string connected_sdp;
    std::vector<CallSummary> closed;
    bool open_agent(const AgentOpen&) override { return false; }
    std::optional<std::string> offer_agent(const AgentOpen& o) override {
        log.push_back("offer " + o.to + " from " + o.from);
        return kOffer;
    }
    bool connect_agent(const std::string&, const std::string& sdp) override {
        log.push_back("connect");
        connected_sdp = sdp;
        return true;
    }
    void close_agent(const std::string&, const CallSummary& s) override {
        log.push_back("close");
        closed.push_back(s);
    }
};

struct Bench : test::AgentRouterBench {
    FakeAgents agents;
    std::vector<DialUpdate> updates;
    Bench() {
        router.set_agents(&agents);
        router.on_dial_update([this](const DialUpdate& u) { updates.push_back(u); });
    }
    sip::Message dial() {
        std::string why;
        AgentDial d{"dial-1", "example.org", "+15550123", "+15550100", *config::parse_agent_url("agent:ws://127.0.0.1:8765/a", why), {}, {}, {}};
        std::vector<sip::Action> out;
        router.dial_agent(now, d, out);
        auto msgs = sent(out);
        REQUIRE(msgs.size() == 1);
        REQUIRE(msgs[0].method() == "INVITE");
        return std::move(msgs[0]);
    }
};

}  // namespace

TEST_CASE("an API call: INVITE with the agent host's offer; the agent is connected on 200 OK, never before") {
    Bench b;
    const auto invite = b.dial();
    CHECK(invite.request_uri().starts_with("sip:+15550123@127.0.0.1:5070"));
    CHECK(invite.from()->uri.starts_with("sip:+15550100@"));
    CHECK(invite.body() == kOffer);
    CHECK(b.agents.log == std::vector<std::string>{"offer +15550123 from +15550100"});
    REQUIRE(b.updates.size() == 1);
    CHECK(b.updates[0].state == DialUpdate::State::Dialing);
    b.answer(invite, 180);
    CHECK(b.agents.log.size() == 1);   // ringing: still no agent
    REQUIRE(b.updates.size() == 2);
    CHECK(b.updates[1].state == DialUpdate::State::Ringing);
    const auto acks = b.answer(invite, 200, kAnswer);
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].method() == "ACK");   // RFC 3261 §13.2.2.4
    REQUIRE(b.agents.log.size() == 2);
    CHECK(b.agents.log[1] == "connect");
    CHECK(b.agents.connected_sdp == kAnswer);
    CHECK(b.updates.back().state == DialUpdate::State::Answered);
    // The trunk hangs up: the agent's stream closes, the call record says bye-trunk.
    auto bye = std::move(*sip::Message::request("BYE", "sip:turnbridge@127.0.0.1:5062"));
    bye.push_via("UDP", "127.0.0.1:5070", "z9hG4bKbye1");
    bye.set_from(invite.to_header() + ";tag=uas1");
    bye.set_to(invite.from_header());
    bye.set_call_id(invite.call_id());
    bye.set_cseq(1, "BYE");
    bye.set_max_forwards(70);
    std::vector<sip::Action> out;
    b.router.on_message(b.now, 0, b.trunk, bye.serialize(), out);
    const auto ok = b.sent(out);
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].status() == 200);
    REQUIRE(b.agents.closed.size() == 1);
    CHECK(b.agents.closed[0].end_reason == "bye-trunk");
    CHECK(b.agents.closed[0].account == "agent");
    CHECK(b.agents.closed[0].outbound);
    CHECK(b.updates.back().state == DialUpdate::State::Completed);
    CHECK(b.updates.back().sip_code == 200);
}

TEST_CASE("an API call answered 486: busy with sip_code 486 in the update and the record; no agent") {
    // Not a structured binding: CAPTURE's lambda cannot capture one (clang 14, the ASan build).
    for (const auto& row : {std::pair{486, DialUpdate::State::Busy}, {603, DialUpdate::State::Busy},
                            {480, DialUpdate::State::NoAnswer}, {404, DialUpdate::State::Failed}}) {
        const int status = row.first;
        const auto state = row.second;
        CAPTURE(status);
        Bench b;
        const auto invite = b.dial();
        const auto acks = b.answer(invite, status);
        REQUIRE(acks.size() == 1);
        CHECK(acks[0].method() == "ACK");   // RFC 3261 §17.1.1.3
        CHECK(std::find(b.agents.log.begin(), b.agents.log.end(), "connect") == b.agents.log.end());
        REQUIRE(b.agents.closed.size() == 1);
        CHECK(b.agents.closed[0].status == status);
        CHECK(b.agents.closed[0].end_reason == std::string(to_string(state)));
        CHECK(b.updates.back().state == state);
        CHECK(b.updates.back().sip_code == status);
        CHECK(b.router.agent_dials() == 0);
    }
}

TEST_CASE("an API call that only rings is cancelled after gateway.agent_ring_timeout: no-answer") {
    Bench b;
    const auto invite = b.dial();
    b.answer(invite, 180);
    REQUIRE(b.router.next_wake());
    CHECK(*b.router.next_wake() <= b.now + 20s);
    b.now += 19s;
    std::vector<sip::Action> out;
    b.router.on_timer(b.now, out);
    CHECK(b.sent(out).empty());
    b.now += 1s;
    b.router.on_timer(b.now, out);
    const auto cancel = b.sent(out);
    REQUIRE(cancel.size() == 1);
    CHECK(cancel[0].method() == "CANCEL");
    b.answer(invite, 487);
    REQUIRE(b.agents.closed.size() == 1);
    CHECK(b.agents.closed[0].end_reason == "no-answer");
    CHECK(b.updates.back().state == DialUpdate::State::NoAnswer);
}

TEST_CASE("an API call for a realm that is gone or over its call limit fails at once, with no INVITE") {
    Bench b;
    std::string why;
    AgentDial d{"dial-2", "nowhere.example", "+1", "+2", *config::parse_agent_url("agent:ws://127.0.0.1/a", why), {}, {}, {}};
    std::vector<sip::Action> out;
    b.router.dial_agent(b.now, d, out);
    CHECK(out.empty());
    REQUIRE(b.updates.size() == 1);
    CHECK(b.updates[0].state == DialUpdate::State::Failed);
    CHECK(b.agents.log.empty());
}
