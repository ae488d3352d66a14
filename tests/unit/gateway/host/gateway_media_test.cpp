// SPDX-License-Identifier: Apache-2.0
// GatewayMedia on a real uv loop and loopback sockets: media ports taken from media_ports and
// given back, and the relayed path (a TURN allocation's datagram handed over through the
// MediaExchange, the answer handed back toward the allocation's worker).
#include <doctest/doctest.h>

#include <fstream>
#include <netinet/in.h>
#include <random>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

#include "turnbridge/gateway/host/gateway_media.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/stun/message.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;
using namespace turnbridge::gateway::host;
using namespace turnbridge::server;
using namespace std::chrono_literals;

namespace {

std::string fixture(const std::string& rel) {
    std::ifstream f(std::string(TURNBRIDGE_FIXTURES_DIR) + "/" + rel);
    REQUIRE(f.good());
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

std::string sdp_attribute(const std::string& sdp, const std::string& name) {
    const auto at = sdp.find("a=" + name + ":");
    REQUIRE(at != std::string::npos);
    const auto from = at + name.size() + 3;
    return sdp.substr(from, sdp.find("\r\n", from) - from);
}

bool udp_free(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// Four consecutive free loopback UDP ports: room for two calls.
std::uint16_t free_range() {
    std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; attempt < 200; ++attempt) {
        const auto base = static_cast<std::uint16_t>(40000 + rng() % 20000);
        bool all = true;
        for (int i = 0; i < 6; ++i) all = all && udp_free(static_cast<std::uint16_t>(base + i));
        if (all) return base;
    }
    FAIL("no free port range");
    return 0;
}

const std::string kTrunkAnswer =
    "v=0\r\no=trunk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

struct Loop {
    uv_loop_t loop{};
    std::shared_ptr<config::Config> cfg = std::make_shared<config::Config>();
    config::Realm realm;
    Loop() {
        REQUIRE(uv_loop_init(&loop) == 0);
        cfg->media_ip = IpAddress::parse("127.0.0.1");
        cfg->media_port_min = free_range();
        cfg->media_port_max = static_cast<std::uint16_t>(cfg->media_port_min + 5);  // two calls of three ports
        realm.name = "example.org";
        realm.gateway.enabled = true;
    }
    // Finishes closed handles while their owner (a GatewayMedia) still exists: its uv handles are
    // members, so the loop must not touch them after it is destroyed.
    void drain() { uv_run(&loop, UV_RUN_NOWAIT); }   // one turn runs every pending close callback
    ~Loop() {
        uv_run(&loop, UV_RUN_DEFAULT);   // lets closed handles finish
        CHECK(uv_loop_close(&loop) == 0);
    }
    // Runs the loop until `done` or about a second has passed.
    template <class F> void run_until(F done) {
        for (int i = 0; i < 200 && !done(); ++i) {
            uv_run(&loop, UV_RUN_NOWAIT);
            if (!done()) usleep(5000);
        }
    }
};

}  // namespace

TEST_CASE("a call takes three media ports (browser, trunk RTP, trunk RTCP) from media_ports and gives them back when it is finished") {
    Loop l;
    std::vector<std::string> failures;
    {
        GatewayMedia media(&l.loop, *l.cfg, nullptr, 0, [&](const sip::MediaSdp*, const std::string& why) { failures.push_back(why); });
        media.start();
        auto a = media.create(l.realm);
        auto b = media.create(l.realm);
        REQUIRE(a != nullptr);
        REQUIRE(b != nullptr);
        CHECK(media.calls() == 2);
        CHECK(media.create(l.realm) == nullptr);   // six ports: two calls
        // The trunk sees our own G.711 SDP on one of those ports (no browser attributes leak).
        auto trunk_offer = a->map_offer(true, fixture("sdp/chrome_audio_offer.sdp"));
        REQUIRE(trunk_offer);
        CHECK(trunk_offer->find("c=IN IP4 127.0.0.1") != std::string::npos);
        CHECK(trunk_offer->find("fingerprint") == std::string::npos);
        const auto m = trunk_offer->find("m=audio ");
        REQUIRE(m != std::string::npos);
        const int port = std::stoi(trunk_offer->substr(m + 8));
        CHECK(port >= l.cfg->media_port_min);
        CHECK(port <= l.cfg->media_port_max);
        // RTCP toward the trunk from a third port, named in the SDP (RFC 3605), rtcp-mux offered.
        const auto rtcp = trunk_offer->find("a=rtcp:");
        REQUIRE(rtcp != std::string::npos);
        const int rtcp_port = std::stoi(trunk_offer->substr(rtcp + 7));
        CHECK(rtcp_port != port);
        CHECK(rtcp_port >= l.cfg->media_port_min);
        CHECK(rtcp_port <= l.cfg->media_port_max);
        CHECK(trunk_offer->find("a=rtcp-mux") != std::string::npos);
        media.finish(a.get());
        CHECK(media.calls() == 1);
        l.run_until([] { return false; });   // the finished call's sockets close
        auto c = media.create(l.realm);
        CHECK(c != nullptr);                     // its ports are free again
        media.close();
        l.drain();
    }
    CHECK(failures.empty());
}

TEST_CASE("a relayed browser datagram reaches the call through the exchange, and the answer goes back to the allocation's worker") {
    Loop l;
    MediaExchange exchange(*l.cfg, 1);
    uv_async_t worker_wake{};
    int woken = 0;
    worker_wake.data = &woken;
    uv_async_init(&l.loop, &worker_wake, [](uv_async_t* a) { ++*static_cast<int*>(a->data); });
    exchange.attach(0, &worker_wake);
    {
        GatewayMedia media(&l.loop, *l.cfg, &exchange, 0, {});
        media.start();
        auto call = media.create(l.realm);
        REQUIRE(call != nullptr);
        // Outbound: the browser's offer, the trunk's answer; our answer names the ICE-lite candidate.
        auto offer = fixture("sdp/chrome_audio_offer.sdp");
        REQUIRE(call->map_offer(true, offer));
        auto answer = call->map_answer(false, kTrunkAnswer);
        REQUIRE(answer);
        const std::string ufrag = sdp_attribute(*answer, "ice-ufrag"), pwd = sdp_attribute(*answer, "ice-pwd");
        const std::string candidate = sdp_attribute(*answer, "candidate");
        std::istringstream cs(candidate);
        std::string foundation, component, proto, priority, ip, port;
        cs >> foundation >> component >> proto >> priority >> ip >> port;
        const Endpoint ours{*IpAddress::parse(ip), static_cast<std::uint16_t>(std::stoi(port))};
        CHECK(exchange.is_local(ours));

        // Other allocations' checks without our password: no answer and no route back, so that
        // strangers cannot take every slot before the browser's relayed address (issue 11).
        {
            std::vector<std::uint8_t> bad(256);
            stun::MessageBuilder w(bad, stun::method::Binding, stun::Class::Request, stun::TransactionId{7});
            w.add_string(stun::attr::Username, ufrag + ":NWO7");
            w.add_message_integrity({reinterpret_cast<const std::uint8_t*>("wrongPasswordWrongPass00"), 24});
            w.add_fingerprint();
            REQUIRE(w.ok());
            for (std::uint16_t i = 0; i < 10; ++i)
                REQUIRE(exchange.post(exchange.gateway_box(0), 0, 0, 78, Endpoint{*IpAddress::parse("203.0.113.66"),
                                                                              static_cast<std::uint16_t>(50000 + i)},
                                      ours, w.bytes()));
            l.run_until([] { return false; });
            std::vector<MediaHandoff> none;
            exchange.take(0, none);
            CHECK(none.empty());
            CHECK(woken == 0);
        }

        // The browser's ICE check, as its TURN allocation (worker 0, relay 77) hands it over.
        std::vector<std::uint8_t> buf(256);
        stun::TransactionId tid{};
        tid[3] = 9;
        stun::MessageBuilder b(buf, stun::method::Binding, stun::Class::Request, tid);
        b.add_string(stun::attr::Username, ufrag + ":NWO7");
        b.add_u32(stun::attr::Priority, 1853824767);
        const std::uint8_t tie[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        b.add(stun::attr::IceControlling, tie);
        b.add(stun::attr::UseCandidate, {});
        b.add_message_integrity({reinterpret_cast<const std::uint8_t*>(pwd.data()), pwd.size()});
        b.add_fingerprint();
        REQUIRE(b.ok());
        const Endpoint relayed = *Endpoint::parse("203.0.113.9:50000");
        REQUIRE(exchange.post(exchange.gateway_box(0), 0, 0, 77, relayed, ours, b.bytes()));
        l.run_until([&] { return woken > 0; });
        REQUIRE(woken > 0);

        std::vector<MediaHandoff> back;
        exchange.take(0, back);
        REQUIRE(back.size() == 1);
        CHECK(back[0].relay == 77);
        CHECK(back[0].media == ours);       // re-enters the allocation as data from our address
        CHECK(back[0].relayed == relayed);  // toward the browser's relay candidate
        auto resp = stun::Message::parse(back[0].bytes());
        REQUIRE(resp);
        CHECK(resp->cls() == stun::Class::Success);
        CHECK(resp->transaction_id() == tid);
        CHECK(resp->get_xor_address(stun::attr::XorMappedAddress) == relayed);

        // A datagram for a port that is no call's is dropped.
        woken = 0;
        REQUIRE(exchange.post(exchange.gateway_box(0), 0, 0, 77, relayed, Endpoint{ours.ip, 1}, b.bytes()));
        l.run_until([] { return false; });
        exchange.take(0, back);
        CHECK(back.empty());

        const auto summary = media.finish(call.get());
        CHECK(summary.relayed);
        CHECK(summary.stats.browser_in.packets >= 1);
        CHECK(summary.stats.stranger_browser == 10);   // the wrong passwords
        media.close();
        l.drain();
    }
    exchange.detach(0);
    uv_close(reinterpret_cast<uv_handle_t*>(&worker_wake), nullptr);
}

TEST_CASE("RTP from a stranger to a call's trunk port is dropped and counted in strangers(), live and after the call") {
    Loop l;
    GatewayMedia media(&l.loop, *l.cfg, nullptr, 0, {});
    media.start();
    auto call = media.create(l.realm);
    REQUIRE(call != nullptr);
    const auto trunk_offer = call->map_offer(true, fixture("sdp/chrome_audio_offer.sdp"));
    REQUIRE(trunk_offer);
    REQUIRE(call->map_answer(false, kTrunkAnswer));   // the trunk is 127.0.0.1:40000
    const auto m = trunk_offer->find("m=audio ");
    const auto port = static_cast<std::uint16_t>(std::stoi(trunk_offer->substr(m + 8)));

    // PCMU from 127.0.0.3: another address than the trunk's SDP names (loopback takes any 127/8).
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(0x7F000003);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::uint8_t rtp[12 + 160] = {0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4};
    for (int i = 0; i < 3; ++i)
        REQUIRE(::sendto(fd, rtp, sizeof rtp, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == sizeof rtp);
    l.run_until([&] { return media.strangers().trunk == 3; });
    CHECK(media.strangers().trunk == 3);
    CHECK(media.strangers().browser == 0);
    const auto summary = media.finish(call.get());
    CHECK(summary.stats.stranger_trunk == 3);
    CHECK(summary.stats.trunk_in.packets == 0);
    CHECK(media.strangers().trunk == 3);   // still counted once the call is gone
    ::close(fd);
    media.close();
    l.drain();
}

TEST_CASE("an inbound INVITE to a DID whose users have no registration gets 480; the call ends with media that is not a GatewayMedia call") {
    Loop l;
    auto cfg = l.cfg;
    config::Realm r = l.realm;
    r.users = {{"nobody", "n0body"}};
    r.gateway.trunk = {"sip:127.0.0.1:5070", "127.0.0.1", 5070, config::SipTrunk::Transport::Udp};
    r.gateway.routes = {{"+15550199", {"nobody"}}};
    cfg->realms.emplace(r.name, r);
    GatewayMedia media(&l.loop, *cfg, nullptr, 0, {});
    media.start();
    const auto nonces = turn::NonceMinter::with_random_key(600s);
    std::uint64_t n = 0;
    SipRouter router(cfg, nonces, SipLocal{"127.0.0.1:5062", "gw.example.org"},
                     [&](const config::Realm& realm, bool) { return media.create(realm); },
                     [](const config::Realm&, const Endpoint&) { return std::optional<TrunkFlowInfo>{}; },
                     [&n] { return ++n; });
    std::vector<const sip::MediaSdp*> ended;
    std::vector<GatewayMedia::Summary> summaries;
    router.on_call_ended([&](const CallSummary& s, sip::MediaSdp* m) {
        CHECK(s.status == 480);
        ended.push_back(m);
        summaries.push_back(media.finish(m));   // what GatewayHost::call_ended does
    });
    const SipFlow trunk{9, false, false, false, *IpAddress::parse("127.0.0.1"), {}};
    const auto now = sip::Time{} + 100h;
    for (int i = 0; i < 2; ++i) {
        const std::string branch = "z9hG4bKoff" + std::to_string(i);
        const std::string invite =
            "INVITE sip:+15550199@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=" + branch +
            "\r\nMax-Forwards: 70\r\nFrom: <sip:+15550111@127.0.0.1>;tag=f" + std::to_string(i) +
            "\r\nTo: <sip:+15550199@127.0.0.1>\r\nCall-ID: off" + std::to_string(i) +
            "\r\nCSeq: 1 INVITE\r\nContact: <sip:+15550111@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\n"
            "Content-Length: " + std::to_string(kTrunkAnswer.size()) + "\r\n\r\n" + kTrunkAnswer;
        std::vector<sip::Action> out;
        router.on_message(now, 1'700'000'000, trunk, invite, out);
        int last = 0;
        for (auto& a : out)
            if (auto* s = std::get_if<sip::Send>(&a))
                if (auto msg = sip::Message::parse(s->bytes); msg && !msg->is_request()) last = msg->status();
        CHECK(last == 480);
    }
    REQUIRE(ended.size() == 2);
    for (std::size_t i = 0; i < ended.size(); ++i) {
        CAPTURE(i);
        REQUIRE(ended[i] != nullptr);
        CHECK(summaries[i].codecs.empty());
        CHECK(summaries[i].stats.trunk_in.packets == 0);
    }
    CHECK(media.calls() == 0);   // no media ports were taken for a call nobody can answer
    std::vector<sip::Action> out;
    router.stop(now, out);
    media.close();
    l.drain();
}
