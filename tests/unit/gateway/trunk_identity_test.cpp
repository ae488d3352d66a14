// SPDX-License-Identifier: Apache-2.0
// A realm's identity and number settings on one call (issue 13): DID routes, caller_ids.
#include <doctest/doctest.h>

#include "turnbridge/gateway/trunk_identity.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;

namespace {

sip::Message browser_invite(const std::string& from_user) {
    auto m = std::move(*sip::Message::request("INVITE", "sip:5551234567@example.org"));
    m.set_from("<sip:" + from_user + "@example.org>;tag=a");
    m.set_to("<sip:5551234567@example.org>");
    return m;
}

}  // namespace

TEST_SUITE_BEGIN("gateway");

TEST_CASE("an inbound DID finds its route in any spelling of the same number, the exact key first") {
    config::Gateway gw;
    gw.national_prefix = "1";
    gw.routes = {{"+15551234567", {"alice"}}, {"15551234567", {"bob"}}, {"911", {"desk"}}};
    REQUIRE(find_route(gw, "15551234567"));
    CHECK(*find_route(gw, "15551234567") == std::vector<std::string>{"bob"});   // spelled as the key
    REQUIRE(find_route(gw, "5551234567"));
    CHECK(find_route(gw, "+1-555-123-4567") != nullptr);
    CHECK(*find_route(gw, "911") == std::vector<std::string>{"desk"});
    CHECK(find_route(gw, "5551234568") == nullptr);
    gw.national_prefix.clear();   // no plan: a national number is not the international one
    CHECK(find_route(gw, "5551234567") == nullptr);
}

TEST_CASE("the browser's From is the caller only when caller_ids lists it; the identity keys reach the account") {
    config::Gateway gw;
    gw.caller_ids = {"+15555550199"};
    gw.identity = config::Gateway::Identity::Rpid;
    gw.user_phone = true;
    gw.e164_plus = false;
    gw.tech_prefix = "1010#";
    gw.national_prefix = "1";
    sip::TrunkAccount base;
    base.caller_id = "+15550100";
    auto a = with_identity(gw, browser_invite("5555550199"), base);   // the same number, spelled national
    CHECK(a.caller_id == "5555550199");   // as the browser spelled it; e164_plus formats it
    CHECK(a.identity == sip::TrunkAccount::Identity::Rpid);
    CHECK(a.user_phone);
    CHECK(a.e164_plus == false);
    CHECK(a.tech_prefix == "1010#");
    CHECK(a.plan.national_prefix == "1");
    CHECK(with_identity(gw, browser_invite("+15555550111"), base).caller_id == "+15550100");
    CHECK(with_identity(gw, browser_invite("alice"), base).caller_id == "+15550100");
}

TEST_SUITE_END();
