// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "turnbridge/config/config.hpp"

using namespace turnbridge;
using namespace turnbridge::config;

namespace {

constexpr const char* kPath = "/etc/turnbridge/turnbridge.toml";

// Line 1 is [server], line 2 its listener: a row's own lines start at line 3. The realm
// table follows them.
std::string with_server(const std::string& lines) {
    return "[server]\nlisten = [\"127.0.0.1:3478\"]\n" + lines +
           "\n[realm.\"example.org\"]\nusers = { test = \"secret\" }\n";
}

std::shared_ptr<const Config> accepted(const std::string& text, const char* path = kPath) {
    auto r = load_string(text, path);
    if (auto* e = std::get_if<ConfigError>(&r)) FAIL_CHECK("rejected: " << e->to_string());
    auto* cfg = std::get_if<std::shared_ptr<const Config>>(&r);
    return cfg ? *cfg : nullptr;
}

struct Bad {
    const char* name;
    std::string text;
    std::string key;  // the dotted key the error names
    int line;         // the line of the offending value
    const char* says; // part of the message: what was expected
};

void check_rejected(const std::vector<Bad>& rows) {
    for (const auto& row : rows) {
        CAPTURE(row.name);
        CAPTURE(row.text);
        auto r = load_string(row.text, kPath);
        const auto* e = std::get_if<ConfigError>(&r);
        CHECK_MESSAGE(e != nullptr, "the config was accepted");
        if (!e) continue;
        CAPTURE(e->to_string());
        CHECK(e->file == kPath);
        CHECK(e->key == row.key);
        CHECK(e->line == row.line);
        CHECK(e->message.find(row.says) != std::string::npos);
    }
}

std::vector<std::string> strings(const auto& values) {
    std::vector<std::string> out;
    for (const auto& v : values) out.push_back(v.to_string());
    return out;
}

}  // namespace

// The suite lets `unit_tests -ts='*config*'` pick these cases.
TEST_SUITE_BEGIN("config");

TEST_CASE("The sample conf/turnbridge.toml loads with the values it documents") {
    const std::filesystem::path path = TURNBRIDGE_FIXTURES_DIR "/../../conf/turnbridge.toml";
    auto r = load_file(path);
    if (auto* e = std::get_if<ConfigError>(&r)) FAIL(e->to_string());
    const auto& cfg = *std::get<std::shared_ptr<const Config>>(r);
    const auto dir = std::filesystem::absolute(path).lexically_normal().parent_path();
    CHECK(cfg.file == dir / "turnbridge.toml");
    CHECK(strings(cfg.listen) == std::vector<std::string>{"127.0.0.1:3478", "[::1]:3478"});
    CHECK(strings(cfg.tls_listen) == std::vector<std::string>{"127.0.0.1:5349"});
    CHECK(cfg.tls_cert == dir / "cert.pem");
    CHECK(cfg.tls_key == dir / "key.pem");
    CHECK(strings(cfg.relay_ips) == std::vector<std::string>{"127.0.0.1", "::1"});
    CHECK_FALSE(cfg.external_ip.has_value());
    // Above Linux's ephemeral range 32768-60999.
    CHECK(cfg.relay_port_min == 61000);
    CHECK(cfg.relay_port_max == 65535);
    CHECK(cfg.default_realm == "example.org");
    CHECK(strings(cfg.allowed_peers) == std::vector<std::string>{"127.0.0.0/8", "::1/128"});
    CHECK(cfg.denied_peers.empty());
    REQUIRE(cfg.realms.size() == 1);
    const Realm& realm = cfg.realms.at("example.org");
    CHECK(realm.name == "example.org");
    CHECK(realm.users == std::map<std::string, std::string>{{"test", "secret"}});
    CHECK(realm.rest_secret == "s3cr3t");
    CHECK(realm.listen.empty());
    CHECK(realm.price_per_gb == 0.05);
    CHECK(realm.currency == "USD");
    CHECK(realm.max_bitrate == 0);
    CHECK(realm.quota_bytes == 0);
    CHECK(realm.quota_period == Realm::QuotaPeriod::Month);
    CHECK(cfg.accounting.database == dir / "turnbridge.db");
    CHECK(cfg.accounting.flush_interval == std::chrono::seconds(5));
    CHECK(cfg.accounting.enabled);
    REQUIRE(cfg.admin.listen);
    CHECK(cfg.admin.listen->to_string() == "127.0.0.1:9641");
    CHECK(cfg.admin.token.empty());
    // The demo (issue 16): a gateway on loopback whose test line answers without a trunk.
    CHECK(strings(cfg.ws_listen) == std::vector<std::string>{"127.0.0.1:8088"});
    CHECK(strings(cfg.sip_listen) == std::vector<std::string>{"127.0.0.1:5080"});
    CHECK(realm.gateway.enabled);
    CHECK(realm.gateway.test_numbers);
}

