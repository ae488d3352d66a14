// SPDX-License-Identifier: Apache-2.0
// [server] gateway listeners and media, [realm."X".gateway] and its routes.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "turnbridge/config/agent_url.hpp"
#include "turnbridge/config/config.hpp"

using namespace turnbridge;
using namespace turnbridge::config;

namespace {

constexpr const char* kPath = "/etc/turnbridge/turnbridge.toml";

// Lines 1-5: server with gateway listeners; 6-7 the realm; the gateway table starts at line 8
// and its keys at line 9.
std::string gateway(const std::string& keys, const std::string& server_extra = "") {
    return "[server]\nlisten = [\"127.0.0.1:3478\"]\nws_listen = [\"127.0.0.1:8088\"]\n"
           "media_ip = \"127.0.0.1\"\n" + (server_extra.empty() ? std::string("# -") : server_extra) +
           "\n[realm.\"example.org\"]\nusers = { test = \"secret\", bob = \"b\" }\n"
           "[realm.\"example.org\".gateway]\n" + keys + "\n";
}

std::shared_ptr<const Config> accepted(const std::string& text) {
    auto r = load_string(text, kPath);
    if (auto* e = std::get_if<ConfigError>(&r)) FAIL_CHECK("rejected: " << e->to_string());
    auto* cfg = std::get_if<std::shared_ptr<const Config>>(&r);
    return cfg ? *cfg : nullptr;
}

ConfigError rejected(const std::string& text) {
    auto r = load_string(text, kPath);
    auto* e = std::get_if<ConfigError>(&r);
    REQUIRE_MESSAGE(e != nullptr, "the config was accepted");
    return *e;
}

}  // namespace

TEST_SUITE_BEGIN("config");

TEST_CASE("gateway keys are read into their fields; gateway mode is off unless enabled") {
    auto cfg = accepted(gateway(
        "enabled = true\ntrunk = \"sip:127.0.0.1:5070;transport=tcp\"\ntrunk_username = \"gw\"\n"
        "trunk_password = \"pw\"\nregister = true\ncaller_id = \"+15550100\"\ncodecs = [\"pcmu\", \"Opus\"]\n"
        "[realm.\"example.org\".gateway.routes]\n\"+15550123\" = [\"test\", \"bob\"]",
        "wss_listen = []\nsip_listen = [\"127.0.0.1:5060\"]\nmedia_ports = \"23000-23099\""));
    REQUIRE(cfg);
    CHECK(cfg->ws_listen.size() == 1);
    CHECK(cfg->sip_listen.at(0).to_string() == "127.0.0.1:5060");
    CHECK(cfg->media_ip->to_string() == "127.0.0.1");
    CHECK(cfg->media_port_min == 23000);
    CHECK(cfg->media_port_max == 23099);
    const auto& g = cfg->find_realm("example.org")->gateway;
    CHECK(g.enabled);
    CHECK(cfg->any_gateway());
    CHECK(g.trunk.host == "127.0.0.1");
    CHECK(g.trunk.port == 5070);
    CHECK(g.trunk.transport == SipTrunk::Transport::Tcp);
    CHECK(g.trunk_username == "gw");
    CHECK(g.trunk_password == "pw");
    CHECK(g.register_to_trunk);
    CHECK(g.caller_id == "+15550100");
    CHECK(g.codecs == std::vector<Codec>{Codec::Pcmu, Codec::Opus});
    CHECK(g.routes.at("+15550123") == std::vector<std::string>{"test", "bob"});

    // G.722 is the trunk leg's (issue 14): anywhere in the list, beside the browser codecs.
    auto hd = accepted(gateway("codecs = [\"opus\", \"g722\", \"pcmu\"]"));
    REQUIRE(hd);
    CHECK(hd->find_realm("example.org")->gateway.codecs == std::vector<Codec>{Codec::Opus, Codec::G722, Codec::Pcmu});

    auto plain = accepted("[server]\nlisten = [\"127.0.0.1:3478\"]\n[realm.\"example.org\"]\nusers = { a = \"b\" }\n");
    REQUIRE(plain);
    CHECK_FALSE(plain->any_gateway());
    CHECK(plain->find_realm("example.org")->gateway.codecs ==
          std::vector<Codec>{Codec::Opus, Codec::Pcmu, Codec::Pcma});
}

