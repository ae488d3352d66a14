// SPDX-License-Identifier: Apache-2.0
// Registering at the trunk (RFC 3261 §10.2, §22): the trunk here is our own DigestServer, so the
// credentials the client computes are checked by an independent verifier, not by themselves.
#include <doctest/doctest.h>

#include "turnbridge/sip/digest.hpp"
#include "turnbridge/sip/registration.hpp"

using namespace turnbridge;
using namespace turnbridge::sip;
using namespace std::chrono_literals;

namespace {

constexpr TransportId kTrunk = 3;
const IpAddress kGateway = IpAddress::v4(127, 0, 0, 1);

struct Trunk {
    turn::NonceMinter nonces{std::array<std::uint8_t, 32>{1, 2, 3}, 600s};
    DigestServer digest{"trunk.example", nonces};
    PasswordLookup users = [](std::string_view u) -> std::optional<std::string> {
        if (u == "gw") return std::string("s3cret");
        return std::nullopt;
    };
};

struct Bench {
    Trunk trunk;
    TransactionLayer layer;
    Registration reg;
    Time now = Time{} + 1000h;
    std::vector<Action> out;

    explicit Bench(std::string password = "s3cret")
        : reg(RegistrationConfig{"sip:127.0.0.1:5070", "sip:gw@trunk.example", "gw", std::move(password),
                                 LocalAddress{"UDP", "127.0.0.1:5062", "<sip:gw@127.0.0.1:5062>"}, 3600s, 60s},
              [n = std::uint64_t{1}]() mutable { return n++; }) {}

    // The REGISTER just sent (the last Send), as the trunk receives it.
    Message sent_register() {
        for (auto it = out.rbegin(); it != out.rend(); ++it)
            if (auto* s = std::get_if<Send>(&*it)) {
                auto m = Message::parse(s->bytes);
                REQUIRE(m);
                return std::move(*m);
            }
        FAIL("nothing sent");
        return std::move(*Message::parse("x"));
    }
    // The trunk answers; the response goes through the transaction layer to the registration.
    void answer(Message response) {
        std::vector<Action> in;
        layer.on_message(now, kTrunk, true, std::move(*Message::parse(response.serialize())), in);
        out.clear();
        for (auto& a : in)
            if (auto* r = std::get_if<ResponseIn>(&a)) CHECK(reg.on_response(now, r->tx, r->response, layer, out));
    }
    // Challenge unless the credentials check out, then 200 granting `expires`.
    void trunk_turn(int expires = 120) {
        auto req = sent_register();
        const auto v = trunk.digest.verify(req, now, kGateway, trunk.users);
        if (v.verdict != DigestServer::Verdict::Ok) {
            answer(trunk.digest.challenge(req, now, kGateway, "trk", v.verdict == DigestServer::Verdict::Stale));
            return;
        }
        auto ok = Message::response(req, 200, {}, "trk");
        ok.add_contact("<sip:gw@127.0.0.1:5062>;expires=" + std::to_string(expires));
        answer(std::move(ok));
    }
};

}  // namespace