TEST_CASE("Keys left out take the defaults of config.hpp") {
    auto cfg = accepted("[server]\nlisten = [\"127.0.0.1:3478\"]\n[realm.\"example.org\"]\nrest_secret = \"x\"\n");
    REQUIRE(cfg);
    CHECK(cfg->tls_listen.empty());
    CHECK(cfg->tls_cert.empty());
    CHECK(cfg->tls_key.empty());
    CHECK(cfg->relay_ips.empty());
    CHECK_FALSE(cfg->external_ip);
    CHECK(cfg->relay_port_min == 49152);
    CHECK(cfg->relay_port_max == 65535);
    CHECK(cfg->default_realm == "example.org");
    CHECK(cfg->threads == 0);
    CHECK(cfg->software == "turnbridge");
    CHECK(cfg->default_lifetime == std::chrono::seconds(600));
    CHECK(cfg->max_lifetime == std::chrono::seconds(3600));
    CHECK(cfg->nonce_lifetime == std::chrono::seconds(600));
    CHECK(cfg->max_allocations == 0);
    CHECK(cfg->max_allocations_per_user == 10);  // issue 11: one user must not take every port
    CHECK(cfg->max_permissions_per_allocation == 64);
    CHECK(cfg->max_channels_per_allocation == 64);
    CHECK(cfg->log_level == "info");
    CHECK(cfg->allowed_peers.empty());
    CHECK(cfg->denied_peers.empty());
    CHECK(cfg->unauthenticated_rate == 50);
    CHECK(cfg->unauthenticated_burst == 100);
    CHECK(cfg->auth_failures_per_minute == 20);
    CHECK(cfg->realms.at("example.org").users.empty());
    CHECK(cfg->realms.at("example.org").max_allocations_per_user == 0);
    const Realm& realm = cfg->realms.at("example.org");
    CHECK(realm.price_per_gb == 0.0);
    CHECK(realm.currency == "USD");
    CHECK(realm.max_bitrate == 0);
    CHECK(realm.quota_bytes == 0);
    CHECK(realm.quota_period == Realm::QuotaPeriod::Month);
    // The database sits next to the config file; no admin server unless asked for.
    CHECK(cfg->accounting.database == std::filesystem::path("/etc/turnbridge/turnbridge.db"));
    CHECK(cfg->accounting.flush_interval == std::chrono::seconds(5));
    CHECK_FALSE(cfg->admin.listen);
    CHECK(cfg->admin.token.empty());
}

