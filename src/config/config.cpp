// SPDX-License-Identifier: Apache-2.0
// Loads turnbridge.toml into an immutable Config. Every rejected value names its file, line
// and dotted key (see turnbridge.toml(5) for the keys and their rules).
#include "turnbridge/config/config.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>

#include "gateway_config.hpp"
#include "secret_files.hpp"
#include "fleet_config.hpp"
#include "streams_config.hpp"
#include "toml_reader.hpp"

namespace turnbridge::config {
namespace {

using detail::Failure;
using detail::Field;
using detail::Reader;
namespace fs = std::filesystem;

constexpr std::int64_t kU32Max = std::numeric_limits<std::uint32_t>::max();
constexpr std::int64_t kMaxThreads = 256;
constexpr std::int64_t kMaxSharedPorts = 1024;  // server.relay_shared_ports, per worker and address
// Answers per second (or per burst) to one source: beyond this a limit means nothing.
constexpr std::int64_t kMaxUnauthenticatedRate = 1000000;
// Bounds of the gateway's SIP tables and rates (server.sip_*): large enough for any real server.
constexpr std::int64_t kMaxSipBound = 10000000;
constexpr std::int64_t kMaxAuthFailuresPerMinute = 100000;
constexpr std::int64_t kMaxPermissions = 100000;
constexpr std::uint16_t kMinRelayPort = 1024;  // below are privileged, well-known service ports
constexpr std::size_t kMaxTextChars = 127;     // RFC 8489 §14.9 REALM, §14.14 SOFTWARE: < 128 characters
constexpr std::size_t kMaxUsernameBytes = 508;  // RFC 8489 §14.3: USERNAME < 509 bytes
constexpr std::int64_t kI64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMaxFlushInterval = 3600;
constexpr const char* kDefaultDatabase = "turnbridge.db";

std::size_t utf8_chars(std::string_view s) {
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

// Digits only (no sign, no spaces), at most 65535.
std::optional<std::uint16_t> port_number(std::string_view s) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
}

std::string_view family_name(Family f) { return f == Family::V4 ? "IPv4" : "IPv6"; }


// ISO 4217 style: three upper-case ASCII letters.
bool is_currency_code(std::string_view s) {
    return s.size() == 3 && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// A listener already seen, so duplicates and realm.X.listen can name the first occurrence.
struct Listener {
    Endpoint ep;
    std::string key;
    std::string realm;  // the realm.X.listen that claimed it, if any
};

class Loader {
public:
    Loader(const Reader& r, Config& cfg) : r_(r), cfg_(cfg) {}

    void load(const toml::table& root) {
        r_.only_keys(root, "", {"server", "security", "realm", "accounting", "admin", "streams", "fleet"});
        cfg_.accounting.database = cfg_.file.parent_path() / kDefaultDatabase;
        if (auto f = r_.get(root, "", "server")) load_server(*f);
        if (auto f = r_.get(root, "", "security")) load_security(*f);
        check_server();
        if (auto f = r_.get(root, "", "realm")) load_realms(*f);
        check_default_realm();
        check_gateway();
        if (auto f = r_.get(root, "", "accounting")) load_accounting(*f);
        if (auto f = r_.get(root, "", "admin")) load_admin(*f);
        if (auto f = r_.get(root, "", "streams")) cfg_.streams = load_streams(r_, *f);
        if (auto f = r_.get(root, "", "fleet")) {
            cfg_.fleet = load_fleet(r_, *f);
            // The outbox is the accounting database: a fleet node keeps accounting on.
            if (!cfg_.accounting.enabled)
                r_.fail(f->line(), "fleet.database", "[fleet] needs accounting (remove [accounting] enabled = false)");
        }
    }

private:
    void load_server(const Field& server);
    void load_lifetimes(const toml::table& t);
    void load_sip_limits(const toml::table& t);
    void load_process(const toml::table& t);
    void load_relay(const toml::table& t);
    void load_security(const Field& security);
    void load_realms(const Field& realms);
    Realm load_realm(const Field& f);
    void load_realm_accounting(const toml::table& t, const std::string& path, Realm& realm) const;
    void load_accounting(const Field& accounting);
    void load_admin(const Field& admin);
    void check_server() const;
    void check_default_realm() const;
    void check_gateway() const;
    // "MIN-MAX" with kMinRelayPort <= MIN <= MAX (server.relay_ports, server.media_ports).
    std::pair<std::uint16_t, std::uint16_t> port_range(const Field& f) const;

    std::vector<Endpoint> listeners(const Field& f);
    std::vector<Endpoint> claim_listeners(const Field& f);
    IpAddress ip(const Field& f) const;
    std::vector<Cidr> cidrs(const Field& f) const;
    std::string text(const Field& f, std::size_t max_chars) const;
    fs::path path(const Field& f) const;

    const Reader& r_;
    Config& cfg_;
    std::vector<Listener> seen_;
    int listen_line_ = 0, tls_listen_line_ = 0, default_realm_line_ = 0;
    int wss_listen_line_ = 0, media_ports_line_ = 0;
    std::string first_gateway_;  // realm.X.gateway key of the first enabled one, for messages
};

std::vector<Endpoint> Loader::listeners(const Field& f) {
    std::vector<Endpoint> out;
    for (const auto& e : r_.as_array(f)) {
        auto ep = Endpoint::parse(r_.as_string(e));
        if (!ep) r_.fail(e, R"(expected an address with a port, like "127.0.0.1:3478" or "[::1]:3478")");
        if (ep->port == 0) r_.fail(e, "expected a port from 1 to 65535, got 0");
        // listen binds UDP and TCP, tls_listen binds TCP: the same endpoint twice cannot bind.
        for (const auto& s : seen_)
            if (s.ep == *ep) r_.fail(e, fmt::format("duplicate listener {} (already in {})", ep->to_string(), s.key));
        seen_.push_back(Listener{*ep, e.key, {}});
        out.push_back(*ep);
    }
    return out;
}

IpAddress Loader::ip(const Field& f) const {
    auto ip = IpAddress::parse(r_.as_string(f));
    if (!ip) r_.fail(f, R"(expected an IP address without port or brackets, like "192.0.2.1" or "2001:db8::1")");
    if (ip->is_unspecified())
        r_.fail(f, fmt::format("expected a specific address; {} is unspecified (the wildcard)", ip->to_string()));
    return *ip;
}

std::vector<Cidr> Loader::cidrs(const Field& f) const { return load_cidrs(r_, f); }

std::string Loader::text(const Field& f, std::size_t max_chars) const {
    std::string s = r_.as_string(f);
    if (utf8_chars(s) > max_chars)
        r_.fail(f, fmt::format("expected at most {} characters, got {}", max_chars, utf8_chars(s)));
    return s;
}

fs::path Loader::path(const Field& f) const {
    const fs::path p = r_.as_string(f);
    if (p.empty()) return p;
    // Relative to the config file's directory, so the service works from any cwd.
    return (p.is_absolute() ? p : cfg_.file.parent_path() / p).lexically_normal();
}

void Loader::load_server(const Field& server) {
    const auto& t = r_.as_table(server);
    r_.only_keys(t, "server",
                 {"listen", "tls_listen", "tls_cert", "tls_key", "relay_ips", "external_ip", "relay_ports",
                  "relay_sharing", "relay_shared_ports",
                  "default_realm", "threads", "software", "default_lifetime", "max_lifetime", "nonce_lifetime",
                  "max_allocations", "max_allocations_per_user", "max_permissions_per_allocation",
                  "max_channels_per_allocation", "log_level", "ws_listen", "wss_listen",
                  "sip_listen", "media_ip", "media_ports",
                  "sip_hide_from_strangers", "sip_requests_per_second", "sip_requests_burst", "sip_udp_flows",
                  "sip_transactions", "sip_registrations", "sip_registrations_per_user", "user", "group",
                  "allow_root", "log_format", "dns_servers"});
    auto get = [&](std::string_view key) { return r_.get(t, "server", key); };
    load_process(t);
    if (auto f = get("listen")) listen_line_ = f->line(), cfg_.listen = listeners(*f);
    if (auto f = get("tls_listen")) tls_listen_line_ = f->line(), cfg_.tls_listen = listeners(*f);
    // SIP over WebSocket is TCP; sip_listen binds UDP and TCP, like listen.
    if (auto f = get("ws_listen")) cfg_.ws_listen = listeners(*f);
    if (auto f = get("wss_listen")) wss_listen_line_ = f->line(), cfg_.wss_listen = listeners(*f);
    if (auto f = get("sip_listen")) cfg_.sip_listen = listeners(*f);
    if (auto f = get("media_ip")) cfg_.media_ip = ip(*f);
    if (auto f = get("dns_servers")) cfg_.dns_servers = load_dns_servers(r_, *f);
    if (auto f = get("media_ports")) {
        media_ports_line_ = f->line();
        std::tie(cfg_.media_port_min, cfg_.media_port_max) = port_range(*f);
    }
    load_sip_limits(t);
    if (auto f = get("tls_cert")) cfg_.tls_cert = path(*f);
    if (auto f = get("tls_key")) cfg_.tls_key = path(*f);
    load_relay(t);
    if (auto f = get("default_realm")) {
        default_realm_line_ = f->line();
        cfg_.default_realm = text(*f, kMaxTextChars);
        if (cfg_.default_realm.empty()) r_.fail(*f, "expected a realm name, got an empty string");
    }
    if (auto f = get("threads")) cfg_.threads = static_cast<unsigned>(r_.as_integer(*f, 0, kMaxThreads));
    if (auto f = get("software")) cfg_.software = text(*f, kMaxTextChars);
    load_lifetimes(t);
    if (auto f = get("max_allocations")) cfg_.max_allocations = static_cast<std::uint32_t>(r_.as_integer(*f, 0, kU32Max));
    if (auto f = get("max_allocations_per_user"))
        cfg_.max_allocations_per_user = static_cast<std::uint32_t>(r_.as_integer(*f, 0, kU32Max));
    if (auto f = get("max_permissions_per_allocation"))
        cfg_.max_permissions_per_allocation = static_cast<std::uint32_t>(r_.as_integer(*f, 0, kMaxPermissions));
    // RFC 8656 §12: there are only 0x4000-0x4FFF channel numbers.
    if (auto f = get("max_channels_per_allocation"))
        cfg_.max_channels_per_allocation = static_cast<std::uint32_t>(r_.as_integer(*f, 0, 0x1000));
    if (auto f = get("log_level")) {
        cfg_.log_level = r_.as_string(*f);
        const std::string_view levels[] = {"debug", "info", "warn", "error"};
        if (std::find(std::begin(levels), std::end(levels), cfg_.log_level) == std::end(levels))
            r_.fail(*f, fmt::format(R"(expected one of "debug", "info", "warn", "error", got "{}")", cfg_.log_level));
    }
}

// The account to run as (app/privileges.hpp resolves the names, at start and in check-config).
void Loader::load_process(const toml::table& t) {
    auto name = [&](const Field& f) {
        std::string v = r_.as_string(f);
        const bool ok = !v.empty() && v.size() <= 32 && v[0] != '-' &&
                        std::all_of(v.begin(), v.end(), [](char c) {
                            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                   c == '_' || c == '-' || c == '.';
                        });
        if (!ok) r_.fail(f, fmt::format(R"(expected a user or group name like "turnbridge", got "{}")", v));
        return v;
    };
    if (auto f = r_.get(t, "server", "user")) cfg_.user = name(*f);
    if (auto f = r_.get(t, "server", "group")) {
        cfg_.group = name(*f);
        if (cfg_.user.empty()) r_.fail(*f, "needs server.user: the group is set when switching to that user");
    }
    if (auto f = r_.get(t, "server", "allow_root")) cfg_.allow_root = r_.as_bool(*f);
    if (auto f = r_.get(t, "server", "log_format")) {
        cfg_.log_format = r_.as_string(*f);
        if (cfg_.log_format != "text" && cfg_.log_format != "json")
            r_.fail(*f, fmt::format(R"(expected "text" or "json", got "{}")", cfg_.log_format));
    }
}

void Loader::load_sip_limits(const toml::table& t) {
    auto count = [&](std::string_view key, std::uint32_t& out, std::int64_t min) {
        if (auto f = r_.get(t, "server", key)) out = static_cast<std::uint32_t>(r_.as_integer(*f, min, kMaxSipBound));
    };
    if (auto f = r_.get(t, "server", "sip_hide_from_strangers")) cfg_.sip_hide_from_strangers = r_.as_bool(*f);
    count("sip_requests_per_second", cfg_.sip_requests_per_second, 0);
    count("sip_requests_burst", cfg_.sip_requests_burst, 1);
    count("sip_udp_flows", cfg_.sip_udp_flows, 16);
    count("sip_transactions", cfg_.sip_transactions, 16);
    count("sip_registrations", cfg_.sip_registrations, 1);
    count("sip_registrations_per_user", cfg_.sip_registrations_per_user, 1);
}

void Loader::load_lifetimes(const toml::table& t) {
    auto seconds = [&](std::string_view key, std::chrono::seconds& out) -> std::optional<Field> {
        auto f = r_.get(t, "server", key);
        // The LIFETIME attribute is 32 bits of seconds (RFC 8656 §18.2).
        if (f) out = std::chrono::seconds(r_.as_integer(*f, 1, kU32Max));
        return f;
    };
    const auto def = seconds("default_lifetime", cfg_.default_lifetime);
    const auto max = seconds("max_lifetime", cfg_.max_lifetime);
    seconds("nonce_lifetime", cfg_.nonce_lifetime);
    // RFC 8656 §7.2: a requested lifetime is clamped to [default, max], so the range must exist.
    if (cfg_.max_lifetime < cfg_.default_lifetime) {
        if (max)
            r_.fail(*max, fmt::format("expected at least server.default_lifetime ({} s), got {} s",
                                      cfg_.default_lifetime.count(), cfg_.max_lifetime.count()));
        r_.fail(*def, fmt::format("expected at most server.max_lifetime ({} s), got {} s", cfg_.max_lifetime.count(),
                                  cfg_.default_lifetime.count()));
    }
}

void Loader::load_relay(const toml::table& t) {
    if (auto f = r_.get(t, "server", "relay_ips")) {
        std::vector<Field> firsts;
        for (const auto& e : r_.as_array(*f)) {
            const IpAddress a = ip(e);
            for (std::size_t i = 0; i < cfg_.relay_ips.size(); ++i)
                if (cfg_.relay_ips[i].family == a.family)
                    r_.fail(e, fmt::format("expected at most one {} relay address ({} is already one)",
                                           family_name(a.family), firsts[i].key));
            cfg_.relay_ips.push_back(a);
            firsts.push_back(e);
        }
    }
    if (auto f = r_.get(t, "server", "external_ip"); f && !r_.as_string(*f).empty()) {
        const IpAddress a = ip(*f);
        // Only the IPv4 relayed address is rewritten: 1:1 NAT is an IPv4 arrangement.
        if (a.family != Family::V4) r_.fail(*f, fmt::format("expected an IPv4 address, got {}", a.to_string()));
        if (!cfg_.relay_ip(Family::V4))
            r_.fail(*f, "expected an IPv4 address in server.relay_ips for external_ip to stand in for");
        cfg_.external_ip = a;
    }
    if (auto f = r_.get(t, "server", "relay_ports")) std::tie(cfg_.relay_port_min, cfg_.relay_port_max) = port_range(*f);
    const auto sharing = r_.get(t, "server", "relay_sharing");
    if (sharing) cfg_.relay_sharing = r_.as_bool(*sharing);
    const auto shared_ports = r_.get(t, "server", "relay_shared_ports");
    if (shared_ports)
        cfg_.relay_shared_ports = static_cast<std::uint32_t>(r_.as_integer(*shared_ports, 1, kMaxSharedPorts));
    // Each worker opens this many shared ports per relay address out of relay_ports.
    const std::uint32_t range = std::uint32_t{cfg_.relay_port_max} - cfg_.relay_port_min + 1;
    if (cfg_.relay_sharing && cfg_.relay_shared_ports > range)
        r_.fail(shared_ports ? *shared_ports : *sharing,
                fmt::format("expected at most the {} ports of server.relay_ports ({}-{}) as server.relay_shared_ports, got {}",
                            range, cfg_.relay_port_min, cfg_.relay_port_max, cfg_.relay_shared_ports));
}

std::pair<std::uint16_t, std::uint16_t> Loader::port_range(const Field& f) const {
    const std::string s = r_.as_string(f);
    const auto bad = [&](std::string_view why) {
        r_.fail(f, fmt::format(R"(expected "MIN-MAX" with {} <= MIN <= MAX <= 65535, like "61000-65535"; {})",
                               kMinRelayPort, why));
    };
    const auto dash = s.find('-');
    const auto lo = port_number(std::string_view(s).substr(0, dash));
    const auto hi = dash == std::string::npos ? std::nullopt : port_number(std::string_view(s).substr(dash + 1));
    if (!lo || !hi) bad(fmt::format("got \"{}\"", s));
    if (*lo < kMinRelayPort) bad(fmt::format("{} is below {}", *lo, kMinRelayPort));
    if (*lo > *hi) bad(fmt::format("{} is above {}", *lo, *hi));
    return {*lo, *hi};
}

void Loader::load_security(const Field& security) {
    const auto& t = r_.as_table(security);
    r_.only_keys(t, "security", {"allowed_peers", "denied_peers", "unauthenticated_rate", "unauthenticated_burst",
                                 "auth_failures_per_minute"});
    if (auto f = r_.get(t, "security", "allowed_peers")) cfg_.allowed_peers = cidrs(*f);
    if (auto f = r_.get(t, "security", "denied_peers")) cfg_.denied_peers = cidrs(*f);
    if (auto f = r_.get(t, "security", "unauthenticated_rate"))
        cfg_.unauthenticated_rate = static_cast<std::uint32_t>(r_.as_integer(*f, 0, kMaxUnauthenticatedRate));
    if (auto f = r_.get(t, "security", "unauthenticated_burst"))
        cfg_.unauthenticated_burst = static_cast<std::uint32_t>(r_.as_integer(*f, 1, kMaxUnauthenticatedRate));
    if (auto f = r_.get(t, "security", "auth_failures_per_minute"))
        cfg_.auth_failures_per_minute = static_cast<std::uint32_t>(r_.as_integer(*f, 0, kMaxAuthFailuresPerMinute));
}

void Loader::check_server() const {
    if (cfg_.listen.empty() && cfg_.tls_listen.empty())
        r_.fail(listen_line_, "server.listen",
                "expected at least one listener in server.listen or server.tls_listen");
    if (!cfg_.tls_listen.empty()) {
        // Only presence is checked here; the server opens the files when it loads them.
        if (cfg_.tls_cert.empty())
            r_.fail(tls_listen_line_, "server.tls_cert", "expected a certificate path: server.tls_listen is not empty");
        if (cfg_.tls_key.empty())
            r_.fail(tls_listen_line_, "server.tls_key", "expected a private key path: server.tls_listen is not empty");
    }
}

void Loader::load_realms(const Field& realms) {
    for (const auto& f : r_.entries(realms)) {
        Realm realm = load_realm(f);
        cfg_.realms.emplace(realm.name, std::move(realm));
    }
}

Realm Loader::load_realm(const Field& f) {
    Realm realm;
    realm.name = f.name;
    if (realm.name.empty()) r_.fail(f, "expected a realm name, got an empty string");
    if (utf8_chars(realm.name) > kMaxTextChars)
        r_.fail(f, fmt::format("expected a realm name of at most {} characters", kMaxTextChars));
    const auto& t = r_.as_table(f);
    r_.only_keys(t, f.key,
                 {"users", "rest_secret", "listen", "max_allocations_per_user", "price_per_gb", "currency",
                  "max_bitrate", "quota_bytes", "quota_period", "gateway"});
    if (auto users = r_.get(t, f.key, "users")) {
        for (const auto& u : r_.entries(*users)) {
            if (u.name.empty() || u.name.size() > kMaxUsernameBytes)
                r_.fail(u, fmt::format("expected a user name of 1 to {} bytes", kMaxUsernameBytes));
            std::string password = r_.as_string(u);
            if (password.empty()) r_.fail(u, "expected a password, got an empty string");
            realm.users.emplace(u.name, std::move(password));
        }
    }
    if (auto s = r_.get(t, f.key, "rest_secret")) realm.rest_secret = r_.as_string(*s);
    if (realm.users.empty() && realm.rest_secret.empty())
        r_.fail(f, "expected users or rest_secret: nobody could authenticate in this realm");
    if (auto m = r_.get(t, f.key, "max_allocations_per_user"))
        realm.max_allocations_per_user = static_cast<std::uint32_t>(r_.as_integer(*m, 0, kU32Max));
    if (auto l = r_.get(t, f.key, "listen")) realm.listen = claim_listeners(*l);
    load_realm_accounting(t, f.key, realm);
    if (auto g = r_.get(t, f.key, "gateway")) {
        detail::load_gateway(r_, *g, realm, cfg_.file.parent_path());
        if (realm.gateway.enabled && first_gateway_.empty()) first_gateway_ = g->key;
    }
    return realm;
}

// Cost estimates and quotas of one realm (turnbridge.toml(5), [realm."NAME"]).
void Loader::load_realm_accounting(const toml::table& t, const std::string& path, Realm& realm) const {
    if (auto p = r_.get(t, path, "price_per_gb")) realm.price_per_gb = r_.as_number(*p, 0);
    if (auto c = r_.get(t, path, "currency")) {
        realm.currency = r_.as_string(*c);
        if (!is_currency_code(realm.currency))
            r_.fail(*c, fmt::format(R"(expected three upper-case letters, like "USD" or "EUR", got "{}")", realm.currency));
    }
    if (auto m = r_.get(t, path, "max_bitrate")) realm.max_bitrate = static_cast<std::uint64_t>(r_.as_integer(*m, 0, kI64Max));
    if (auto q = r_.get(t, path, "quota_bytes")) realm.quota_bytes = static_cast<std::uint64_t>(r_.as_integer(*q, 0, kI64Max));
    if (auto q = r_.get(t, path, "quota_period")) {
        const std::string period = r_.as_string(*q);
        if (period == "day") realm.quota_period = Realm::QuotaPeriod::Day;
        else if (period == "month") realm.quota_period = Realm::QuotaPeriod::Month;
        else r_.fail(*q, fmt::format(R"(expected "day" or "month", got "{}")", period));
    }
}

void Loader::load_accounting(const Field& accounting) {
    const auto& t = r_.as_table(accounting);
    r_.only_keys(t, "accounting", {"enabled", "database", "flush_interval"});
    if (auto f = r_.get(t, "accounting", "enabled")) cfg_.accounting.enabled = r_.as_bool(*f);
    if (auto f = r_.get(t, "accounting", "database")) {
        cfg_.accounting.database = path(*f);
        if (cfg_.accounting.database.empty()) r_.fail(*f, "expected a file path, got an empty string");
    }
    if (auto f = r_.get(t, "accounting", "flush_interval"))
        cfg_.accounting.flush_interval = std::chrono::seconds(r_.as_integer(*f, 1, kMaxFlushInterval));
}

void Loader::load_admin(const Field& admin) {
    const auto& t = r_.as_table(admin);
    r_.only_keys(t, "admin", {"listen", "token"});
    const auto listen = r_.get(t, "admin", "listen");
    const auto token = r_.get(t, "admin", "token");
    if (token) cfg_.admin.token = r_.as_string(*token);
    if (!listen) return;
    auto ep = Endpoint::parse(r_.as_string(*listen));
    if (!ep) r_.fail(*listen, R"(expected an address with a port, like "127.0.0.1:9641" or "[::1]:9641")");
    if (ep->port == 0) r_.fail(*listen, "expected a port from 1 to 65535, got 0");
    // The admin server binds TCP, as every server.listen entry does.
    for (const auto& s : seen_)
        if (s.ep == *ep) r_.fail(*listen, fmt::format("duplicate listener {} (already in {})", ep->to_string(), s.key));
    // The admin API may go without a token only where nobody else can reach it.
    if (cfg_.admin.token.empty() && !ep->ip.is_loopback()) {
        const std::string why = fmt::format("expected a bearer token: admin.listen {} is not a loopback address",
                                            ep->to_string());
        if (token) r_.fail(*token, why + ", got an empty string");
        r_.fail(listen->line(), "admin.token", why);
    }
    cfg_.admin.listen = *ep;
}

// realm.X.listen: each entry is a server listener that no other realm has claimed.
std::vector<Endpoint> Loader::claim_listeners(const Field& f) {
    std::vector<Endpoint> out;
    for (const auto& e : r_.as_array(f)) {
        auto ep = Endpoint::parse(r_.as_string(e));
        if (!ep) r_.fail(e, R"(expected an address with a port, like "127.0.0.1:3478" or "[::1]:3478")");
        auto it = std::find_if(seen_.begin(), seen_.end(), [&](const Listener& s) { return s.ep == *ep; });
        if (it == seen_.end())
            r_.fail(e, fmt::format("expected one of server.listen or server.tls_listen; {} is neither",
                                   ep->to_string()));
        if (!it->realm.empty()) r_.fail(e, fmt::format("{} already belongs to {}", ep->to_string(), it->realm));
        it->realm = e.key;
        out.push_back(*ep);
    }
    return out;
}

void Loader::check_default_realm() const {
    const std::string key = "server.default_realm";
    if (cfg_.realms.empty())
        r_.fail(default_realm_line_, "realm",
                fmt::format(R"(expected at least one [realm."NAME"] table, e.g. [realm."{}"])", cfg_.default_realm));
    if (!cfg_.find_realm(cfg_.default_realm))
        r_.fail(default_realm_line_, key,
                fmt::format(R"(expected the name of a [realm."NAME"] table; there is no [realm.{}])",
                            detail::quote_key(cfg_.default_realm)));
}

// Gateway mode needs somewhere for browsers to signal and an address for media; its media
// ports must not be handed out as relay ports too.
void Loader::check_gateway() const {
    if (!cfg_.wss_listen.empty()) {
        if (cfg_.tls_cert.empty())
            r_.fail(wss_listen_line_, "server.tls_cert", "expected a certificate path: server.wss_listen is not empty");
        if (cfg_.tls_key.empty())
            r_.fail(wss_listen_line_, "server.tls_key", "expected a private key path: server.wss_listen is not empty");
    }
    if (first_gateway_.empty() && media_ports_line_ == 0) return;  // the default range is not in use
    if (cfg_.media_port_min <= cfg_.relay_port_max && cfg_.relay_port_min <= cfg_.media_port_max)
        r_.fail(media_ports_line_, "server.media_ports",
                fmt::format("{}-{} overlaps server.relay_ports ({}-{})", cfg_.media_port_min, cfg_.media_port_max,
                            cfg_.relay_port_min, cfg_.relay_port_max));
    if (first_gateway_.empty()) return;
    if (!cfg_.media_ip)
        r_.fail(0, "server.media_ip", fmt::format("expected an address for gateway media: {} is enabled", first_gateway_));
    if (cfg_.ws_listen.empty() && cfg_.wss_listen.empty())
        r_.fail(0, "server.ws_listen",
                fmt::format("expected a listener in server.ws_listen or server.wss_listen: {} is enabled", first_gateway_));
}

}  // namespace

bool Config::any_gateway() const {
    return std::any_of(realms.begin(), realms.end(), [](const auto& r) { return r.second.gateway.enabled; });
}

std::uint32_t Config::realm_max_calls(const Realm& realm) const {
    if (realm.gateway.max_calls != 0) return realm.gateway.max_calls;
    // Each call holds three media ports (browser leg, trunk RTP, trunk RTCP: issue 14); the gateway
    // realms share them equally, so one realm's users cannot take every port from the others.
    const std::uint32_t calls = (std::uint32_t{media_port_max} - media_port_min + 1) / 3;
    const auto realms_on = static_cast<std::uint32_t>(std::max<std::ptrdiff_t>(
        1, std::count_if(realms.begin(), realms.end(), [](const auto& r) { return r.second.gateway.enabled; })));
    return std::max<std::uint32_t>(1, calls / realms_on);
}

const Realm* Config::find_realm(std::string_view name) const {
    auto it = realms.find(std::string(name));
    return it == realms.end() ? nullptr : &it->second;
}

const Realm* Config::realm_for_listener(const Endpoint& local) const {
    for (const auto& [name, realm] : realms)
        if (std::find(realm.listen.begin(), realm.listen.end(), local) != realm.listen.end()) return &realm;
    return find_realm(default_realm);
}

std::optional<IpAddress> Config::relay_ip(Family f) const {
    for (const auto& ip : relay_ips)
        if (ip.family == f) return ip;
    return std::nullopt;
}

std::string ConfigError::to_string() const {
    std::string out = file;
    if (line > 0) out += fmt::format(":{}", line);
    if (!key.empty()) out += ": " + key;
    return out + ": " + message;
}

LoadResult load_string(std::string_view toml_text, const std::filesystem::path& path) {
    const std::string file = path.string();
    // TOML allows no control characters but tab and line ends; toml++ 3.3's key parser also
    // mishandles a NUL (found by fuzzing), so they are refused here with their line.
    int line = 1;
    for (const char ch : toml_text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\n') ++line;
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F)
            return ConfigError{file, line, "", fmt::format("control character 0x{:02x} is not allowed in TOML", c)};
    }
    toml::table root;
    try {
        root = toml::parse(toml_text, file);
    } catch (const toml::parse_error& e) {
        return ConfigError{file, static_cast<int>(e.source().begin.line), "",
                           fmt::format("TOML syntax error: {}", e.description())};
    }
    auto cfg = std::make_shared<Config>();
    std::error_code ec;
    cfg->file = fs::absolute(path, ec).lexically_normal();
    if (ec) return ConfigError{file, 0, "", fmt::format("cannot make the path absolute: {}", ec.message())};
    try {
        Reader reader(file);
        detail::resolve_secret_files(root, cfg->file.parent_path(), reader);
        Loader(reader, *cfg).load(root);
    } catch (const Failure& f) {
        return f.error;
    }
    return std::shared_ptr<const Config>(std::move(cfg));
}

LoadResult load_file(const std::filesystem::path& path) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) return ConfigError{path.string(), 0, "", "cannot read: is a directory"};
    std::ifstream in(path, std::ios::binary);
    if (!in) return ConfigError{path.string(), 0, "", fmt::format("cannot open: {}", std::strerror(errno))};
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return ConfigError{path.string(), 0, "", fmt::format("cannot read: {}", std::strerror(errno))};
    return load_string(text.str(), path);
}

}  // namespace turnbridge::config
