// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/admin/router.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <exception>
#include <optional>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <set>

#include "turnbridge/accounting/calls.hpp"
#include "turnbridge/accounting/usage.hpp"
#include "turnbridge/admin/calls_api.hpp"
#include "turnbridge/admin/json.hpp"
#include "turnbridge/admin/metrics_text.hpp"
#include "turnbridge/admin/usage_page.hpp"
#include "turnbridge/base/address.hpp"
#include "turnbridge/base/log.hpp"

namespace turnbridge::admin {
namespace {

constexpr std::string_view kAllocationsPrefix = "/api/v1/allocations/";
constexpr std::string_view kJson = "application/json";

enum class Route { Page, Metrics, Usage, Calls, Call, Allocations, Allocation, Trunks, Drain, None };

Route route_of(std::string_view path) {
    if (path == "/") return Route::Page;
    if (path == "/metrics") return Route::Metrics;
    if (path == "/api/v1/usage") return Route::Usage;
    if (path == "/api/v1/calls") return Route::Calls;
    if (path == "/api/v1/allocations") return Route::Allocations;
    if (path == "/api/v1/trunks") return Route::Trunks;
    if (path == "/api/v1/drain") return Route::Drain;
    if (path.size() > kCallsPrefix.size() && path.starts_with(kCallsPrefix) &&
        path.find('/', kCallsPrefix.size()) == std::string_view::npos)
        return Route::Call;   // issue 17: an outbound agent call
    if (path.size() > kAllocationsPrefix.size() && path.substr(0, kAllocationsPrefix.size()) == kAllocationsPrefix &&
        path.find('/', kAllocationsPrefix.size()) == std::string_view::npos)
        return Route::Allocation;
    return Route::None;
}

std::string_view allowed_methods(Route r) {
    return r == Route::Allocation ? "DELETE" : r == Route::Drain ? "POST" : r == Route::Calls ? "GET, HEAD, POST" : "GET, HEAD";
}

bool method_allowed(Route r, std::string_view method) {
    if (r == Route::Allocation) return method == "DELETE";
    if (r == Route::Drain) return method == "POST";
    if (r == Route::Calls && method == "POST") return true;   // issue 17: place an outbound agent call
    return method == "GET" || method == "HEAD";
}

bool starts_with_icase(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        const char a = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] + 32) : s[i];
        if (a != prefix[i]) return false;
    }
    return true;
}

// RFC 6750 §2.1: "Authorization: Bearer <token>"; the scheme is case-insensitive.
std::string_view bearer_of(const Request& req) {
    const std::string* h = req.header("authorization");
    if (h == nullptr || !starts_with_icase(*h, "bearer ")) return {};
    std::string_view t = std::string_view(*h).substr(7);
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    return t;
}

// RFC 6585 §4: 429 with Retry-After while the source is over security.auth_failures_per_minute;
// the token is not checked, so guessing on makes no progress.
Response too_many_failures(std::uint32_t retry_after_s) {
    Response r = json_error(429, "too many failed authentications; retry later");
    r.headers.push_back({"Retry-After", std::to_string(std::max<std::uint32_t>(retry_after_s, 1))});
    return r;
}

Response unauthorized(bool presented) {
    Response r = json_error(401, presented ? "invalid token" : "missing bearer token");
    // RFC 6750 §3: the challenge, with error="invalid_token" when a token was sent.
    r.headers.push_back({"WWW-Authenticate", presented ? R"(Bearer realm="turnbridge", error="invalid_token")"
                                                       : R"(Bearer realm="turnbridge")"});
    return r;
}

Response json_ok(std::string body) {
    Response r;
    r.content_type = kJson;
    r.body = std::move(body);
    return r;
}

Response page() {
    Response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(usage_page());
    r.headers.push_back({"Content-Security-Policy", std::string(kUsagePageCsp)});
    r.headers.push_back({"Referrer-Policy", "no-referrer"});  // the URL may carry ?token=
    return r;
}

// A bad value of one query parameter: 400 naming it.
Response bad_parameter(std::string_view name, std::string_view what) { return json_error(400, what, name); }

constexpr std::string_view kTimeHelp =
    "expected a date (2026-11-01), a UTC date and time (2026-11-01T12:00:00Z), a unix time, or a relative "
    "time before now (7d, 12h, 30m)";

// The filters /api/v1/usage and /api/v1/calls share: user, realm, since, until. Each other
// parameter goes to `other`, which answers 400 for one it does not take. An empty value (a blank
// form field) means "not given".
struct Filters {
    std::optional<std::string> user, realm;
    std::optional<std::int64_t> since_ms, until_ms;
};