TEST_CASE("Every [server] key is read into its field") {
    auto cfg = accepted(with_server(R"(tls_listen = ["[::1]:5349"]
tls_cert = "c.pem"
tls_key = "k.pem"
relay_ips = ["::1", "10.0.0.5"]
external_ip = "203.0.113.9"
relay_ports = "50000-50100"
threads = 4
software = ""
default_lifetime = 300
max_lifetime = 900
nonce_lifetime = 120
max_allocations = 1000
max_allocations_per_user = 12
max_permissions_per_allocation = 5
max_channels_per_allocation = 6
log_level = "debug"
[security]
denied_peers = ["198.51.100.0/24", "2001:db8::/32"]
auth_failures_per_minute = 7
[realm.other]
rest_secret = "r"
max_allocations_per_user = 3)"));
    REQUIRE(cfg);
    CHECK(strings(cfg->tls_listen) == std::vector<std::string>{"[::1]:5349"});
    CHECK(strings(cfg->relay_ips) == std::vector<std::string>{"::1", "10.0.0.5"});
    REQUIRE(cfg->external_ip);
    CHECK(cfg->external_ip->to_string() == "203.0.113.9");
    CHECK(cfg->relay_port_min == 50000);
    CHECK(cfg->relay_port_max == 50100);
    CHECK(cfg->threads == 4);
    CHECK(cfg->software.empty());
    CHECK(cfg->default_lifetime == std::chrono::seconds(300));
    CHECK(cfg->max_lifetime == std::chrono::seconds(900));
    CHECK(cfg->nonce_lifetime == std::chrono::seconds(120));
    CHECK(cfg->max_allocations == 1000);
    CHECK(cfg->max_allocations_per_user == 12);
    CHECK(cfg->max_permissions_per_allocation == 5);
    CHECK(cfg->max_channels_per_allocation == 6);
    CHECK(cfg->auth_failures_per_minute == 7);
    CHECK(cfg->log_level == "debug");
    CHECK(strings(cfg->denied_peers) == std::vector<std::string>{"198.51.100.0/24", "2001:db8::/32"});
    CHECK(cfg->realms.size() == 2);
    CHECK(cfg->realms.at("other").rest_secret == "r");
    CHECK(cfg->realms.at("other").max_allocations_per_user == 3);
}

TEST_CASE("Every [accounting], [admin] and realm accounting key is read into its field") {
    auto cfg = accepted(with_server(R"(tls_listen = ["127.0.0.1:5349"]
tls_cert = "c.pem"
tls_key = "k.pem"
[accounting]
enabled = false
database = "/var/lib/turnbridge/usage.db"
flush_interval = 3600
[admin]
listen = "[2001:db8::1]:9641"
token = "t0ken"
[realm.paid]
rest_secret = "r"
price_per_gb = 0.085
currency = "EUR"
max_bitrate = 2000000
quota_bytes = 50000000000
quota_period = "day"
[realm.whole]
rest_secret = "r"
price_per_gb = 2
quota_period = "month")"));
    REQUIRE(cfg);
    CHECK(cfg->accounting.database == std::filesystem::path("/var/lib/turnbridge/usage.db"));
    CHECK(cfg->accounting.flush_interval == std::chrono::seconds(3600));
    CHECK_FALSE(cfg->accounting.enabled);
    REQUIRE(cfg->admin.listen);
    CHECK(cfg->admin.listen->to_string() == "[2001:db8::1]:9641");
    CHECK(cfg->admin.token == "t0ken");
    const Realm& paid = cfg->realms.at("paid");
    CHECK(paid.price_per_gb == 0.085);
    CHECK(paid.currency == "EUR");
    CHECK(paid.max_bitrate == 2'000'000);
    CHECK(paid.quota_bytes == 50'000'000'000);
    CHECK(paid.quota_period == Realm::QuotaPeriod::Day);
    const Realm& whole = cfg->realms.at("whole");
    CHECK(whole.price_per_gb == 2.0);  // an integer is a price too
    CHECK(whole.currency == "USD");
    CHECK(whole.quota_period == Realm::QuotaPeriod::Month);
}

TEST_CASE("accounting.database resolves against the config file's directory") {
    struct Row { const char* config; const char* database; const char* expected; };
    const Row rows[] = {
        {"/etc/turnbridge/turnbridge.toml", "turnbridge.db", "/etc/turnbridge/turnbridge.db"},
        {"/etc/turnbridge/turnbridge.toml", "../../var/lib/tb.db", "/var/lib/tb.db"},
        {"/etc/turnbridge/turnbridge.toml", "/srv/usage.db", "/srv/usage.db"},
        {"/srv/tb/x.toml", "db/./usage.db", "/srv/tb/db/usage.db"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.database);
        auto cfg = accepted(with_server(std::string("[accounting]\ndatabase = \"") + row.database + "\""), row.config);
        if (!cfg) continue;
        CHECK(cfg->accounting.database == std::filesystem::path(row.expected));
    }
}

TEST_CASE("The admin token may be left out only on a loopback listener (127.0.0.0/8, ::1)") {
    for (const char* listen : {"127.0.0.1:9641", "127.8.9.10:80", "[::1]:9641"}) {
        CAPTURE(listen);
        auto cfg = accepted(with_server(std::string("[admin]\nlisten = \"") + listen + "\""));
        REQUIRE(cfg);
        REQUIRE(cfg->admin.listen);
        CHECK(cfg->admin.listen->to_string() == listen);
        CHECK(cfg->admin.token.empty());
    }
    check_rejected({
        {"public without token", with_server("[admin]\nlisten = \"192.0.2.1:9641\""), "admin.token", 4, "expected a bearer token: admin.listen 192.0.2.1:9641 is not a loopback address"},
        {"wildcard without token", with_server("[admin]\nlisten = \"0.0.0.0:9641\""), "admin.token", 4, "0.0.0.0:9641 is not a loopback address"},
        {"v4-mapped loopback is not ::1", with_server("[admin]\nlisten = \"[::ffff:127.0.0.1]:9641\""), "admin.token", 4, "is not a loopback address"},
        {"empty token", with_server("[admin]\nlisten = \"[2001:db8::1]:9641\"\ntoken = \"\""), "admin.token", 5, "expected a bearer token: admin.listen [2001:db8::1]:9641 is not a loopback address, got an empty string"},
    });
    // A token on loopback is kept (the admin server then asks for it).
    auto cfg = accepted(with_server("[admin]\nlisten = \"127.0.0.1:9641\"\ntoken = \"x\""));
    REQUIRE(cfg);
    CHECK(cfg->admin.token == "x");
}

TEST_CASE("[accounting], [admin] and realm accounting values are checked, naming file, line and key") {
    const std::string realm = "[server]\nlisten = [\"127.0.0.1:3478\"]\n[realm.\"example.org\"]\nrest_secret = \"s\"\n";
    const std::string key = "realm.\"example.org\".";
    check_rejected({
        {"flush_interval 0", with_server("[accounting]\nflush_interval = 0"), "accounting.flush_interval", 4, "expected an integer from 1 to 3600, got 0"},
        {"enabled as a string", with_server("[accounting]\nenabled = \"no\""), "accounting.enabled", 4, "expected true or false, got a string"},
        {"flush_interval 3601", with_server("[accounting]\nflush_interval = 3601"), "accounting.flush_interval", 4, "got 3601"},
        {"flush_interval float", with_server("[accounting]\nflush_interval = 2.5"), "accounting.flush_interval", 4, "got a float"},
        {"empty database", with_server("[accounting]\ndatabase = \"\""), "accounting.database", 4, "expected a file path, got an empty string"},
        {"database not a string", with_server("[accounting]\ndatabase = 1"), "accounting.database", 4, "expected a string, got an integer"},
        {"typo in accounting", with_server("[accounting]\nflush_intervals = 5"), "accounting.flush_intervals", 4, "did you mean \"flush_interval\"?"},
        {"accounting as a value", "accounting = 5\n" + with_server(""), "accounting", 1, "expected a table, got an integer"},
        {"admin listen without port", with_server("[admin]\nlisten = \"127.0.0.1\""), "admin.listen", 4, "expected an address with a port"},
        {"admin listen port 0", with_server("[admin]\nlisten = \"127.0.0.1:0\""), "admin.listen", 4, "expected a port from 1 to 65535, got 0"},
        {"admin listen as array", with_server("[admin]\nlisten = [\"127.0.0.1:9641\"]"), "admin.listen", 4, "expected a string, got an array"},
        {"admin on a TURN listener", with_server("[admin]\nlisten = \"127.0.0.1:3478\""), "admin.listen", 4, "duplicate listener 127.0.0.1:3478 (already in server.listen[0])"},
        {"token not a string", with_server("[admin]\nlisten = \"127.0.0.1:9641\"\ntoken = 7"), "admin.token", 5, "expected a string, got an integer"},
        {"unknown admin key", with_server("[admin]\nlistens = \"127.0.0.1:9641\""), "admin.listens", 4, "did you mean \"listen\"?"},
        {"negative price", realm + "price_per_gb = -0.01\n", key + "price_per_gb", 5, "expected a number of at least 0, got -0.01"},
        {"price as string", realm + "price_per_gb = \"0.05\"\n", key + "price_per_gb", 5, "expected a number of at least 0, got a string"},
        {"price inf", realm + "price_per_gb = inf\n", key + "price_per_gb", 5, "got inf"},
        {"price nan", realm + "price_per_gb = nan\n", key + "price_per_gb", 5, "got nan"},
        {"currency lower case", realm + "currency = \"usd\"\n", key + "currency", 5, "expected three upper-case letters, like \"USD\" or \"EUR\", got \"usd\""},
        {"currency symbol", realm + "currency = \"$\"\n", key + "currency", 5, "got \"$\""},
        {"currency four letters", realm + "currency = \"USDT\"\n", key + "currency", 5, "three upper-case letters"},
        {"negative max_bitrate", realm + "max_bitrate = -1\n", key + "max_bitrate", 5, "expected an integer from 0 to 9223372036854775807, got -1"},
        {"quota_bytes as float", realm + "quota_bytes = 1e9\n", key + "quota_bytes", 5, "expected an integer from 0 to 9223372036854775807, got a float"},
        {"quota_period week", realm + "quota_period = \"week\"\n", key + "quota_period", 5, "expected \"day\" or \"month\", got \"week\""},
        {"quota_period capitalised", realm + "quota_period = \"Month\"\n", key + "quota_period", 5, "got \"Month\""},
        {"typo in realm accounting", realm + "price_per_gib = 1\n", key + "price_per_gib", 5, "did you mean \"price_per_gb\"?"},
    });
}

TEST_CASE("Relative TLS paths resolve against the config file's directory") {
    struct Row { const char* config; const char* tls_cert; const char* expected; };
    const Row rows[] = {
        {"/etc/turnbridge/turnbridge.toml", "cert.pem", "/etc/turnbridge/cert.pem"},
        {"/etc/turnbridge/turnbridge.toml", "tls/./cert.pem", "/etc/turnbridge/tls/cert.pem"},
        {"/etc/turnbridge/turnbridge.toml", "../pki/cert.pem", "/etc/pki/cert.pem"},
        {"/etc/turnbridge/turnbridge.toml", "/var/lib/acme/cert.pem", "/var/lib/acme/cert.pem"},
        {"/srv/tb/../tb/x.toml", "cert.pem", "/srv/tb/cert.pem"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.config);
        CAPTURE(row.tls_cert);
        auto cfg = accepted(with_server(std::string("tls_listen = [\"127.0.0.1:5349\"]\ntls_cert = \"") +
                                        row.tls_cert + "\"\ntls_key = \"key.pem\""),
                            row.config);
        if (!cfg) continue;
        CHECK(cfg->tls_cert == std::filesystem::path(row.expected));
        CHECK(cfg->tls_key == std::filesystem::path(row.config).lexically_normal().parent_path() / "key.pem");
    }
}

TEST_CASE("Config::file is absolute even when the path given is relative") {
    auto cfg = accepted(with_server(R"(tls_listen = ["127.0.0.1:5349"]
tls_cert = "cert.pem"
tls_key = "key.pem")"),
                        "conf/tb.toml");
    REQUIRE(cfg);
    const auto cwd = std::filesystem::current_path();
    CHECK(cfg->file.is_absolute());
    CHECK(cfg->file == cwd / "conf" / "tb.toml");
    CHECK(cfg->tls_cert == cwd / "conf" / "cert.pem");
}

TEST_CASE("realm_for_listener picks the realm that lists the endpoint, else the default realm") {
    auto cfg = accepted(R"([server]
listen = ["127.0.0.1:3478", "127.0.0.1:3479", "[::1]:3478"]
tls_listen = ["127.0.0.1:5349"]
tls_cert = "c.pem"
tls_key = "k.pem"
default_realm = "main"
[realm.main]
users = { a = "1" }
[realm."corp.example"]
users = { b = "2" }
listen = ["127.0.0.1:3479", "127.0.0.1:5349"]
)");
    REQUIRE(cfg);
    struct Row { const char* local; const char* realm; };
    const Row rows[] = {
        {"127.0.0.1:3479", "corp.example"}, {"127.0.0.1:5349", "corp.example"}, {"127.0.0.1:3478", "main"},
        {"[::1]:3478", "main"},            {"[::1]:3479", "main"},            {"192.0.2.1:3479", "main"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.local);
        const Realm* realm = cfg->realm_for_listener(*Endpoint::parse(row.local));
        REQUIRE(realm != nullptr);
        CHECK(realm->name == row.realm);
    }
    CHECK(strings(cfg->find_realm("corp.example")->listen) ==
          std::vector<std::string>{"127.0.0.1:3479", "127.0.0.1:5349"});
    CHECK(cfg->find_realm("corp.example")->users.at("b") == "2");
    CHECK(cfg->find_realm("nowhere") == nullptr);
}

TEST_CASE("relay_ip returns the relay address of the family asked for") {
    auto both = accepted(with_server(R"(relay_ips = ["2001:db8::7", "192.0.2.7"])"));
    REQUIRE(both);
    REQUIRE(both->relay_ip(Family::V4));
    CHECK(both->relay_ip(Family::V4)->to_string() == "192.0.2.7");
    REQUIRE(both->relay_ip(Family::V6));
    CHECK(both->relay_ip(Family::V6)->to_string() == "2001:db8::7");
    auto v4 = accepted(with_server(R"(relay_ips = ["192.0.2.7"])"));
    REQUIRE(v4);
    CHECK_FALSE(v4->relay_ip(Family::V6));
}

TEST_CASE("A TOML syntax error reports its line") {
    auto r = load_string("[server]\nlisten = [\"127.0.0.1:3478\"]\nthreads = = 4\n", kPath);
    const auto* e = std::get_if<ConfigError>(&r);
    REQUIRE(e != nullptr);
    CHECK(e->file == kPath);
    CHECK(e->line == 3);
    CHECK(e->key.empty());
    CHECK(e->message.find("TOML syntax error") == 0);
    // A key defined twice is a syntax error too (TOML 1.0 §Keys).
    auto twice = load_string(with_server("threads = 1\nthreads = 2"), kPath);
    REQUIRE(std::holds_alternative<ConfigError>(twice));
    CHECK(std::get<ConfigError>(twice).line == 4);
}

TEST_CASE("ConfigError::to_string reads FILE:LINE: KEY: MESSAGE, dropping what is unknown") {
    CHECK(ConfigError{"/a.toml", 7, "server.threads", "expected x"}.to_string() ==
          "/a.toml:7: server.threads: expected x");
    CHECK(ConfigError{"/a.toml", 0, "realm", "expected y"}.to_string() == "/a.toml: realm: expected y");
    CHECK(ConfigError{"/a.toml", 3, "", "TOML syntax error: z"}.to_string() == "/a.toml:3: TOML syntax error: z");
}

TEST_CASE("load_file reports a file it cannot read") {
    for (const char* path : {"/nonexistent/turnbridge.toml", "/"}) {
        CAPTURE(path);
        auto r = load_file(path);
        const auto* e = std::get_if<ConfigError>(&r);
        REQUIRE(e != nullptr);
        CHECK(e->file == path);
        CHECK(e->line == 0);
        CHECK(e->message.find("cannot") == 0);
    }
}

TEST_CASE("Wrong value types are rejected, naming the expected type") {
    check_rejected({
        {"listen not an array", "[server]\nlisten = \"127.0.0.1:3478\"\n", "server.listen", 2, "expected an array, got a string"},
        {"listen element not a string", with_server("tls_listen = [5349]"), "server.tls_listen[0]", 3, "expected a string, got an integer"},
        {"threads as string", with_server("threads = \"4\""), "server.threads", 3, "expected an integer from 0 to 256, got a string"},
        {"threads as float", with_server("threads = 4.0"), "server.threads", 3, "got a float"},
        {"software as boolean", with_server("software = false"), "server.software", 3, "expected a string, got a boolean"},
        {"relay_ports as integer", with_server("relay_ports = 50000"), "server.relay_ports", 3, "expected a string"},
        {"server as a value", "server = 1\n", "server", 1, "expected a table, got an integer"},
        {"security as an array", with_server("[[security]]"), "security", 3, "expected a table, got an array"},
        {"realm as a string", "realm = \"x\"\n[server]\nlisten = [\"127.0.0.1:3478\"]\n", "realm", 1, "expected a table, got a string"},
        {"realm entry not a table", "[server]\nlisten = [\"127.0.0.1:3478\"]\n[realm]\nmain = \"x\"\n", "realm.main", 4, "expected a table, got a string"},
        {"users not a table", "[server]\nlisten = [\"127.0.0.1:3478\"]\n[realm.\"example.org\"]\nusers = [\"a\"]\n", "realm.\"example.org\".users", 4, "expected a table, got an array"},
        {"password not a string", "[server]\nlisten = [\"127.0.0.1:3478\"]\n[realm.\"example.org\"]\nusers = { test = 1234 }\n", "realm.\"example.org\".users.test", 4, "expected a string, got an integer"},
        {"realm limit as string", "[server]\nlisten = [\"127.0.0.1:3478\"]\n[realm.\"example.org\"]\nrest_secret = \"s\"\nmax_allocations_per_user = \"5\"\n", "realm.\"example.org\".max_allocations_per_user", 5, "expected an integer"},
        {"peers as string", with_server("[security]\nallowed_peers = \"10.0.0.0/8\""), "security.allowed_peers", 4, "expected an array"},
    });
}

TEST_CASE("Unknown keys and tables are rejected anywhere, suggesting the closest key") {
    check_rejected({
        {"typo in server", with_server("\nrelay_port = \"50000-50100\""), "server.relay_port", 4, "did you mean \"relay_ports\"?"},
        {"unknown top-level table", with_server("") + "[sever]\nthreads = 1\n", "sever", 6, "did you mean \"server\"?"},
        {"unknown top-level key", "listen = [\"127.0.0.1:3478\"]\n", "listen", 1, "expected one of: server, security, realm"},
        {"unknown in security", with_server("[security]\nallow_peers = []"), "security.allow_peers", 4, "did you mean \"allowed_peers\"?"},
        {"unknown in realm", "[server]\nlisten = [\"127.0.0.1:3478\"]\n[realm.\"example.org\"]\nuser = { a = \"b\" }\n", "realm.\"example.org\".user", 4, "did you mean \"users\"?"},
        {"subtable in server", with_server("[server.tls]\ncert = \"x\""), "server.tls", 3, "unknown key"},
    });
}

TEST_CASE("Listener, relay and peer addresses must parse") {
    check_rejected({
        {"listen without port", with_server("tls_listen = [\"127.0.0.1\"]"), "server.tls_listen[0]", 3, "expected an address with a port"},
        {"listen v6 without brackets", "[server]\nlisten = [\"127.0.0.1:3478\",\n  \"::1:3478\"]\n", "server.listen[1]", 3, "like \"127.0.0.1:3478\" or \"[::1]:3478\""},
        {"listen host name", "[server]\nlisten = [\"localhost:3478\"]\n", "server.listen[0]", 2, "expected an address with a port"},
        {"listen port 0", "[server]\nlisten = [\"127.0.0.1:0\"]\n", "server.listen[0]", 2, "expected a port from 1 to 65535"},
        {"relay ip with port", with_server("relay_ips = [\"127.0.0.1:1\"]"), "server.relay_ips[0]", 3, "expected an IP address"},
        {"relay ip bracketed", with_server("relay_ips = [\"[::1]\"]"), "server.relay_ips[0]", 3, "expected an IP address"},
        {"bad CIDR prefix", with_server("[security]\nallowed_peers = [\"10.0.0.0/8\", \"10.0.0.0/33\"]"), "security.allowed_peers[1]", 4, "expected an address or CIDR"},
        {"bad CIDR text", with_server("[security]\ndenied_peers = [\"10.0.0.0/x\"]"), "security.denied_peers[0]", 4, "expected an address or CIDR"},
        {"realm listen garbage", "[server]\nlisten = [\"127.0.0.1:3478\"]\n[realm.\"example.org\"]\nrest_secret = \"s\"\nlisten = [\"nope\"]\n", "realm.\"example.org\".listen[0]", 5, "expected an address with a port"},
    });
}

TEST_CASE("relay_ports is MIN-MAX with 1024 <= MIN <= MAX <= 65535") {
    check_rejected({
        {"min above max", with_server("relay_ports = \"50001-50000\""), "server.relay_ports", 3, "50001 is above 50000"},
        {"privileged min", with_server("relay_ports = \"1023-2000\""), "server.relay_ports", 3, "1023 is below 1024"},
        {"max not a port", with_server("relay_ports = \"50000-65536\""), "server.relay_ports", 3, "expected \"MIN-MAX\""},
        {"single port", with_server("relay_ports = \"50000\""), "server.relay_ports", 3, "expected \"MIN-MAX\""},
        {"spaces", with_server("relay_ports = \"50000 - 50010\""), "server.relay_ports", 3, "expected \"MIN-MAX\""},
        {"signed", with_server("relay_ports = \"+5000-6000\""), "server.relay_ports", 3, "expected \"MIN-MAX\""},
        {"three parts", with_server("relay_ports = \"5000-6000-7000\""), "server.relay_ports", 3, "expected \"MIN-MAX\""},
        {"empty", with_server("relay_ports = \"\""), "server.relay_ports", 3, "expected \"MIN-MAX\""},
    });
    // The edges are accepted, including a range inside Linux's ephemeral range.
    for (const char* ok : {"1024-1024", "65535-65535", "32768-60999"}) {
        CAPTURE(ok);
        CHECK(accepted(with_server(std::string("relay_ports = \"") + ok + "\"")) != nullptr);
    }
}

TEST_CASE("relay_ips hold at most one specific address per family") {
    check_rejected({
        {"two IPv4", with_server("relay_ips = [\"192.0.2.1\", \"::1\",\n  \"192.0.2.2\"]"), "server.relay_ips[2]", 4, "expected at most one IPv4 relay address (server.relay_ips[0]"},
        {"two IPv6", with_server("relay_ips = [\"::1\", \"2001:db8::1\"]"), "server.relay_ips[1]", 3, "at most one IPv6"},
        {"IPv4 wildcard", with_server("relay_ips = [\"0.0.0.0\"]"), "server.relay_ips[0]", 3, "expected a specific address; 0.0.0.0 is unspecified"},
        {"IPv6 wildcard", with_server("relay_ips = [\"::\"]"), "server.relay_ips[0]", 3, "is unspecified"},
    });
}

TEST_CASE("external_ip is a specific IPv4 address standing in for the IPv4 relay address") {
    check_rejected({
        {"IPv6", with_server("relay_ips = [\"10.0.0.5\"]\nexternal_ip = \"2001:db8::1\""), "server.external_ip", 4, "expected an IPv4 address"},
        {"wildcard", with_server("relay_ips = [\"10.0.0.5\"]\nexternal_ip = \"0.0.0.0\""), "server.external_ip", 4, "is unspecified"},
        {"garbage", with_server("relay_ips = [\"10.0.0.5\"]\nexternal_ip = \"example.com\""), "server.external_ip", 4, "expected an IP address"},
        {"no IPv4 relay", with_server("relay_ips = [\"::1\"]\nexternal_ip = \"203.0.113.1\""), "server.external_ip", 4, "IPv4 address in server.relay_ips"},
    });
    auto cfg = accepted(with_server("external_ip = \"\""));
    REQUIRE(cfg);
    CHECK_FALSE(cfg->external_ip);
}

TEST_CASE("default_realm names a [realm.X] table, and at least one realm exists") {
    check_rejected({
        {"no realm table for default", "[server]\nlisten = [\"127.0.0.1:3478\"]\ndefault_realm = \"main\"\n[realm.other]\nrest_secret = \"s\"\n", "server.default_realm", 3, "there is no [realm.main]"},
        {"default left at example.org", "[server]\nlisten = [\"127.0.0.1:3478\"]\n[realm.other]\nrest_secret = \"s\"\n", "server.default_realm", 0, "there is no [realm.\"example.org\"]"},
        {"no realms at all", "[server]\nlisten = [\"127.0.0.1:3478\"]\n", "realm", 0, "expected at least one [realm.\"NAME\"] table"},
        {"empty default_realm", with_server("default_realm = \"\""), "server.default_realm", 3, "expected a realm name"},
        {"empty realm name", with_server("") + "[realm.\"\"]\nrest_secret = \"s\"\n", "realm.\"\"", 6, "expected a realm name"},
        {"realm name too long (RFC 8489 §14.9)", with_server("") + "[realm." + std::string(128, 'r') + "]\nrest_secret = \"s\"\n", "realm." + std::string(128, 'r'), 6, "at most 127 characters"},
    });
}

TEST_CASE("Lifetimes are positive and max_lifetime is at least default_lifetime") {
    check_rejected({
        {"zero default", with_server("default_lifetime = 0"), "server.default_lifetime", 3, "expected an integer from 1 to 4294967295, got 0"},
        {"negative nonce", with_server("nonce_lifetime = -5"), "server.nonce_lifetime", 3, "got -5"},
        {"beyond 32 bits", with_server("max_lifetime = 4294967296"), "server.max_lifetime", 3, "from 1 to 4294967295"},
        {"max below default", with_server("default_lifetime = 600\nmax_lifetime = 599"), "server.max_lifetime", 4, "expected at least server.default_lifetime (600 s), got 599 s"},
        {"default above the default max", with_server("default_lifetime = 7200"), "server.default_lifetime", 3, "expected at most server.max_lifetime (3600 s)"},
    });
    CHECK(accepted(with_server("default_lifetime = 900\nmax_lifetime = 900")) != nullptr);
}

TEST_CASE("threads is 0 to 256 and the limits fit 32 bits") {
    check_rejected({
        {"threads 257", with_server("threads = 257"), "server.threads", 3, "expected an integer from 0 to 256, got 257"},
        {"threads -1", with_server("threads = -1"), "server.threads", 3, "got -1"},
        {"negative max_allocations", with_server("max_allocations = -1"), "server.max_allocations", 3, "from 0 to 4294967295"},
        {"huge per-user limit", with_server("max_allocations_per_user = 4294967296"), "server.max_allocations_per_user", 3, "from 0 to 4294967295"},
        {"channels past the number space", with_server("max_channels_per_allocation = 4097"), "server.max_channels_per_allocation", 3, "from 0 to 4096"},
        {"negative permissions", with_server("max_permissions_per_allocation = -1"), "server.max_permissions_per_allocation", 3, "from 0 to 100000"},
    });
    auto cfg = accepted(with_server("threads = 256\nmax_allocations = 4294967295"));
    REQUIRE(cfg);
    CHECK(cfg->threads == 256);
    CHECK(cfg->max_allocations == 4294967295u);
}

TEST_CASE("security.unauthenticated_rate is 0 (unlimited) to 1000000, unauthenticated_burst 1 to 1000000") {
    // Line 3 is [security], line 4 the key.
    auto security = [](const std::string& lines) {
        return "[server]\nlisten = [\"127.0.0.1:3478\"]\n[security]\n" + lines +
               "\n[realm.\"example.org\"]\nusers = { test = \"secret\" }\n";
    };
    check_rejected({
        {"negative rate", security("unauthenticated_rate = -1"), "security.unauthenticated_rate", 4, "expected an integer from 0 to 1000000, got -1"},
        {"huge rate", security("unauthenticated_rate = 1000001"), "security.unauthenticated_rate", 4, "from 0 to 1000000"},
        {"zero burst", security("unauthenticated_burst = 0"), "security.unauthenticated_burst", 4, "expected an integer from 1 to 1000000, got 0"},
        {"negative auth failures", security("auth_failures_per_minute = -1"), "security.auth_failures_per_minute", 4, "expected an integer from 0 to 100000, got -1"},
        {"rate as string", security("unauthenticated_rate = \"50\""), "security.unauthenticated_rate", 4, "expected an integer"},
        {"misspelt key", security("unauthenticated_rates = 5"), "security.unauthenticated_rates", 4, "unauthenticated_rate"},
    });
    auto cfg = accepted(security("unauthenticated_rate = 0\nunauthenticated_burst = 1000000"));
    REQUIRE(cfg);
    CHECK(cfg->unauthenticated_rate == 0);
    CHECK(cfg->unauthenticated_burst == 1000000);
    cfg = accepted(security("unauthenticated_rate = 200\nunauthenticated_burst = 1"));
    REQUIRE(cfg);
    CHECK(cfg->unauthenticated_rate == 200);
    CHECK(cfg->unauthenticated_burst == 1);
}

TEST_CASE("tls_listen requires tls_cert and tls_key, whose files the loader does not open") {
    check_rejected({
        {"no cert", with_server("\ntls_listen = [\"127.0.0.1:5349\"]\ntls_key = \"k.pem\""), "server.tls_cert", 4, "expected a certificate path"},
        {"no key", with_server("tls_listen = [\"127.0.0.1:5349\"]\ntls_cert = \"c.pem\""), "server.tls_key", 3, "expected a private key path"},
        {"empty cert", with_server("tls_listen = [\"127.0.0.1:5349\"]\ntls_cert = \"\"\ntls_key = \"k.pem\""), "server.tls_cert", 3, "expected a certificate path"},
    });
    auto cfg = accepted(with_server("tls_listen = [\"127.0.0.1:5349\"]\ntls_cert = \"/no/such/c.pem\"\ntls_key = \"/no/such/k.pem\""));
    REQUIRE(cfg);
    CHECK(cfg->tls_cert == "/no/such/c.pem");
}

TEST_CASE("At least one of listen and tls_listen is required") {
    check_rejected({
        {"no server table", "[realm.\"example.org\"]\nrest_secret = \"s\"\n", "server.listen", 0, "expected at least one listener"},
        {"both empty", "[server]\nlisten = []\ntls_listen = []\n[realm.\"example.org\"]\nrest_secret = \"s\"\n", "server.listen", 2, "expected at least one listener"},
    });
    auto tls_only = accepted("[server]\ntls_listen = [\"127.0.0.1:5349\"]\ntls_cert = \"c\"\ntls_key = \"k\"\n"
                             "[realm.\"example.org\"]\nrest_secret = \"s\"\n");
    REQUIRE(tls_only);
    CHECK(tls_only->listen.empty());
}

TEST_CASE("Duplicate listeners are rejected, also across listen and tls_listen") {
    check_rejected({
        {"twice in listen", "[server]\nlisten = [\"127.0.0.1:3478\",\n  \"127.0.0.1:3478\"]\n", "server.listen[1]", 3, "duplicate listener 127.0.0.1:3478 (already in server.listen[0])"},
        {"same IPv6 spelled differently", "[server]\nlisten = [\"[::1]:3478\", \"[0:0::1]:3478\"]\n", "server.listen[1]", 2, "duplicate listener [::1]:3478"},
        {"listen and tls_listen", with_server("tls_listen = [\"127.0.0.1:3478\"]"), "server.tls_listen[0]", 3, "already in server.listen[0]"},
    });
}

TEST_CASE("realm.X.listen names server listeners, each claimed by one realm") {
    const std::string head = "[server]\nlisten = [\"127.0.0.1:3478\", \"127.0.0.1:3479\"]\n";
    check_rejected({
        {"not a server listener", head + "[realm.\"example.org\"]\nrest_secret = \"s\"\nlisten = [\"127.0.0.1:3480\"]\n", "realm.\"example.org\".listen[0]", 5, "expected one of server.listen or server.tls_listen; 127.0.0.1:3480 is neither"},
        {"claimed twice in one realm", head + "[realm.\"example.org\"]\nrest_secret = \"s\"\nlisten = [\"127.0.0.1:3479\", \"127.0.0.1:3479\"]\n", "realm.\"example.org\".listen[1]", 5, "already belongs to realm.\"example.org\".listen[0]"},
        {"claimed by two realms", head + "[realm.\"example.org\"]\nrest_secret = \"s\"\nlisten = [\"127.0.0.1:3479\"]\n[realm.b]\nrest_secret = \"s\"\nlisten = [\"127.0.0.1:3479\"]\n", "realm.b.listen[0]", 8, "already belongs to realm.\"example.org\".listen[0]"},
    });
}

TEST_CASE("Users have non-empty string passwords, and a realm has some credential") {
    const std::string head = "[server]\nlisten = [\"127.0.0.1:3478\"]\n[realm.\"example.org\"]\n";
    check_rejected({
        {"empty password", head + "users = { ok = \"x\", test = \"\" }\n", "realm.\"example.org\".users.test", 4, "expected a password, got an empty string"},
        {"empty password, table form", head + "rest_secret = \"s\"\n[realm.\"example.org\".users]\nalice = \"a\"\n\"bob smith\" = \"\"\n", "realm.\"example.org\".users.\"bob smith\"", 7, "expected a password"},
        {"empty user name", head + "users = { \"\" = \"x\" }\n", "realm.\"example.org\".users.\"\"", 4, "expected a user name of 1 to 508 bytes"},
        {"user name too long (RFC 8489 §14.3)", head + "users = { " + std::string(509, 'u') + " = \"x\" }\n", "realm.\"example.org\".users." + std::string(509, 'u'), 4, "1 to 508 bytes"},
        {"no credential", head + "users = {}\nrest_secret = \"\"\n", "realm.\"example.org\"", 3, "expected users or rest_secret"},
        {"rest_secret not a string", head + "rest_secret = 42\n", "realm.\"example.org\".rest_secret", 4, "expected a string"},
    });
    auto cfg = accepted(head + "rest_secret = \"only-rest\"\n");
    REQUIRE(cfg);
    CHECK(cfg->realms.at("example.org").users.empty());
    CHECK(cfg->realms.at("example.org").rest_secret == "only-rest");
}

TEST_CASE("log_level is one of debug, info, warn, error; software stays under 128 characters") {
    check_rejected({
        {"warning", with_server("log_level = \"warning\""), "server.log_level", 3, "expected one of \"debug\", \"info\", \"warn\", \"error\", got \"warning\""},
        {"upper case", with_server("log_level = \"INFO\""), "server.log_level", 3, "got \"INFO\""},
        {"software 128 chars (RFC 8489 §14.14)", with_server("software = \"" + std::string(128, 's') + "\""), "server.software", 3, "expected at most 127 characters, got 128"},
    });
    for (const char* level : {"debug", "info", "warn", "error"}) {
        CAPTURE(level);
        auto cfg = accepted(with_server(std::string("log_level = \"") + level + "\""));
        REQUIRE(cfg);
        CHECK(cfg->log_level == level);
    }
    // Characters, not bytes: 127 two-byte characters fit.
    std::string s;
    for (int i = 0; i < 127; ++i) s += "\xC3\xA9";
    CHECK(accepted(with_server("software = \"" + s + "\"")) != nullptr);
}

TEST_CASE("control characters in the file are an error with their line, not a parser crash (fuzz regression)") {
    const std::string text("[server]\nlisten = [\"127.0.0.1:3478\"]\n[\x01\0\0\0\0\0\0\x0fserver\nlisten=", 60);
    auto r = turnbridge::config::load_string(text, "/tmp/ctl.toml");
    auto* e = std::get_if<turnbridge::config::ConfigError>(&r);
    REQUIRE(e != nullptr);
    CHECK(e->line == 3);
    CHECK(e->message.find("control character 0x01") != std::string::npos);
}

TEST_CASE("a table header broken by a newline is a syntax error on its line (fuzz regression)") {
    auto r = turnbridge::config::load_string("[\nlisten = [\"127.0.0.1:1\"]\n", "/tmp/hdr.toml");
    auto* e = std::get_if<turnbridge::config::ConfigError>(&r);
    REQUIRE(e != nullptr);
    CHECK(e->line == 1);
    CHECK(e->message.find("TOML syntax error") != std::string::npos);
}

TEST_CASE("non-ASCII text is fine in strings and comments, a syntax error elsewhere (fuzz regression)") {
    const std::string good =
        "# caf\xc3\xa9 \xe3\x80\x81 comment\n[server]\nlisten = [\"127.0.0.1:3478\"]\nsoftware = \"t\xc3\xbcrn\"\n"
        "[realm.\"example.org\"]\nusers = { test = \"p\xc3\xa4ss\" }\n";
    auto ok = turnbridge::config::load_string(good, "/tmp/u.toml");
    REQUIRE(std::holds_alternative<std::shared_ptr<const turnbridge::config::Config>>(ok));
    CHECK(std::get<0>(ok)->realms.at("example.org").users.at("test") == "p\xc3\xa4ss");
    // U+3001 and U+0417 outside a string took toml++ 3.3 into __builtin_unreachable.
    for (const char* bad : {"[server]\nlisten = [\"127.0.0.1:3478\"]\xe3\x80\x81\n",
                            "[server]\nlisten = [0\"1rpppp\xd0\x97list"}) {
        CAPTURE(bad);
        auto r = turnbridge::config::load_string(bad, "/tmp/u.toml");
        auto* e = std::get_if<turnbridge::config::ConfigError>(&r);
        REQUIRE(e != nullptr);
        CHECK(e->line == 2);
        CHECK(e->message.find("TOML syntax error") != std::string::npos);
    }
}

TEST_CASE("relay_sharing and relay_shared_ports: defaults, values, and checks naming the key") {
    auto off = accepted(with_server(""));
    REQUIRE(off);
    CHECK_FALSE(off->relay_sharing);
    CHECK(off->relay_shared_ports == 4);
    auto on = accepted(with_server("relay_ports = \"50000-50019\"\nrelay_sharing = true\nrelay_shared_ports = 20"));
    REQUIRE(on);
    CHECK(on->relay_sharing);
    CHECK(on->relay_shared_ports == 20);
    // relay_shared_ports alone is kept for a later relay_sharing = true and checked for range only.
    auto kept = accepted(with_server("relay_ports = \"50000-50001\"\nrelay_shared_ports = 8"));
    REQUIRE(kept);
    CHECK_FALSE(kept->relay_sharing);
    check_rejected({
        {"sharing as string", with_server("relay_sharing = \"yes\""), "server.relay_sharing", 3, "expected true or false, got a string"},
        {"zero shared ports", with_server("relay_shared_ports = 0"), "server.relay_shared_ports", 3, "expected an integer from 1 to 1024, got 0"},
        {"too many shared ports", with_server("relay_shared_ports = 1025"), "server.relay_shared_ports", 3, "from 1 to 1024"},
        {"shared ports as string", with_server("relay_shared_ports = \"4\""), "server.relay_shared_ports", 3, "expected an integer"},
        {"more shared ports than relay_ports", with_server("relay_ports = \"50000-50009\"\nrelay_sharing = true\nrelay_shared_ports = 11"),
         "server.relay_shared_ports", 5, "expected at most the 10 ports of server.relay_ports (50000-50009)"},
        {"default shared ports above a tiny range", with_server("relay_ports = \"50000-50002\"\nrelay_sharing = true"),
         "server.relay_sharing", 4, "expected at most the 3 ports of server.relay_ports"},
    });
}

TEST_SUITE_END();
