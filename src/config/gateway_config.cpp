// SPDX-License-Identifier: Apache-2.0
#include "gateway_config.hpp"
#include "turnbridge/config/agent_url.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace turnbridge::config {

std::string_view to_string(Codec c) {
    switch (c) {
        case Codec::Opus: return "opus";
        case Codec::Pcmu: return "pcmu";
        case Codec::Pcma: return "pcma";
        case Codec::G722: return "g722";
    }
    return "?";
}

std::string_view to_string(SipTrunk::Transport t) {
    switch (t) {
        case SipTrunk::Transport::Udp: return "udp";
        case SipTrunk::Transport::Tcp: return "tcp";
        case SipTrunk::Transport::Tls: return "tls";
    }
    return "?";
}

namespace detail {
namespace {

bool host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// trunk_ca and trunk_tls_verify: only meaningful toward a TLS trunk, so anything else is a mistake.
void load_trunk_tls(const Reader& r, const toml::table& t, const std::string& key, const std::filesystem::path& base_dir,
                    Gateway& g) {
    const bool tls = g.trunk.transport == SipTrunk::Transport::Tls;
    constexpr std::string_view kNotTls = R"(expected a TLS trunk ("sips:HOST" or "sip:HOST;transport=tls"): {} only applies to TLS)";
    if (auto ca = r.get(t, key, "trunk_ca")) {
        const std::filesystem::path p = r.as_string(*ca);
        if (p.empty()) r.fail(*ca, "expected the path of a PEM CA file, got an empty string");
        if (!tls) r.fail(*ca, fmt::format(kNotTls, "trunk_ca"));
        g.trunk_ca = (p.is_absolute() ? p : base_dir / p).lexically_normal();
    }
    if (auto v = r.get(t, key, "trunk_tls_verify")) {
        g.trunk_tls_verify = r.as_bool(*v);
        if (!tls) r.fail(*v, fmt::format(kNotTls, "trunk_tls_verify"));
        if (!g.trunk_tls_verify && !g.trunk_ca.empty())
            r.fail(*v, "expected true: trunk_ca is set, and certificates are not checked with trunk_tls_verify = false");
    }
}

// Identity and number format toward the trunk (issue 13; turnbridge.toml(5)).
void load_identity(const Reader& r, const toml::table& t, const std::string& key, Gateway& g) {
    auto get = [&](std::string_view k) { return r.get(t, key, k); };
    constexpr std::string_view kNumber = R"(expected a number like "+15550100" (digits, + * # . _ -), got "{}")";
    if (auto c = get("caller_ids")) {
        for (const auto& e : r.as_array(*c)) {
            std::string id = r.as_string(e);
            if (!valid_did(id)) r.fail(e, fmt::format(kNumber, id));
            if (std::find(g.caller_ids.begin(), g.caller_ids.end(), id) != g.caller_ids.end())
                r.fail(e, fmt::format(R"("{}" is listed twice)", id));
            g.caller_ids.push_back(std::move(id));
        }
    }
    if (auto v = get("identity")) {
        const std::string s = lower(r.as_string(*v));
        if (s == "from") g.identity = Gateway::Identity::From;
        else if (s == "pai") g.identity = Gateway::Identity::Pai;
        else if (s == "rpid") g.identity = Gateway::Identity::Rpid;
        else r.fail(*v, fmt::format(R"(expected "pai" (P-Asserted-Identity), "rpid" (Remote-Party-ID) or "from", got "{}")", s));
    }
    if (auto v = get("refer_to")) {
        const std::string s = lower(r.as_string(*v));
        if (s == "sip") g.refer_to = Gateway::ReferTo::Sip;
        else if (s == "tel") g.refer_to = Gateway::ReferTo::Tel;
        else r.fail(*v, fmt::format(R"(expected "sip" (<sip:NUMBER@trunk-host>) or "tel" (<tel:+E164>), got "{}")", s));
    }
    if (auto v = get("user_phone")) g.user_phone = r.as_bool(*v);
    if (auto v = get("e164_plus")) g.e164_plus = r.as_bool(*v);
    if (auto v = get("tech_prefix")) {
        g.tech_prefix = r.as_string(*v);
        // Digits and the characters carriers use to mark a prefix; it goes in a SIP user part.
        const bool ok = g.tech_prefix.size() <= 16 &&
                        std::all_of(g.tech_prefix.begin(), g.tech_prefix.end(), [](char c) {
                            return (c >= '0' && c <= '9') || std::string_view("*#").find(c) != std::string_view::npos;
                        });
        if (!ok || g.tech_prefix.empty())
            r.fail(*v, fmt::format(R"(expected up to 16 digits, * or #, like "1234#", got "{}")", g.tech_prefix));
    }
    if (auto v = get("national_prefix")) {
        g.national_prefix = r.as_string(*v);
        const bool ok = !g.national_prefix.empty() && g.national_prefix.size() <= 3 &&
                        std::all_of(g.national_prefix.begin(), g.national_prefix.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!ok)
            r.fail(*v, fmt::format(R"(expected a country code of 1 to 3 digits, like "1" or "44", got "{}")", g.national_prefix));
    }
    if (auto v = get("national_digits")) {
        g.national_digits = static_cast<std::uint32_t>(r.as_integer(*v, 4, 14));
        if (g.national_prefix.empty()) r.fail(*v, R"(expected national_prefix too, like national_prefix = "1")");
        if (g.national_prefix.size() + g.national_digits > 15)
            r.fail(*v, fmt::format("expected national_prefix + national_digits <= 15 digits (E.164), got {} + {}",
                                   g.national_prefix.size(), g.national_digits));
    }
}

// [realm."X".gateway.routes]: inbound DID -> the users whose browsers ring (or one agent).
void load_routes(const Reader& r, const std::optional<Field>& routes, const Realm& realm, Gateway& g) {
    if (!routes) return;
    for (const auto& did : r.entries(*routes)) {
        if (!valid_did(did.name))
            r.fail(did, fmt::format(R"(expected a number like "+15550123" as the key, got "{}")", did.name));
        std::vector<std::string> users;
        for (const auto& u : r.as_array(did)) {
            std::string name = r.as_string(u);
            if (name.empty()) r.fail(u, "expected a user name, got an empty string");
            // Issue 17: "agent:ws://..." sends the call to an AI agent's Media Streams WebSocket.
            std::string why;
            if (parse_agent_url(name, why)) {
                users.push_back(std::move(name));
                continue;
            }
            if (!why.empty()) r.fail(u, why);
            // Static users can be checked now; TURN REST users exist only when they register.
            if (realm.rest_secret.empty() && !realm.users.count(name))
                r.fail(u, fmt::format(R"(no user "{}" in realm "{}")", name, realm.name));
            users.push_back(std::move(name));
        }
        if (users.empty()) r.fail(did, "expected at least one user to ring");
        g.routes.emplace(did.name, std::move(users));
    }
}

}  // namespace

bool valid_did(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               std::string_view("+*#._-").find(c) != std::string_view::npos;
    });
}

std::optional<SipTrunk> parse_trunk(std::string_view uri, std::string& why) {
    SipTrunk t;
    t.uri = std::string(uri);
    std::string_view rest = uri;
    const std::string scheme = lower(rest.substr(0, rest.find(':')));
    if (scheme == "sips") {
        t.sips = true;
        t.transport = SipTrunk::Transport::Tls;
        t.port = 5061;
    } else if (scheme != "sip") {
        why = "expected a sip: or sips: URI";
        return std::nullopt;
    }
    rest.remove_prefix(scheme.size() + 1);
    if (rest.find('@') != std::string_view::npos) {
        why = "expected no user part (the number dialled goes there per call)";
        return std::nullopt;
    }
    const auto semi = rest.find(';');
    std::string_view hostport = rest.substr(0, semi);
    std::string_view params = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    std::string_view port_text;
    bool has_port = false;
    if (!hostport.empty() && hostport.front() == '[') {  // [IPv6]
        const auto close = hostport.find(']');
        if (close == std::string_view::npos || !IpAddress::parse(hostport.substr(1, close - 1))) {
            why = "expected an IPv6 address in brackets";
            return std::nullopt;
        }
        t.host = std::string(hostport.substr(1, close - 1));
        const auto after = hostport.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                why = "expected :PORT after the bracketed address";
                return std::nullopt;
            }
            port_text = after.substr(1);
            has_port = true;
        }
    } else {
        const auto colon = hostport.find(':');
        t.host = std::string(hostport.substr(0, colon));
        if (colon != std::string_view::npos) port_text = hostport.substr(colon + 1), has_port = true;
        if (t.host.empty() || !std::all_of(t.host.begin(), t.host.end(), host_char)) {
            why = "expected a host name or IP address";
            return std::nullopt;
        }
    }
    if (has_port) {
        unsigned v = 0;
        bool ok = !port_text.empty() && port_text.size() <= 5;
        for (char c : port_text) ok = ok && c >= '0' && c <= '9', v = v * 10 + static_cast<unsigned>(c - '0');
        if (!ok || v == 0 || v > 65535) {
            why = "expected a port from 1 to 65535";
            return std::nullopt;
        }
        t.port = static_cast<std::uint16_t>(v);
    }
    while (!params.empty()) {
        const auto next = params.find(';');
        const std::string p = lower(params.substr(0, next));
        params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
        if (p.rfind("transport=", 0) != 0) continue;  // other parameters (lr, ...) are kept in the URI
        const std::string v = p.substr(10);
        SipTrunk::Transport tr;
        if (v == "udp") tr = SipTrunk::Transport::Udp;
        else if (v == "tcp") tr = SipTrunk::Transport::Tcp;
        else if (v == "tls") tr = SipTrunk::Transport::Tls;
        else {
            why = fmt::format(R"(expected transport=udp, tcp or tls, got "{}")", v);
            return std::nullopt;
        }
        if (scheme == "sips" && tr != SipTrunk::Transport::Tls) {
            why = "a sips: URI is TLS only (RFC 3261 §19.1)";
            return std::nullopt;
        }
        t.transport = tr;
        if (!has_port) t.port = tr == SipTrunk::Transport::Tls ? 5061 : 5060;
    }
    t.has_port = has_port;
    return t;
}

