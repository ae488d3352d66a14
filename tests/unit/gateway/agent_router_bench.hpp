// SPDX-License-Identifier: Apache-2.0
#pragma once
// The SipRouter bench of the agent unit tests (issue 17: sip_router_agent_dial_test,
// sip_router_agent_transfer_test), without sockets: one gateway realm "example.org" whose trunk
// is 127.0.0.1:5070 on transport kAgentTrunk, pass-through media, the AgentPort the test sets
// (router.set_agents); what the router sends is parsed back, and must all go to the trunk.
#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "turnbridge/gateway/agent_port.hpp"
#include "turnbridge/gateway/sip_router.hpp"

namespace turnbridge::gateway::test {

using namespace std::chrono_literals;

constexpr sip::TransportId kAgentTrunk = 9;
// PCMU sessions: one side's (the agent host's offer, the relay's) and the far end's answer.
inline const std::string kPcmuSdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                                    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
inline const std::string kPcmuAnswerSdp = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                                          "m=audio 41000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

struct AgentRouterBench {
    // `more` adds to the realm (routes, timers) before the router reads it.
    explicit AgentRouterBench(const std::function<void(config::Realm&)>& more = {}) : cfg(make_config(more)) {}

    static std::shared_ptr<config::Config> make_config(const std::function<void(config::Realm&)>& more) {
        auto c = std::make_shared<config::Config>();
        config::Realm r;
        r.name = "example.org";
        r.gateway.enabled = true;
        r.gateway.trunk = {"sip:127.0.0.1:5070", "127.0.0.1", 5070, config::SipTrunk::Transport::Udp};
        r.gateway.options_interval = 0;
        r.gateway.agent_ring_timeout = 20;
        if (more) more(r);
        c->realms.emplace("example.org", r);
        return c;
    }

    std::shared_ptr<config::Config> cfg;
    turn::NonceMinter nonces = turn::NonceMinter::with_random_key(600s);
    std::uint64_t n = 0;
    SipRouter router{cfg, nonces, SipLocal{"127.0.0.1:5062", "gw.example.org"},
                     [](const config::Realm& r, bool outbound) { return pass_through_media(r, outbound); },
                     [](const config::Realm&, const Endpoint&) -> std::optional<TrunkFlowInfo> {
                         return TrunkFlowInfo{kAgentTrunk, {}};
                     },
                     [this] { return ++n; }};
    sip::Time now = sip::Time{} + 100h;
    SipFlow trunk{kAgentTrunk, false, false, false, *IpAddress::parse("127.0.0.1"), {}};

    // The messages in `out` (which is cleared).
    std::vector<sip::Message> sent(std::vector<sip::Action>& out) {
        std::vector<sip::Message> v;
        for (auto& a : out)
            if (auto* s = std::get_if<sip::Send>(&a)) {
                CHECK(s->transport == kAgentTrunk);   // nothing for the router's own leg leaks out
                auto m = sip::Message::parse(s->bytes);
                REQUIRE(m);
                v.push_back(std::move(*m));
            }
        out.clear();
        return v;
    }
    // `wire` from the trunk; what the router sends back.
    std::vector<sip::Message> feed(const std::string& wire) {
        std::vector<sip::Action> out;
        router.on_message(now, 0, trunk, wire, out);
        return sent(out);
    }
    // The far end's answer to our `invite` (To tag uas1), with `sdp` when given.
    std::vector<sip::Message> answer(const sip::Message& invite, int status, const std::string& sdp = {}) {
        auto r = sip::Message::response(invite, status, {}, "uas1");
        r.add_contact("<sip:uas@127.0.0.1:5070>");
        if (!sdp.empty()) r.set_body("application/sdp", sdp);
        return feed(r.serialize());
    }
};

}  // namespace turnbridge::gateway::test
