// SPDX-License-Identifier: Apache-2.0
// [[realm."X".gateway.trunks]] (issue 14): several trunks per realm, chosen by number prefix.
#include <doctest/doctest.h>

#include <string>

#include "config_errors.hpp"
#include "turnbridge/config/config.hpp"

using namespace turnbridge;
using namespace turnbridge::config;

namespace {

constexpr const char* kPath = "/etc/turnbridge/turnbridge.toml";

// Lines 1-6: server and realm; the gateway table is line 7, its keys start at line 8.
std::string realm(const std::string& gateway) {
    return "[server]\nlisten = [\"127.0.0.1:3478\"]\nws_listen = [\"127.0.0.1:8088\"]\nmedia_ip = \"127.0.0.1\"\n"
           "[realm.\"example.org\"]\nusers = { test = \"secret\" }\n"
           "[realm.\"example.org\".gateway]\n" + gateway + "\n";
}

// Two trunks: line 8 enabled, 9 max_calls, 10 [[trunks]] A, 11-13 its keys, 14 [[trunks]] B, 15-.. its keys.
const std::string kTwo =
    "enabled = true\nmax_calls = 7\n"
    "[[realm.\"example.org\".gateway.trunks]]\nname = \"a\"\ntrunk = \"sip:127.0.0.1:5070\"\nsrtp = \"off\"\n"
    "[[realm.\"example.org\".gateway.trunks]]\nname = \"b\"\ntrunk = \"sips:127.0.0.1:5071\"\n"
    "prefixes = [\"+44\", \"+1555\"]\nsrtp = \"required\"\ncodecs = [\"pcmu\", \"g722\"]\n";

std::shared_ptr<const Config> accepted(const std::string& text) {
    auto r = load_string(text, kPath);
    if (auto* e = std::get_if<ConfigError>(&r)) FAIL_CHECK("rejected: " << e->to_string());
    auto* cfg = std::get_if<std::shared_ptr<const Config>>(&r);
    return cfg ? *cfg : nullptr;
}

}  // namespace

TEST_SUITE_BEGIN("config");

TEST_CASE("trunks (issue 14): each [[trunks]] table is one trunk; the first is the default and the realm's own") {
    auto cfg = accepted(realm(kTwo));
    REQUIRE(cfg);
    const auto& r = cfg->realms.at("example.org");
    REQUIRE(r.trunks.size() == 2);
    const auto& a = r.trunks[0].gateway;
    const auto& b = r.trunks[1].gateway;
    CHECK(a.trunk_name == "a");
    CHECK(a.trunk_index == 0);
    CHECK(a.prefixes.empty());
    CHECK(a.srtp == Gateway::Srtp::Off);
    CHECK(a.trunk.port == 5070);
    CHECK(a.trunk_table == "realm.\"example.org\".gateway.trunks[0]");
    CHECK(b.trunk_name == "b");
    CHECK(b.trunk_index == 1);
    CHECK(b.prefixes == std::vector<std::string>{"+44", "+1555"});
    CHECK(b.srtp == Gateway::Srtp::Required);
    CHECK(b.trunk.transport == SipTrunk::Transport::Tls);
    CHECK(b.codecs.size() == 2);
    // Realm-wide keys reach every trunk; the realm's own gateway is the default trunk.
    CHECK(a.max_calls == 7);
    CHECK(b.max_calls == 7);
    CHECK(b.enabled);
    CHECK(r.trunks[1].name == "example.org");
    CHECK(r.trunks[1].users.contains("test"));
    CHECK(r.trunks[1].trunks.empty());
    CHECK(r.gateway.trunk_name == "a");
    CHECK(r.gateway.trunk.uri == a.trunk.uri);
}

TEST_CASE("trunks (issue 14): the single-trunk form is one trunk named \"default\"") {
    auto cfg = accepted(realm("enabled = true\ntrunk = \"sip:127.0.0.1:5070\"\nsrtp = \"optional\"\n"));
    REQUIRE(cfg);
    const auto& r = cfg->realms.at("example.org");
    REQUIRE(r.trunks.size() == 1);
    CHECK(r.trunks[0].gateway.trunk_name == "default");
    CHECK(r.trunks[0].gateway.srtp == Gateway::Srtp::Optional);
    CHECK(r.gateway.trunk_name == "default");
    CHECK(r.gateway.trunk_table == "realm.\"example.org\".gateway");
}

TEST_CASE("trunks (issue 14): duplicate names and prefixes, both forms at once, and bad trunk keys name the field") {
    const std::string t = "[[realm.\"example.org\".gateway.trunks]]\n";
    const std::string g = "realm.\"example.org\".gateway";
    config::test::check_errors({
        // Both forms: the trunk key in the gateway table (line 9) is named.
        {realm("enabled = true\ntrunk = \"sip:127.0.0.1:5070\"\n" + t + "name = \"a\"\ntrunk = \"sip:127.0.0.1:5071\""),
         g + ".trunk", 9, "not in [" + g + "]: the gateway has a trunks list"},
        {realm("enabled = true\nsrtp = \"required\"\n" + t + "name = \"a\"\ntrunk = \"sip:127.0.0.1:5071\""),
         g + ".srtp", 9, "in each [[" + g + ".trunks]] table"},
        // The same name twice: the second (line 15) is named, and the first's index said.
        {realm("enabled = true\n" + t + "name = \"a\"\ntrunk = \"sip:127.0.0.1:5070\"\n" + t +
               "name = \"a\"\ntrunk = \"sip:127.0.0.1:5071\""),
         g + ".trunks[1].name", 13, "trunk name \"a\" is used twice (also " + g + ".trunks[0])"},
        {realm("enabled = true\n" + t + "name = \"a\"\ntrunk = \"sip:127.0.0.1:5070\"\nprefixes = [\"+44\"]\n" + t +
               "name = \"b\"\ntrunk = \"sip:127.0.0.1:5071\"\nprefixes = [\"+1\", \"+44\"]"),
         g + ".trunks[1].prefixes[1]", 16, "prefix \"+44\" is also " + g + ".trunks[0]'s"},
        {realm("enabled = true\n" + t + "trunk = \"sip:127.0.0.1:5070\""), g + ".trunks[0]", 9, "expected name ="},
        {realm("enabled = true\n" + t + "name = \"a b\"\ntrunk = \"sip:127.0.0.1:5070\""), g + ".trunks[0].name", 10,
         "letters, digits"},
        {realm("enabled = true\n" + t + "name = \"a\"\ntrunk = \"sip:127.0.0.1:5070\"\nprefixes = [\"+44 20\"]"),
         g + ".trunks[0].prefixes[0]", 12, "expected a number prefix"},
        {realm("enabled = true\n" + t + "name = \"a\"\nprefixes = [\"+44\"]"), g + ".trunks[0]", 9, "expected trunk ="},
        {realm("enabled = true\n" + t + "name = \"a\"\ntrunk = \"sip:127.0.0.1:5070\"\nsrtp = \"maybe\""),
         g + ".trunks[0].srtp", 12, "expected \"off\", \"optional\" or \"required\""},
        {realm("enabled = true\n" + t + "name = \"a\"\ntrunk = \"sip:127.0.0.1:5070\"\nroutes = {}"),
         g + ".trunks[0].routes", 12, "unknown key"},
        {realm("enabled = true\ntrunks = []"), g + ".trunks", 9, "expected at least one [[trunks]] table"},
    });
}

TEST_SUITE_END();