template <class Other>
std::optional<Response> parse_filters(const Request& req, std::int64_t now_ms, Filters& f, Other&& other) {
    std::set<std::string_view> seen;
    for (const auto& [k, v] : req.query) {
        if (!seen.insert(k).second) return bad_parameter(k, "parameter given more than once");
        if (k == "user") {
            if (!v.empty()) f.user = v;
        } else if (k == "realm") {
            if (!v.empty()) f.realm = v;
        } else if (k == "since" || k == "until") {
            if (v.empty()) continue;
            const auto t = accounting::parse_time(v, now_ms);
            if (!t) return bad_parameter(k, kTimeHelp);
            (k == "since" ? f.since_ms : f.until_ms) = *t;
        } else if (auto bad = other(k, v)) {
            return bad;
        }
    }
    if (f.since_ms && f.until_ms && *f.until_ms < *f.since_ms) return bad_parameter("until", "until is before since");
    return std::nullopt;
}

Response usage(const Request& req, Backend& backend, std::int64_t now_ms) {
    Filters f;
    std::optional<accounting::GroupBy> by;
    auto bad = parse_filters(req, now_ms, f, [&](const std::string& k, const std::string& v) -> std::optional<Response> {
        if (k != "by") return bad_parameter(k, "unknown parameter; expected user, realm, since, until or by");
        if (v.empty()) return std::nullopt;
        if (!(by = accounting::parse_group_by(v))) return bad_parameter(k, "expected user, realm, day, hour, allocation or trunk");
        return std::nullopt;
    });
    if (bad) return std::move(*bad);
    accounting::UsageQuery q{f.user, f.realm, f.since_ms, f.until_ms, by.value_or(accounting::GroupBy::User)};
    return json_ok(accounting::format_usage(backend.usage(q), accounting::Format::Json));
}

// The most calls one request may ask for with limit=.
constexpr std::size_t kMaxLimit = 1'000'000;

Response calls(const Request& req, Backend& backend, std::int64_t now_ms) {
    Filters f;
    std::optional<std::size_t> limit;
    auto bad = parse_filters(req, now_ms, f, [&](const std::string& k, const std::string& v) -> std::optional<Response> {
        if (k != "limit") return bad_parameter(k, "unknown parameter; expected user, realm, since, until or limit");
        if (v.empty()) return std::nullopt;
        std::size_t n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || end != v.data() + v.size() || n == 0 || n > kMaxLimit)
            return bad_parameter(k, "expected a whole number from 1 to 1000000");
        limit = n;
        return std::nullopt;
    });
    if (bad) return std::move(*bad);
    const accounting::CallQuery q{f.user, f.realm, f.since_ms, f.until_ms, limit};
    return json_ok(accounting::format_calls(backend.calls(q), accounting::Format::Json));
}

Response kick(std::string_view path, Backend& backend) {
    const std::string_view id = path.substr(kAllocationsPrefix.size());
    if (!backend.kick(id)) {
        Response r = json_error(404, "no such live allocation");
        return r;
    }
    log::info("admin: allocation {} kicked", id);
    Response r;
    r.status = 204;
    return r;
}

Response dispatch(Route route, const Request& req, Backend& backend, const RouterConfig& cfg) {
    switch (route) {
        case Route::Page: return page();
        case Route::Metrics: {
            Response r;
            r.content_type = kMetricsContentType;
            r.body = format_metrics(backend.metrics());
            return r;
        }
        case Route::Usage: return usage(req, backend, cfg.now_ms);
        case Route::Calls: return req.method == "POST" ? place_call(req, backend) : calls(req, backend, cfg.now_ms);
        case Route::Call: return outbound_call(req.path.substr(kCallsPrefix.size()), backend);
        case Route::Allocations: return json_ok(allocations_json(backend.live()));
        case Route::Trunks: return json_ok(trunks_json(backend.metrics().trunk_targets));
        case Route::Allocation: return kick(req.path, backend);
        case Route::Drain: {
            // Issue 15: like SIGUSR1. 202: accepted, the process stops when its allocations end.
            if (!backend.drain_node()) return json_error(409, "drain needs [fleet]");
            Response r;
            r.status = 202;
            return r;
        }
        case Route::None: break;
    }
    return json_error(404, "not found");
}

}  // namespace

bool token_matches(std::string_view presented, std::string_view token) {
    // Hash first so that neither the length nor the first differing byte shows in the timing.
    std::array<unsigned char, EVP_MAX_MD_SIZE> a{}, b{};
    unsigned la = 0, lb = 0;
    if (EVP_Digest(presented.data(), presented.size(), a.data(), &la, EVP_sha256(), nullptr) != 1) return false;
    if (EVP_Digest(token.data(), token.size(), b.data(), &lb, EVP_sha256(), nullptr) != 1) return false;
    return la == lb && CRYPTO_memcmp(a.data(), b.data(), la) == 0;
}

bool is_loopback_host(std::string_view host) {
    // Strip the port: "[::1]:9641", "127.0.0.1:9641", "localhost:9641".
    if (!host.empty() && host.front() == '[') {
        const auto close = host.find(']');
        if (close == std::string_view::npos) return false;
        const auto rest = host.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return false;
        host = host.substr(1, close - 1);
    } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
        host = host.substr(0, colon);
    }
    if (host.size() == 9 && starts_with_icase(host, "localhost")) return true;
    const auto ip = IpAddress::parse(host);
    if (!ip) return false;
    if (ip->family == Family::V4) return ip->bytes[0] == 127;
    return *ip == *IpAddress::parse("::1");
}