TEST_CASE("trunk URIs: default ports per transport, sips is TLS, IPv6 in brackets") {
    struct Row { const char* uri; const char* host; std::uint16_t port; SipTrunk::Transport t; };
    const Row rows[] = {
        {"sip:192.0.2.10", "192.0.2.10", 5060, SipTrunk::Transport::Udp},
        {"sip:trunk.example.net;transport=TLS", "trunk.example.net", 5061, SipTrunk::Transport::Tls},
        {"sips:trunk.example.net:5071", "trunk.example.net", 5071, SipTrunk::Transport::Tls},
        {"sip:[2001:db8::1]:5080;lr;transport=tcp", "2001:db8::1", 5080, SipTrunk::Transport::Tcp},
        {"SIP:[::1]", "::1", 5060, SipTrunk::Transport::Udp},
    };
    for (const auto& row : rows) {
        CAPTURE(row.uri);
        auto cfg = accepted(gateway(std::string("enabled = true\ntrunk = \"") + row.uri + "\""));
        REQUIRE(cfg);
        const auto& t = cfg->find_realm("example.org")->gateway.trunk;
        CHECK(t.uri == row.uri);
        CHECK(t.host == row.host);
        CHECK(t.port == row.port);
        CHECK(t.transport == row.t);
    }
}

TEST_CASE("TLS trunks: trunk_ca relative to the config file, verification on unless trunk_tls_verify = false") {
    auto cfg = accepted(gateway("enabled = true\ntrunk = \"sips:trunk.example.net\"\ntrunk_ca = \"certs/../trunk-ca.pem\""));
    REQUIRE(cfg);
    const auto& g = cfg->find_realm("example.org")->gateway;
    CHECK(g.trunk_ca == "/etc/turnbridge/trunk-ca.pem");
    CHECK(g.trunk_tls_verify);
    cfg = accepted(gateway("enabled = true\ntrunk = \"sip:10.0.0.1;transport=tls\"\ntrunk_ca = \"/srv/ca.pem\""));
    REQUIRE(cfg);
    CHECK(cfg->find_realm("example.org")->gateway.trunk_ca == "/srv/ca.pem");
    cfg = accepted(gateway("enabled = true\ntrunk = \"sips:trunk.example.net\"\ntrunk_tls_verify = false"));
    REQUIRE(cfg);
    CHECK(cfg->find_realm("example.org")->gateway.trunk_ca.empty());
    CHECK_FALSE(cfg->find_realm("example.org")->gateway.trunk_tls_verify);
}

TEST_CASE("agent: route targets and the agent keys (issue 17)") {
    auto cfg = accepted(gateway("agent_connect_timeout = 5\nagent_playout_frames = 100\n"
                                "[realm.\"example.org\".gateway.routes]\n\"+15550177\" = [\"agent:wss://[::1]:8443/stream?x=1\"]\n"
                                "\"+15550178\" = [\"agent:ws://localhost/a\"]"));
    REQUIRE(cfg);
    const auto& gw = cfg->find_realm("example.org")->gateway;
    CHECK(gw.agent_connect_timeout == 5);
    CHECK(gw.agent_playout_frames == 100);
    std::string why;
    const auto u = parse_agent_url(gw.routes.at("+15550177").at(0), why);
    REQUIRE(u);
    CHECK(u->secure);
    CHECK(u->host == "::1");
    CHECK(u->port == 8443);
    CHECK(u->target == "/stream?x=1");
    const auto l = parse_agent_url(gw.routes.at("+15550178").at(0), why);
    REQUIRE(l);
    CHECK(!l->secure);
    CHECK(l->port == 80);
    CHECK(!parse_agent_url("alice", why));
    CHECK(why.empty());
    auto defaults = accepted(gateway(""));
    CHECK(defaults->find_realm("example.org")->gateway.agent_outbound_max_calls == 10);
    CHECK(defaults->find_realm("example.org")->gateway.agent_ring_timeout == 30);
    CHECK(defaults->find_realm("example.org")->gateway.agent_connect_timeout == 3);
    CHECK(defaults->find_realm("example.org")->gateway.agent_playout_frames == 500);
}

