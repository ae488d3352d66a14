// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include "turnbridge/gateway/trunk_choice.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;

namespace {

config::Realm trunk(std::string name, std::size_t index, std::vector<std::string> prefixes) {
    config::Realm r;
    r.name = "example.org";
    r.gateway.trunk_name = std::move(name);
    r.gateway.trunk_index = index;
    r.gateway.prefixes = std::move(prefixes);
    return r;
}

}  // namespace

TEST_SUITE_BEGIN("gateway");

TEST_CASE("trunk choice (issue 14): the longest matching prefix wins, no match goes to the first trunk") {
    config::Realm realm;
    realm.name = "example.org";
    realm.trunks = {trunk("a", 0, {}), trunk("uk", 1, {"+44"}), trunk("us", 2, {"+1"}), trunk("nyc", 3, {"+1212", "+1646"})};
    CHECK(choose_trunk(realm, "+442071234567").gateway.trunk_name == "uk");
    CHECK(choose_trunk(realm, "+15550100").gateway.trunk_name == "us");
    CHECK(choose_trunk(realm, "+12125550100").gateway.trunk_name == "nyc");   // +1212 over +1
    CHECK(choose_trunk(realm, "+16465550100").gateway.trunk_name == "nyc");
    CHECK(choose_trunk(realm, "+33123456789").gateway.trunk_name == "a");     // no prefix: the default
    CHECK(choose_trunk(realm, "442071234567").gateway.trunk_name == "a");     // prefixes match as written
    CHECK(choose_trunk(realm, "").gateway.trunk_name == "a");
    CHECK(trunk_at(realm, 3)->gateway.trunk_name == "nyc");
    CHECK(trunk_at(realm, 4) == nullptr);
    CHECK(trunks_of(realm).size() == 4);
}

TEST_CASE("trunk choice: a realm without a trunks list is its own single trunk") {
    config::Realm realm;
    realm.name = "example.org";
    CHECK(&choose_trunk(realm, "+44") == &realm);
    REQUIRE(trunks_of(realm).size() == 1);
    CHECK(&trunks_of(realm).front() == &realm);
    CHECK(trunk_at(realm, 0) == &realm);
    CHECK(trunk_at(realm, 1) == nullptr);
}

TEST_SUITE_END();