std::string trunks_json(const std::vector<TrunkTargetStatus>& targets) {
    JsonWriter j;
    j.begin_array();
    for (const auto& t : targets) {
        j.begin_object();
        j.key("realm").value(t.realm);
        j.key("trunk").value(t.trunk);
        j.key("target").value(t.target);
        j.key("state").value(t.up ? "up" : "down");
        j.key("misses").value(static_cast<std::uint64_t>(t.misses));
        j.key("last_status").value(static_cast<std::int64_t>(t.last_status));
        // null until the first answer (JsonWriter writes NaN as null)
        j.key("last_response_seconds_ago").value(t.last_response_age < 0 ? std::nan("") : t.last_response_age);
        j.key("rtt_ms").value(t.rtt_ms < 0 ? std::nan("") : t.rtt_ms);
        j.end_object();
    }
    j.end_array();
    return j.take();
}

std::string allocations_json(const std::vector<LiveAllocation>& live) {
    JsonWriter j;
    j.begin_array();
    for (const auto& a : live) {
        const auto& r = a.record;
        j.begin_object();
        j.key("id").value(r.id);
        j.key("user").value(r.account);
        j.key("username").value(r.username);
        j.key("realm").value(r.realm);
        j.key("client").value(r.client);
        j.key("transport").value(r.transport);
        j.key("relay").value(r.relay);
        j.key("start").value(iso8601_utc(r.start_ms));
        j.key("start_ms").value(r.start_ms);
        j.key("peers").value(r.peers);
        // Flat counter names, as in the usage rows: client_to_relay_packets, ..._payload_bytes, ...
        for (std::size_t d = 0; d < accounting::kDirections; ++d) {
            const std::string dir(kDirectionNames[d]);
            j.key(dir + "_packets").value(r.traffic.packets[d]);
            j.key(dir + "_payload_bytes").value(r.traffic.payload_bytes[d]);
            j.key(dir + "_wire_bytes").value(r.traffic.wire_bytes[d]);
        }
        j.key("bitrate_in_bps").value(a.bitrate_in_bps);
        j.key("bitrate_out_bps").value(a.bitrate_out_bps);
        j.end_object();
    }
    j.end_array();
    return j.take() + "\n";
}

// GET /livez and /readyz (issue 15), for load balancers and orchestrators: no token (they
// reveal nothing but the state), and answered before the token check so that a probe never
// drains the auth throttle. /livez: this loop answered. /readyz: 503 with the reason while the
// node should get no new work.
std::optional<Response> probe(const Request& req, Backend& backend) {
    if (req.path != "/livez" && req.path != "/readyz") return std::nullopt;
    if (req.method != "GET" && req.method != "HEAD") {
        Response r = json_error(405, "method not allowed");
        r.headers.push_back({"Allow", "GET, HEAD"});
        return r;
    }
    Response r;
    r.content_type = "text/plain; charset=utf-8";
    const std::string why = req.path == "/readyz" ? backend.not_ready() : std::string();
    r.status = why.empty() ? 200 : 503;
    r.body = why.empty() ? "ok\n" : why + "\n";
    return r;
}

Response handle(const Request& req, Backend& backend, const RouterConfig& cfg) {
    if (auto r = probe(req, backend)) return std::move(*r);
    const Route route = route_of(req.path);
    if (cfg.token.empty()) {
        // No token means a loopback listener. A web page on another site could still reach it
        // through DNS rebinding; its requests then name that site in Host.
        const std::string* host = req.header("host");
        if (host != nullptr && !is_loopback_host(*host)) return json_error(403, "Host must name this machine (localhost)");
    } else {
        std::string_view presented = bearer_of(req);
        // The page may come with ?token= so that a browser can open it; it then sends the header.
        if (presented.empty() && route == Route::Page && (req.method == "GET" || req.method == "HEAD"))
            if (const std::string* t = req.param("token")) presented = *t;
        if (presented.empty()) return unauthorized(false);
        auto* throttle = cfg.auth.throttle;
        if (throttle != nullptr) {
            const auto a = throttle->admit(cfg.auth.now, AuthProtocol::Admin, cfg.auth.peer, "", "");
            if (a.throttled) return too_many_failures(a.retry_after_s);
        }
        if (!token_matches(presented, cfg.token)) {
            if (throttle != nullptr) throttle->on_failure(cfg.auth.now, AuthProtocol::Admin, cfg.auth.peer, "", "");
            return unauthorized(true);
        }
    }
    if (route == Route::None) return json_error(404, "not found");
    if (!method_allowed(route, req.method)) {
        Response r = json_error(405, "method not allowed");
        r.headers.push_back({"Allow", std::string(allowed_methods(route))});
        return r;
    }
    try {
        return dispatch(route, req, backend, cfg);
    } catch (const std::exception& e) {
        log::error("admin: {} {} failed: {}", req.method, req.path, e.what());
        return json_error(500, "internal error");
    }
}

}  // namespace turnbridge::admin