TEST_CASE("agent: [realm.X.gateway.agents], names a browser dials (issue 17)") {
    const std::string table = "agent_authorization = \"Bearer realm\"\n[realm.\"example.org\".gateway.agents]\n";
    auto cfg = accepted(gateway(table + "ai = \"ws://127.0.0.1:8765/stream\"\n"
                                        "\"+15550199\" = { url = \"agent:wss://[::1]/a\", authorization = \"Bearer own\", "
                                        "parameters = { lang = \"en\", tier = \"gold\" } }"));
    REQUIRE(cfg);
    const auto& agents = cfg->find_realm("example.org")->gateway.agents;
    REQUIRE(agents.size() == 2);
    const auto& ai = agents.at("ai");
    CHECK(ai.url.host == "127.0.0.1");
    CHECK(ai.url.port == 8765);
    CHECK(ai.url.target == "/stream");
    CHECK(ai.authorization == "Bearer realm");   // the gateway's, without its own
    CHECK(ai.parameters.empty());
    const auto& num = agents.at("+15550199");
    CHECK(num.url.secure);
    CHECK(num.url.port == 443);
    CHECK(num.authorization == "Bearer own");
    REQUIRE(num.parameters.size() == 2);
    CHECK(num.parameters[0] == std::pair<std::string, std::string>{"lang", "en"});
    CHECK(num.parameters[1] == std::pair<std::string, std::string>{"tier", "gold"});
    CHECK(accepted(gateway(""))->find_realm("example.org")->gateway.agents.empty());

    const std::string a = "realm.\"example.org\".gateway.agents.";
    struct Row { const char* name; std::string text; std::string key; int line; const char* says; };
    const std::vector<Row> rows = {
        {"http", table + "ai = \"http://127.0.0.1/x\"", a + "ai", 11, "expected agent:ws://"},
        {"bad host name", table + "ai = \"ws://agents_x.example/x\"", a + "ai", 11, "must be an IP address or a host name"},
        {"bad name", table + "\"a b\" = \"ws://127.0.0.1/x\"", a + "\"a b\"", 11, "expected a name or number a browser dials"},
        {"no url", table + "ai = { authorization = \"x\" }", a + "ai", 11, "expected url ="},
        {"typo", table + "ai = { url = \"ws://127.0.0.1/x\", params = {} }", a + "ai.params", 11, "unknown key; expected one of: url, authorization, parameters, media_format"},
        {"media format", table + "ai = { url = \"ws://127.0.0.1/x\", media_format = \"pcm\" }", a + "ai.media_format", 11,
         "expected \"mulaw\" (8 kHz, Twilio's audio/x-mulaw) or \"l16\" (16 kHz linear), got \"pcm\""},
        {"realm media format", "agent_media_format = \"L16\"", "realm.\"example.org\".gateway.agent_media_format", 9, "expected \"mulaw\""},
        {"two-line authorization", table + "ai = { url = \"ws://127.0.0.1/x\", authorization = \"a\\r\\nb: c\" }",
         a + "ai.authorization", 11, "expected one line"},
        {"own parameter", table + "ai = { url = \"ws://127.0.0.1/x\", parameters = { from = \"x\" } }",
         a + "ai.parameters.from", 11, "set by turnbridge"},
    };
    for (const auto& row : rows) {
        const std::string name = row.name;
        CAPTURE(name);
        const auto e = rejected(gateway(row.text));
        CHECK(e.key == row.key);
        CHECK(e.line == row.line);
        CHECK_MESSAGE(e.message.find(row.says) != std::string::npos, e.message);
    }
}

TEST_CASE("agent: media_format per agent, agent_media_format for the realm's routes and API calls (issue 17)") {
    const auto g = [](const std::string& keys) { return accepted(gateway(keys))->find_realm("example.org")->gateway; };
    CHECK(g("").agent_media_format == AgentMediaFormat::Mulaw);
    const auto l16 = g("agent_media_format = \"l16\"\n[realm.\"example.org\".gateway.agents]\nai = \"ws://127.0.0.1/x\"\n"
                       "mu = { url = \"ws://127.0.0.1/y\", media_format = \"mulaw\" }");
    CHECK(l16.agent_media_format == AgentMediaFormat::L16);
    CHECK(l16.agents.at("ai").media_format == AgentMediaFormat::L16);   // the realm's, without its own
    CHECK(l16.agents.at("mu").media_format == AgentMediaFormat::Mulaw);
    const auto own = g("[realm.\"example.org\".gateway.agents]\nai = { url = \"ws://127.0.0.1/x\", media_format = \"l16\" }");
    CHECK(own.agents.at("ai").media_format == AgentMediaFormat::L16);
    CHECK(to_string(AgentMediaFormat::L16) == "l16");
}

