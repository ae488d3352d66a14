// SPDX-License-Identifier: Apache-2.0
// RFC 4028 session timers: negotiation on our requests and answers, and the refresh/expiry clock.
#include <doctest/doctest.h>

#include "turnbridge/sip/session_timer.hpp"

using namespace turnbridge::sip;
using namespace std::chrono_literals;

namespace {

Message request(std::initializer_list<std::pair<const char*, const char*>> headers) {
    auto m = std::move(*Message::request("INVITE", "sip:gw@127.0.0.1:5062"));
    m.push_via("UDP", "127.0.0.1:5070", "z9hG4bKst");
    m.set_from("<sip:+15550123@127.0.0.1:5070>;tag=a");
    m.set_to("<sip:gw@127.0.0.1:5062>");
    m.set_call_id("st-1");
    m.set_cseq(1, "INVITE");
    for (const auto& [n, v] : headers) m.add_header(n, v);
    return m;
}

const Time kT0 = Time{} + 10h;

}  // namespace

TEST_CASE("Session-Expires and Min-SE are read with the refresher parameter, compact form too (RFC 4028 §4)") {
    auto se = session_expires_of(request({{"Session-Expires", "1800;refresher=uas"}}));
    REQUIRE(se);
    CHECK(se->delta == 1800);
    CHECK(se->refresher == SessionExpires::Refresher::Uas);
    se = session_expires_of(request({{"x", "120"}}));
    REQUIRE(se);
    CHECK(se->delta == 120);
    CHECK(se->refresher == SessionExpires::Refresher::None);
    CHECK_FALSE(session_expires_of(request({{"Session-Expires", "soon"}})));
    CHECK(min_se_of(request({{"Min-SE", "300"}})) == 300u);
}

TEST_CASE("our INVITE says Supported: timer, Session-Expires and Min-SE (RFC 4028 §7.1)") {
    SessionTimer t({true, 1800, 90});
    auto m = request({});
    t.add_to_request(m, false);
    CHECK(m.has_option_tag("supported", "timer"));
    CHECK(m.header("session-expires") == "1800");
    CHECK(m.header("min-se") == "90");
    SessionTimer off({false, 1800, 90});
    auto n = request({});
    off.add_to_request(n, false);
    CHECK_FALSE(n.header("session-expires"));
}

TEST_CASE("a Session-Expires below our Min-SE gets 422 with our Min-SE (RFC 4028 §8.1)") {
    SessionTimer t({true, 1800, 120});
    CHECK(t.too_small(request({{"Session-Expires", "90"}})) == 120u);
    CHECK_FALSE(t.too_small(request({{"Session-Expires", "120"}})));
    CHECK_FALSE(t.too_small(request({})));
    auto r = Message::response(request({}), 422);
    t.add_422(r);
    CHECK(r.header("min-se") == "120");
}

TEST_CASE("a 422 raises what we ask for to its Min-SE, once (RFC 4028 §7.3)") {
    SessionTimer t({true, 300, 90});
    auto r = Message::response(request({}), 422);
    r.add_header("Min-SE", "600");
    CHECK(t.on_422(r));
    auto m = request({});
    t.add_to_request(m, false);
    CHECK(m.header("session-expires") == "600");
    CHECK(m.header("min-se") == "600");
    CHECK_FALSE(t.on_422(r));   // the same 422 again gives nothing new: no loop
}

TEST_CASE("answering a UAC that supports timers: it refreshes, Require: timer, expiry 32 s early (RFC 4028 §9, §10)") {
    SessionTimer t({true, 1800, 90});
    auto req = request({{"Supported", "100rel, timer"}, {"Session-Expires", "600"}});
    auto resp = Message::response(req, 200);
    t.answer(kT0, req, resp);
    CHECK(resp.header("session-expires") == "600;refresher=uac");
    CHECK(resp.has_option_tag("require", "timer"));
    CHECK(t.active());
    CHECK_FALSE(t.we_refresh());
    CHECK_FALSE(t.refresh_at());
    CHECK(t.expires_at() == kT0 + 600s - 32s);
}

TEST_CASE("answering refresher=uas or a UAC without timer support: we refresh at half the interval (RFC 4028 §9, §10)") {
    SessionTimer t({true, 1800, 90});
    SUBCASE("refresher=uas asked for") {
        auto req = request({{"Supported", "timer"}, {"Session-Expires", "120;refresher=uas"}});
        auto resp = Message::response(req, 200);
        t.answer(kT0, req, resp);
        CHECK(resp.header("session-expires") == "120;refresher=uas");
    }
    SUBCASE("Session-Expires without Supported: timer") {
        auto req = request({{"Session-Expires", "120"}});
        auto resp = Message::response(req, 200);
        t.answer(kT0, req, resp);
        CHECK(resp.header("session-expires") == "120;refresher=uas");
        CHECK_FALSE(resp.header("require"));   // §9: Require: timer only toward a UAC that supports it
    }
    CHECK(t.we_refresh());
    CHECK(t.refresh_at() == kT0 + 60s);
    CHECK(t.expires_at() == kT0 + 120s);
}

TEST_CASE("a UAC that supports timers but asked for none gets our interval; one that knows nothing gets none (RFC 4028 §9)") {
    SessionTimer t({true, 1800, 90});
    auto req = request({{"Supported", "timer"}});
    auto resp = Message::response(req, 200);
    t.answer(kT0, req, resp);
    CHECK(resp.header("session-expires") == "1800;refresher=uac");
    SessionTimer u({true, 1800, 90});
    auto plain = request({});
    auto resp2 = Message::response(plain, 200);
    u.answer(kT0, plain, resp2);
    CHECK_FALSE(resp2.header("session-expires"));
    CHECK_FALSE(u.active());
}

TEST_CASE("a 2xx to our INVITE names the refresher; without Session-Expires there is no timer (RFC 4028 §7.2)") {
    SessionTimer t({true, 1800, 90});
    auto ok = Message::response(request({}), 200);
    ok.add_header("Session-Expires", "90;refresher=uac");
    t.answered(kT0, ok);
    CHECK(t.we_refresh());
    CHECK(t.refresh_at() == kT0 + 45s);
    auto uas = Message::response(request({}), 200);
    uas.add_header("Session-Expires", "90;refresher=uas");
    t.answered(kT0 + 40s, uas);
    CHECK_FALSE(t.we_refresh());
    CHECK(t.expires_at() == kT0 + 40s + 60s);   // 90 - min(32, 30)
    t.answered(kT0 + 50s, Message::response(request({}), 200));
    CHECK_FALSE(t.active());
}
