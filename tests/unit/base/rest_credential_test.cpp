// SPDX-License-Identifier: Apache-2.0
// The one TURN REST API check (draft-uberti-behave-turn-rest-00 §2.2) behind TURN and SIP digest.
#include <doctest/doctest.h>

#include "turnbridge/base/rest_credential.hpp"

using namespace turnbridge;

TEST_CASE("a TURN REST credential: base64(HMAC-SHA1(secret, username)) until its expiry") {
    const std::int64_t now = 1'800'000'000;
    RestCheck why = RestCheck::Ok;
    SUBCASE("a known vector") {
        // printf '1800003600:alice' | openssl dgst -sha1 -hmac rest-shared-secret -binary | base64
        const auto c = rest_credential("rest-shared-secret", "1800003600:alice", now, &why);
        REQUIRE(c);
        CHECK(why == RestCheck::Ok);
        CHECK(c->password == "K4JjN/P4ajUKGrTRs/z0E+A99w4=");
        CHECK(c->account == "alice");
    }
    SUBCASE("with and without a userid; a userid may hold ':'") {
        const auto bare = rest_credential("k", "1800003600", now);
        REQUIRE(bare);
        CHECK(bare->account == "");
        const auto colon = rest_credential("k", "1800003600:a:b", now);
        REQUIRE(colon);
        CHECK(colon->account == "a:b");
        CHECK(colon->password != bare->password);
    }
    SUBCASE("expired at its stamp") {
        CHECK_FALSE(rest_credential("k", std::to_string(now) + ":alice", now, &why));
        CHECK(why == RestCheck::Expired);
        CHECK(rest_credential("k", std::to_string(now + 1) + ":alice", now, &why));
        CHECK(why == RestCheck::Ok);
    }
    SUBCASE("a malformed stamp, or no secret, is not a REST credential") {
        for (const char* u : {"12ab:alice", ":alice", "", "alice", " 1800003600", "1800003600 :x", "99999999999999999999999"}) {
            CAPTURE(u);
            CHECK_FALSE(rest_credential("k", u, now, &why));
            CHECK(why == RestCheck::NotRest);
        }
        CHECK_FALSE(rest_credential("", "1800003600:alice", now, &why));
        CHECK(why == RestCheck::NotRest);
    }
}

TEST_CASE("a realm's credentials: a static user first, accounted to itself, then REST") {
    const std::map<std::string, std::string> users = {{"1800003600:alice", "static"}, {"bob", "pw"}};
    const std::int64_t now = 1'800'000'000;
    const auto s = find_credential(users, "k", "1800003600:alice", now);
    REQUIRE(s);
    CHECK(s->password == "static");
    CHECK(s->account == "1800003600:alice");
    const auto r = find_credential(users, "k", "1800003601:alice", now);
    REQUIRE(r);
    CHECK(r->account == "alice");
    RestCheck why = RestCheck::Ok;
    CHECK_FALSE(find_credential(users, "k", "carol", now, &why));
    CHECK(why == RestCheck::NotRest);
    CHECK_FALSE(find_credential(users, "k", "1:carol", now, &why));
    CHECK(why == RestCheck::Expired);
    CHECK(limit_name("", "1800003600") == "1800003600");
    CHECK(limit_name("alice", "1800003600:alice") == "alice");
}