TEST_CASE("agent URLs: host names are taken and looked up later; malformed ones are refused (issue 17)") {
    struct Row { const char* url; bool ok; const char* host; std::uint16_t port; };
    const Row rows[] = {
        {"agent:wss://agents.example/stream", true, "agents.example", 443},
        {"agent:ws://agent-1.internal.example.:8765/x", true, "agent-1.internal.example.", 8765},
        {"agent:ws://LOCALHOST/a", true, "LOCALHOST", 80},
        {"agent:ws://192.0.2.7:9000/a", true, "192.0.2.7", 9000},
        {"agent:ws://-bad.example/a", false, "", 0},
        {"agent:ws://bad-.example/a", false, "", 0},
        {"agent:ws://a..example/a", false, "", 0},
        {"agent:ws://under_score.example/a", false, "", 0},
        {"agent:ws://host%20x/a", false, "", 0},
    };
    for (const auto& r : rows) {
        CAPTURE(r.url);
        std::string why;
        const auto u = parse_agent_url(r.url, why);
        CHECK(u.has_value() == r.ok);
        if (!u) {
            CHECK(why.find("host") != std::string::npos);
            continue;
        }
        CHECK(u->host == r.host);
        CHECK(u->port == r.port);
    }
    std::string why;
    CHECK(!parse_agent_url(std::string("agent:ws://") + std::string(64, 'a') + ".example/x", why));   // a label over 63
}