const std::vector<std::string_view> kTrunkKeys{
    "trunk", "trunk_username", "trunk_password", "trunk_ca", "trunk_tls_verify", "register", "caller_id", "codecs",
    "session_timers", "session_expires", "min_se", "late_offer", "rel100", "caller_ids", "identity", "user_phone",
    "e164_plus", "tech_prefix", "national_prefix", "national_digits", "trunk_allow", "options_interval",
    "trunk_targets", "srtp", "refer_to"};

void load_gateway(const Reader& r, const Field& f, Realm& realm, const std::filesystem::path& base_dir) {
    Gateway g;
    const auto& t = r.as_table(f);
    std::vector<std::string_view> known{"enabled", "routes", "max_calls_per_user", "max_calls", "test_numbers",
                                        "agent_connect_timeout", "agent_playout_frames", "agent_authorization",
                                        "agents", "agent_outbound_max_calls", "agent_ring_timeout", "agent_media_format",
                                        "trunks"};
    known.insert(known.end(), kTrunkKeys.begin(), kTrunkKeys.end());
    r.only_keys(t, f.key, known);
    auto get = [&](std::string_view key) { return r.get(t, f.key, key); };
    if (auto e = get("enabled")) g.enabled = r.as_bool(*e);
    // Bounds of live calls (issue 11); 0 = unlimited per user, the realm's share for max_calls.
    if (auto m = get("max_calls_per_user")) g.max_calls_per_user = static_cast<std::uint32_t>(r.as_integer(*m, 0, 1000000));
    if (auto m = get("max_calls")) g.max_calls = static_cast<std::uint32_t>(r.as_integer(*m, 0, 1000000));
    if (auto v = get("test_numbers")) g.test_numbers = r.as_bool(*v);
    // Issue 17: agent WebSocket connect timeout (s) and playout bound (20 ms frames).
    if (auto v = get("agent_connect_timeout")) g.agent_connect_timeout = static_cast<std::uint32_t>(r.as_integer(*v, 1, 60));
    if (auto v = get("agent_playout_frames")) g.agent_playout_frames = static_cast<std::uint32_t>(r.as_integer(*v, 10, 3000));
    // Outbound agent calls (POST /api/v1/calls): how many at once per realm, and how long one rings.
    if (auto v = get("agent_outbound_max_calls"))
        g.agent_outbound_max_calls = static_cast<std::uint32_t>(r.as_integer(*v, 0, 10000));
    if (auto v = get("agent_ring_timeout")) g.agent_ring_timeout = static_cast<std::uint32_t>(r.as_integer(*v, 1, 600));
    // The Authorization header value toward agents (agent_authorization_file: from a secret).
    if (auto v = get("agent_authorization")) {
        g.agent_authorization = r.as_string(*v);
        if (g.agent_authorization.find_first_of("\r\n") != std::string::npos || g.agent_authorization.empty())
            r.fail(*v, "expected one line (an HTTP header value such as \"Bearer TOKEN\"), not empty");
    }
    // Issue 17: the media format of agent: route targets and API calls, and of agents without their own.
    if (auto v = get("agent_media_format")) g.agent_media_format = agent_media_format(r, *v);
    if (auto v = get("agents")) g.agents = load_agents(r, *v, g.agent_authorization, g.agent_media_format);
    load_routes(r, get("routes"), realm, g);
    // Issue 14: [[realm."X".gateway.trunks]] (trunks_config.cpp), or the trunk keys right here.
    std::vector<Gateway> trunks;
    if (auto list = get("trunks")) {
        trunks = load_trunks(r, t, f, *list, base_dir, g);
    } else {
        load_trunk_keys(r, t, f, base_dir, g);
        trunks.push_back(std::move(g));
    }
    realm.trunks.clear();
    const Realm base = realm;   // without trunks: the copies have none of their own
    for (auto& trunk : trunks) {
        Realm view = base;
        view.gateway = std::move(trunk);
        realm.trunks.push_back(std::move(view));
    }
    realm.gateway = realm.trunks.front().gateway;
}