TEST_CASE("REGISTER, 401, REGISTER with credentials, 200: registered for the granted time (RFC 3261 §10.2, §22.2)") {
    Bench b;
    b.reg.start(b.now, kTrunk, true, b.layer, b.out);
    CHECK(b.reg.state() == Registration::State::Registering);
    auto first = b.sent_register();
    CHECK(first.method() == "REGISTER");
    CHECK(first.request_uri() == "sip:127.0.0.1:5070");
    CHECK(first.header("Expires") == "3600");
    CHECK(first.cseq() == 1);
    CHECK(first.auth_headers(AuthHeader::Authorization).empty());
    CHECK(first.contacts().at(0).uri == "sip:gw@127.0.0.1:5062");

    b.trunk_turn();  // 401
    auto second = b.sent_register();
    CHECK(second.cseq() == 2);
    CHECK(second.call_id() == first.call_id());      // §10.2: same Call-ID
    CHECK(second.from_tag() == first.from_tag());
    CHECK(second.top_via_branch() != first.top_via_branch());
    REQUIRE(second.auth_headers(AuthHeader::Authorization).size() == 1);
    CHECK(b.trunk.digest.verify(second, b.now, kGateway, b.trunk.users).verdict == DigestServer::Verdict::Ok);

    b.trunk_turn(120);  // 200
    CHECK(b.reg.state() == Registration::State::Registered);
    CHECK(b.reg.granted() == 120s);
    CHECK(b.reg.next_wake() == b.now + 60s);

    SUBCASE("the refresh at half time answers the old challenge again with nc=2") {
        b.now += 60s;
        b.out.clear();
        b.reg.on_timer(b.now, b.layer, b.out);
        auto refresh = b.sent_register();
        CHECK(refresh.cseq() == 3);
        const auto creds = parse_digest(refresh.auth_headers(AuthHeader::Authorization).at(0));
        REQUIRE(creds);
        CHECK(creds->at("nc") == "00000002");
        CHECK(b.trunk.digest.verify(refresh, b.now, kGateway, b.trunk.users).verdict == DigestServer::Verdict::Ok);
        b.trunk_turn(120);
        CHECK(b.reg.state() == Registration::State::Registered);
    }
    SUBCASE("a stale nonce on refresh is answered with the new one (RFC 2617 §3.2.1)") {
        b.now += 700s;  // past the nonce lifetime
        b.out.clear();
        b.reg.on_timer(b.now, b.layer, b.out);
        b.trunk_turn();  // 401 stale=true
        CHECK(b.reg.state() == Registration::State::Registering);
        b.trunk_turn();  // 200
        CHECK(b.reg.state() == Registration::State::Registered);
    }
    SUBCASE("stop unregisters with Expires: 0") {
        b.out.clear();
        b.reg.stop(b.now, b.layer, b.out);
        auto un = b.sent_register();
        CHECK(un.header("Expires") == "0");
        b.trunk_turn();
        CHECK(b.reg.state() == Registration::State::Idle);
        CHECK_FALSE(b.reg.next_wake());
    }
}

TEST_CASE("a wrong password fails after one retry instead of looping, and retries later") {
    Bench b("wrong");
    b.reg.start(b.now, kTrunk, true, b.layer, b.out);
    b.trunk_turn();  // 401
    b.trunk_turn();  // 401 again, same nonce, not stale
    CHECK(b.reg.state() == Registration::State::Failed);
    CHECK(b.reg.last_status() == 401);
    CHECK(b.reg.next_wake() == b.now + 60s);
    b.now += 60s;
    b.out.clear();
    b.reg.on_timer(b.now, b.layer, b.out);
    CHECK(b.reg.state() == Registration::State::Registering);
}

TEST_CASE("423 Interval Too Brief is retried with Min-Expires (RFC 3261 §10.2.8)") {
    Bench b;
    b.reg.start(b.now, kTrunk, true, b.layer, b.out);
    auto brief = Message::response(b.sent_register(), 423, {}, "trk");
    brief.add_header("Min-Expires", "7200");
    b.answer(std::move(brief));
    CHECK(b.sent_register().header("Expires") == "7200");
}

TEST_CASE("a transaction timeout fails the registration and schedules a retry") {
    Bench b;
    b.reg.start(b.now, kTrunk, true, b.layer, b.out);
    for (int guard = 0; guard < 10 && b.layer.next_wake(); ++guard) {
        b.now = *b.layer.next_wake();
        std::vector<Action> fired;
        b.layer.on_timer(b.now, fired);
        for (auto& a : fired)
            if (auto* t = std::get_if<TransactionTimeout>(&a)) CHECK(b.reg.on_timeout(b.now, t->tx));
    }
    CHECK(b.reg.state() == Registration::State::Failed);
    CHECK(b.reg.last_status() == 408);
    CHECK_FALSE(b.reg.on_timeout(b.now, "c|someone-else|REGISTER"));
}