TEST_CASE("bad gateway settings are rejected, naming the key, its line and what was expected") {
    const std::string g = "realm.\"example.org\".gateway.";
    struct Row { const char* name; std::string text; std::string key; int line; const char* says; };
    const std::vector<Row> rows = {
        {"no trunk", gateway("enabled = true"), "realm.\"example.org\".gateway", 8, "expected trunk ="},
        {"http trunk", gateway("trunk = \"http://x\""), g + "trunk", 9, "expected a sip: or sips: URI"},
        {"user in trunk", gateway("trunk = \"sip:bob@192.0.2.1\""), g + "trunk", 9, "expected no user part"},
        {"port 0", gateway("trunk = \"sip:192.0.2.1:0\""), g + "trunk", 9, "expected a port from 1 to 65535"},
        {"port text", gateway("trunk = \"sip:192.0.2.1:x\""), g + "trunk", 9, "expected a port from 1 to 65535"},
        {"bad transport", gateway("trunk = \"sip:192.0.2.1;transport=sctp\""), g + "trunk", 9, "expected transport=udp, tcp or tls, got \"sctp\""},
        {"sips over udp", gateway("trunk = \"sips:192.0.2.1;transport=udp\""), g + "trunk", 9, "TLS only"},
        {"bad ipv6", gateway("trunk = \"sip:[::zz]\""), g + "trunk", 9, "expected an IPv6 address in brackets"},
        {"empty host", gateway("trunk = \"sip:\""), g + "trunk", 9, "expected a host name or IP address"},
        {"unknown codec", gateway("codecs = [\"g729\"]"), g + "codecs[0]", 9, "expected \"opus\", \"pcmu\", \"pcma\" or \"g722\", got \"g729\""},
        {"g722 alone", gateway("codecs = [\"G722\"]"), g + "codecs", 9, "expected at least one browser codec (\"opus\", \"pcmu\" or \"pcma\")"},
        {"codec twice", gateway("codecs = [\"pcmu\", \"PCMU\"]"), g + "codecs[1]", 9, "\"pcmu\" is listed twice"},
        {"no codecs", gateway("codecs = []"), g + "codecs", 9, "expected at least one browser codec"},
        {"password alone", gateway("trunk_password = \"x\""), g + "trunk_password", 9, "expected trunk_username too"},
        {"caller id with space", gateway("caller_id = \"+1 555\""), g + "caller_id", 9, "expected a number like"},
        {"typo", gateway("trnk = \"sip:1.2.3.4\""), g + "trnk", 9, "did you mean \"trunk\"?"},
        {"enabled as string", gateway("enabled = \"yes\""), g + "enabled", 9, "expected true or false"},
        {"route to unknown user", gateway("[realm.\"example.org\".gateway.routes]\n\"+1555\" = [\"carol\"]"),
         g + "routes.\"+1555\"[0]", 10, "no user \"carol\" in realm \"example.org\""},
        {"agent over http", gateway("[realm.\"example.org\".gateway.routes]\n\"+1555\" = [\"agent:http://127.0.0.1/x\"]"),
         g + "routes.\"+1555\"[0]", 10, "expected agent:ws://HOST:PORT/PATH or agent:wss://..."},
        {"agent host name with an underscore", gateway("[realm.\"example.org\".gateway.routes]\n\"+1555\" = [\"agent:wss://agents_x.example/x\"]"),
         g + "routes.\"+1555\"[0]", 10, "must be an IP address or a host name"},
        {"agent outbound max -1", gateway("agent_outbound_max_calls = -1"), g + "agent_outbound_max_calls", 9, "expected"},
        {"agent ring timeout 0", gateway("agent_ring_timeout = 0"), g + "agent_ring_timeout", 9, "expected"},
        {"agent port 0", gateway("[realm.\"example.org\".gateway.routes]\n\"+1555\" = [\"agent:ws://127.0.0.1:0/x\"]"),
         g + "routes.\"+1555\"[0]", 10, "port must be 1-65535"},
        {"agent timeout 0", gateway("agent_connect_timeout = 0"), g + "agent_connect_timeout", 9, "expected"},
        {"agent playout 5", gateway("agent_playout_frames = 5"), g + "agent_playout_frames", 9, "expected"},
        {"agent authorization with a line end", gateway("agent_authorization = \"Bearer x\\r\\nX-Evil: 1\""),
         g + "agent_authorization", 9, "expected one line"},
        {"route to nobody", gateway("[realm.\"example.org\".gateway.routes]\n\"+1555\" = []"),
         g + "routes.\"+1555\"", 10, "expected at least one user to ring"},
        {"route key not a number", gateway("[realm.\"example.org\".gateway.routes]\n\"a b\" = [\"test\"]"),
         g + "routes.\"a b\"", 10, "expected a number like \"+15550123\" as the key"},
        {"media ports in the relay range", gateway("", "relay_ports = \"20000-30000\"\nmedia_ports = \"22000-22999\""),
         "server.media_ports", 6, "22000-22999 overlaps server.relay_ports (20000-30000)"},
        {"media ports malformed", gateway("", "media_ports = \"22000\""), "server.media_ports", 5, "expected \"MIN-MAX\""},
        {"ws listener on the TURN port", gateway("", "sip_listen = [\"127.0.0.1:3478\"]"), "server.sip_listen[0]", 5,
         "duplicate listener 127.0.0.1:3478 (already in server.listen[0])"},
        {"wss without a certificate", gateway("", "wss_listen = [\"127.0.0.1:8089\"]"), "server.tls_cert", 5,
         "server.wss_listen is not empty"},
        {"trunk_ca on a UDP trunk", gateway("trunk = \"sip:192.0.2.1\"\ntrunk_ca = \"ca.pem\""), g + "trunk_ca", 10,
         "expected a TLS trunk"},
        {"trunk_tls_verify on a TCP trunk", gateway("trunk = \"sip:192.0.2.1;transport=tcp\"\ntrunk_tls_verify = false"),
         g + "trunk_tls_verify", 10, "trunk_tls_verify only applies to TLS"},
        {"empty trunk_ca", gateway("trunk = \"sips:192.0.2.1\"\ntrunk_ca = \"\""), g + "trunk_ca", 10,
         "expected the path of a PEM CA file"},
        {"a CA that would not be used", gateway("trunk = \"sips:192.0.2.1\"\ntrunk_ca = \"ca.pem\"\ntrunk_tls_verify = false"),
         g + "trunk_tls_verify", 11, "trunk_ca is set"},
        {"trunk_tls_verify as a string", gateway("trunk = \"sips:192.0.2.1\"\ntrunk_tls_verify = \"no\""),
         g + "trunk_tls_verify", 10, "expected true or false"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        const auto e = rejected(row.text);
        CAPTURE(e.to_string());
        CHECK(e.key == row.key);
        CHECK(e.line == row.line);
        CHECK(e.message.find(row.says) != std::string::npos);
    }
}

TEST_CASE("an enabled gateway needs media_ip and a WebSocket listener; a disabled one needs neither") {
    const std::string realm = "[realm.\"example.org\"]\nusers = { test = \"secret\" }\n[realm.\"example.org\".gateway]\n";
    auto e = rejected("[server]\nlisten = [\"127.0.0.1:3478\"]\nws_listen = [\"127.0.0.1:8088\"]\n" + realm +
                      "enabled = true\ntrunk = \"sip:127.0.0.1:5070\"\n");
    CHECK(e.key == "server.media_ip");
    CHECK(e.message.find("realm.\"example.org\".gateway is enabled") != std::string::npos);
    e = rejected("[server]\nlisten = [\"127.0.0.1:3478\"]\nmedia_ip = \"127.0.0.1\"\n" + realm +
                 "enabled = true\ntrunk = \"sip:127.0.0.1:5070\"\n");
    CHECK(e.key == "server.ws_listen");
    // Written but off: the trunk is checked, nothing else is required.
    CHECK(accepted("[server]\nlisten = [\"127.0.0.1:3478\"]\n" + realm + "enabled = false\ntrunk = \"sip:127.0.0.1:5070\"\n"));
    // REST realms cannot have their users checked: any name may be routed.
    CHECK(accepted("[server]\nlisten = [\"127.0.0.1:3478\"]\nws_listen = [\"127.0.0.1:8088\"]\nmedia_ip = \"127.0.0.1\"\n"
                   "[realm.\"r\"]\nrest_secret = \"s\"\n[realm.\"r\".gateway]\nenabled = true\ntrunk = \"sip:127.0.0.1\"\n"
                   "[realm.\"r\".gateway.routes]\n\"100\" = [\"anyone\"]\n[realm.\"example.org\"]\nusers = { a = \"b\" }\n"));
}

TEST_SUITE_END();

TEST_CASE("the gateway's SIP bounds (issue 11): defaults, values, and errors naming the key") {
    auto cfg = accepted(gateway("enabled = true\ntrunk = \"sip:127.0.0.1:5070\""));
    REQUIRE(cfg);
    CHECK_FALSE(cfg->sip_hide_from_strangers);
    CHECK(cfg->sip_requests_per_second == 20);
    CHECK(cfg->sip_requests_burst == 40);
    CHECK(cfg->sip_udp_flows == 4096);
    CHECK(cfg->sip_transactions == 8192);
    CHECK(cfg->sip_registrations == 10000);
    CHECK(cfg->sip_registrations_per_user == 10);
    const auto& realm = cfg->realms.at("example.org");
    CHECK(realm.gateway.max_calls_per_user == 4);
    CHECK(realm.gateway.max_calls == 0);
    CHECK(cfg->realm_max_calls(realm) == 333);   // 22000-22999: 1,000 ports, three a call

    cfg = accepted(gateway("enabled = true\ntrunk = \"sip:127.0.0.1:5070\"\nmax_calls_per_user = 0\nmax_calls = 7",
                           "sip_hide_from_strangers = true\nsip_requests_per_second = 0\nsip_requests_burst = 5\n"
                           "sip_udp_flows = 16\nsip_transactions = 100\nsip_registrations = 50\nsip_registrations_per_user = 2"));
    REQUIRE(cfg);
    CHECK(cfg->sip_hide_from_strangers);
    CHECK(cfg->sip_requests_per_second == 0);
    CHECK(cfg->sip_requests_burst == 5);
    CHECK(cfg->sip_udp_flows == 16);
    CHECK(cfg->sip_transactions == 100);
    CHECK(cfg->sip_registrations == 50);
    CHECK(cfg->sip_registrations_per_user == 2);
    CHECK(cfg->realms.at("example.org").gateway.max_calls_per_user == 0);
    CHECK(cfg->realm_max_calls(cfg->realms.at("example.org")) == 7);

    struct Row {
        const char* name;
        std::string server, keys, key;
    };
    const Row rows[] = {
        {"tiny flow table", "sip_udp_flows = 15", "", "server.sip_udp_flows"},
        {"zero burst", "sip_requests_burst = 0", "", "server.sip_requests_burst"},
        {"negative rate", "sip_requests_per_second = -1", "", "server.sip_requests_per_second"},
        {"no transactions", "sip_transactions = 0", "", "server.sip_transactions"},
        {"no registrations", "sip_registrations = 0", "", "server.sip_registrations"},
        {"hide as a string", "sip_hide_from_strangers = \"yes\"", "", "server.sip_hide_from_strangers"},
        {"negative calls", "", "max_calls_per_user = -1", "realm.\"example.org\".gateway.max_calls_per_user"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        auto e = rejected(gateway("enabled = true\ntrunk = \"sip:127.0.0.1:5070\"\n" + row.keys, row.server));
        CHECK(e.key == row.key);
    }
}

TEST_CASE("rel100 (issue 13): on by default, off when asked, an error naming the key otherwise") {
    auto cfg = accepted(gateway("enabled = true\ntrunk = \"sip:127.0.0.1:5070\""));
    REQUIRE(cfg);
    CHECK(cfg->realms.at("example.org").gateway.rel100);
    cfg = accepted(gateway("enabled = true\ntrunk = \"sip:127.0.0.1:5070\"\nrel100 = false"));
    REQUIRE(cfg);
    CHECK_FALSE(cfg->realms.at("example.org").gateway.rel100);
    auto e = rejected(gateway("enabled = true\ntrunk = \"sip:127.0.0.1:5070\"\nrel100 = \"yes\""));
    CHECK(e.key == "realm.\"example.org\".gateway.rel100");
}

TEST_CASE("test_numbers (issue 16): off by default, on when asked, an error naming the key otherwise") {
    auto cfg = accepted(gateway("enabled = true\ntrunk = \"sip:127.0.0.1:5070\""));
    REQUIRE(cfg);
    CHECK_FALSE(cfg->realms.at("example.org").gateway.test_numbers);
    cfg = accepted(gateway("enabled = true\ntrunk = \"sip:127.0.0.1:5070\"\ntest_numbers = true"));
    REQUIRE(cfg);
    CHECK(cfg->realms.at("example.org").gateway.test_numbers);
    auto e = rejected(gateway("enabled = true\ntrunk = \"sip:127.0.0.1:5070\"\ntest_numbers = 1"));
    CHECK(e.key == "realm.\"example.org\".gateway.test_numbers");
}

TEST_CASE("identity and number keys (issue 13): defaults, values, and errors naming the key") {
    const std::string base = "enabled = true\ntrunk = \"sip:127.0.0.1:5070\"\n";
    auto cfg = accepted(gateway(base));
    REQUIRE(cfg);
    const auto& d = cfg->realms.at("example.org").gateway;
    CHECK(d.identity == Gateway::Identity::From);   // chan_pjsip: send_pai = no, send_rpid = no
    CHECK_FALSE(d.user_phone);
    CHECK_FALSE(d.e164_plus);
    CHECK(d.caller_ids.empty());
    CHECK(d.national_prefix.empty());
    cfg = accepted(gateway(base + "caller_ids = [\"+15550100\", \"15550101\"]\nidentity = \"PAI\"\nuser_phone = true\n"
                                  "e164_plus = false\ntech_prefix = \"1234#\"\nnational_prefix = \"1\"\nnational_digits = 10"));
    REQUIRE(cfg);
    const auto& g = cfg->realms.at("example.org").gateway;
    CHECK(g.caller_ids == std::vector<std::string>{"+15550100", "15550101"});
    CHECK(g.identity == Gateway::Identity::Pai);
    CHECK(g.user_phone);
    CHECK(g.e164_plus == false);
    CHECK(g.tech_prefix == "1234#");
    CHECK(g.national_prefix == "1");
    CHECK(g.national_digits == 10);
    const std::string k = "realm.\"example.org\".gateway.";
    struct Row { std::string text, key; const char* says; };
    const std::vector<Row> rows = {
        {"identity = \"asserted\"", k + "identity", "expected \"pai\" (P-Asserted-Identity), \"rpid\""},
        {"caller_ids = [\"+1 555\"]", k + "caller_ids[0]", "expected a number like"},
        {"caller_ids = [\"1\", \"1\"]", k + "caller_ids[1]", "is listed twice"},
        {"tech_prefix = \"ab\"", k + "tech_prefix", "expected up to 16 digits, * or #"},
        {"national_prefix = \"+1\"", k + "national_prefix", "expected a country code of 1 to 3 digits"},
        {"national_digits = 10", k + "national_digits", "expected national_prefix too"},
        {"national_prefix = \"44\"\nnational_digits = 14", k + "national_digits", "<= 15 digits"},
        {"e164_plus = \"yes\"", k + "e164_plus", ""},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        auto e = rejected(gateway(base + row.text));
        CHECK(e.key == row.key);
        CHECK(e.to_string().find(row.says) != std::string::npos);
    }
}

TEST_CASE("trunk addresses (issue 14): has_port, trunk_allow, trunk_targets, options_interval, dns_servers") {
    const std::string base = "enabled = true\ntrunk = \"sip:carrier.example;transport=tcp\"\n";
    auto cfg = accepted(gateway(base));
    REQUIRE(cfg);
    const auto& g = cfg->realms.at("example.org").gateway;
    CHECK_FALSE(g.trunk.has_port);   // SRV first (RFC 3263 §4.2)
    CHECK(g.trunk.port == 5060);
    CHECK(g.trunk_allow.empty());
    CHECK(g.trunk_targets.empty());
    CHECK(g.options_interval == 30);
    CHECK_FALSE(g.options_interval_set);
    CHECK(cfg->dns_servers.empty());
    cfg = accepted(gateway(base + "trunk_allow = [\"192.0.2.0/28\", \"2001:db8::1\"]\n"
                                  "trunk_targets = [\"192.0.2.11:5060\", \"[2001:db8::2]:5070\"]\noptions_interval = 0\n",
                           "dns_servers = [\"127.0.0.1:5353\", \"192.0.2.53\"]\n"));
    REQUIRE(cfg);
    const auto& h = cfg->realms.at("example.org").gateway;
    CHECK(h.trunk_allow.size() == 2);
    CHECK(h.trunk_allow[0].contains(*IpAddress::parse("192.0.2.15")));
    CHECK(h.trunk_targets.size() == 2);
    CHECK(h.trunk_targets[1].port == 5070);
    CHECK(h.options_interval == 0);
    CHECK(h.options_interval_set);
    REQUIRE(cfg->dns_servers.size() == 2);
    CHECK(cfg->dns_servers[1].port == 53);
    CHECK(accepted(gateway("enabled = true\ntrunk = \"sip:carrier.example:5080\"\n"))->realms.at("example.org").gateway.trunk.has_port);
    auto e = rejected(gateway(base + "trunk_allow = [\"192.0.2.0/33\"]\n"));
    CHECK(e.key == "realm.\"example.org\".gateway.trunk_allow[0]");
    e = rejected(gateway(base + "trunk_targets = [\"192.0.2.11\"]\n"));
    CHECK(e.key == "realm.\"example.org\".gateway.trunk_targets[0]");
    e = rejected(gateway(base + "options_interval = -1\n"));
    CHECK(e.key == "realm.\"example.org\".gateway.options_interval");
    e = rejected(gateway(base, "dns_servers = [\"dns.example\"]\n"));
    CHECK(e.key == "server.dns_servers[0]");
}

TEST_CASE("srtp (issue 14): off by default; off, optional, required in any case; anything else names the key") {
    const std::string base = "enabled = true\ntrunk = \"sips:carrier.example\"\n";
    auto cfg = accepted(gateway(base));
    REQUIRE(cfg);
    CHECK(cfg->realms.at("example.org").gateway.srtp == Gateway::Srtp::Off);
    // No structured bindings: clang 14 cannot capture them in doctest's CAPTURE lambda.
    for (const auto& row : {std::pair{"off", Gateway::Srtp::Off}, {"optional", Gateway::Srtp::Optional},
                            {"Required", Gateway::Srtp::Required}}) {
        CAPTURE(row.first);
        cfg = accepted(gateway(base + "srtp = \"" + row.first + "\"\n"));
        REQUIRE(cfg);
        CHECK(cfg->realms.at("example.org").gateway.srtp == row.second);
    }
    for (const char* bad : {"srtp = \"sdes\"", "srtp = true", "srtp = \"\""}) {
        CAPTURE(bad);
        auto e = rejected(gateway(base + bad + "\n"));
        CHECK(e.key == "realm.\"example.org\".gateway.srtp");
    }
}