void load_trunk_keys(const Reader& r, const toml::table& t, const Field& f, const std::filesystem::path& base_dir,
                     Gateway& g) {
    auto get = [&](std::string_view key) { return r.get(t, f.key, key); };
    g.trunk_table = f.key;
    const auto trunk = get("trunk");
    if (trunk) {
        std::string why;
        auto parsed = parse_trunk(r.as_string(*trunk), why);
        if (!parsed) r.fail(*trunk, fmt::format(R"({}, like "sip:192.0.2.10:5060;transport=udp")", why));
        g.trunk = std::move(*parsed);
    } else if (g.enabled) {
        r.fail(f, R"(expected trunk = "sip:HOST:PORT;transport=udp|tcp|tls": gateway mode is enabled)");
    }
    if (auto u = get("trunk_username")) g.trunk_username = r.as_string(*u);
    if (auto p = get("trunk_password")) g.trunk_password = r.as_string(*p);
    if (!g.trunk_password.empty() && g.trunk_username.empty())
        r.fail(*get("trunk_password"), "expected trunk_username too: a password alone cannot answer a challenge");
    load_trunk_tls(r, t, f.key, base_dir, g);
    if (auto reg = get("register")) g.register_to_trunk = r.as_bool(*reg);
    if (auto c = get("caller_id")) {
        g.caller_id = r.as_string(*c);
        if (!g.caller_id.empty() && !valid_did(g.caller_id))
            r.fail(*c, fmt::format(R"(expected a number like "+15550100" (digits, + * # . _ -), got "{}")", g.caller_id));
    }
    if (auto c = get("codecs")) {
        g.codecs.clear();
        for (const auto& e : r.as_array(*c)) {
            const std::string name = lower(r.as_string(e));
            Codec codec;
            if (name == "opus") codec = Codec::Opus;
            else if (name == "pcmu") codec = Codec::Pcmu;
            else if (name == "pcma") codec = Codec::Pcma;
            else if (name == "g722") codec = Codec::G722;
            else r.fail(e, fmt::format(R"(expected "opus", "pcmu", "pcma" or "g722", got "{}")", name));
            if (std::find(g.codecs.begin(), g.codecs.end(), codec) != g.codecs.end())
                r.fail(e, fmt::format(R"("{}" is listed twice)", name));
            g.codecs.push_back(codec);
        }
        // g722 is for the trunk leg only (browsers get Opus or G.711), so it cannot stand alone.
        if (std::all_of(g.codecs.begin(), g.codecs.end(), [](Codec k) { return k == Codec::G722; }))
            r.fail(*c, R"(expected at least one browser codec ("opus", "pcmu" or "pcma"), like ["opus", "pcmu", "g722"])");
    }
    // RFC 4028 (issue 13): Min-SE is at least 90 s (§4); what we ask for is at least our Min-SE.
    if (auto v = get("session_timers")) g.session_timers = r.as_bool(*v);
    if (auto v = get("min_se")) g.min_se = static_cast<std::uint32_t>(r.as_integer(*v, 1, 86400));   // below 90: tests only
    if (auto v = get("session_expires")) {
        g.session_expires = static_cast<std::uint32_t>(r.as_integer(*v, 1, 86400));
        if (g.session_expires < g.min_se)
            r.fail(*v, fmt::format("expected session_expires >= min_se ({} s), got {}", g.min_se, g.session_expires));
    } else if (g.session_expires < g.min_se) {
        g.session_expires = g.min_se;
    }
    if (auto v = get("late_offer")) g.late_offer = r.as_bool(*v);
    if (auto v = get("rel100")) g.rel100 = r.as_bool(*v);
    load_identity(r, t, f.key, g);
    if (auto v = get("trunk_allow")) g.trunk_allow = load_cidrs(r, *v);
    if (auto v = get("trunk_targets")) g.trunk_targets = load_endpoints(r, *v);
    if (auto v = get("options_interval")) {
        g.options_interval = static_cast<std::uint32_t>(r.as_integer(*v, 0, 86400));
        g.options_interval_set = true;
    }
    if (auto v = get("srtp")) {   // SDES-SRTP toward the trunk (RFC 4568, issue 14)
        const std::string s = lower(r.as_string(*v));
        if (s == "off") g.srtp = Gateway::Srtp::Off;
        else if (s == "optional") g.srtp = Gateway::Srtp::Optional;
        else if (s == "required") g.srtp = Gateway::Srtp::Required;
        else r.fail(*v, fmt::format(R"(expected "off", "optional" or "required", got "{}")", s));
    }
}

}  // namespace detail
}  // namespace turnbridge::config
