// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/digest.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>

#include "text.hpp"
#include "turnbridge/base/rest_credential.hpp"
#include "turnbridge/config/config.hpp"

namespace turnbridge::sip {
namespace {

using text::iequal;
using text::lower;

std::string hash_hex(DigestAlgorithm alg, std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), md, &n, alg == DigestAlgorithm::Sha256 ? EVP_sha256() : EVP_md5(), nullptr);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * n);
    for (unsigned i = 0; i < n; ++i) {
        out.push_back(kHex[md[i] >> 4]);
        out.push_back(kHex[md[i] & 0xF]);
    }
    return out;
}

std::optional<DigestAlgorithm> algorithm_of(std::string_view name) {
    if (name.empty() || iequal(name, "MD5")) return DigestAlgorithm::Md5;
    if (iequal(name, "SHA-256")) return DigestAlgorithm::Sha256;
    return std::nullopt;  // MD5-sess and friends: not offered, not accepted
}

std::string_view algorithm_name(DigestAlgorithm a) { return a == DigestAlgorithm::Sha256 ? "SHA-256" : "MD5"; }

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    return out + "\"";
}

}  // namespace

std::optional<std::map<std::string, std::string>> parse_digest(std::string_view v) {
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    if (v.size() < 6 || !iequal(v.substr(0, 6), "Digest") || (v.size() > 6 && v[6] != ' ' && v[6] != '\t')) return std::nullopt;
    v.remove_prefix(6);
    std::map<std::string, std::string> out;
    std::size_t i = 0;
    auto skip = [&](std::string_view chars) {
        while (i < v.size() && chars.find(v[i]) != std::string_view::npos) ++i;
    };
    for (;;) {
        skip(" \t\r\n,");
        if (i >= v.size()) break;
        std::string name;
        while (i < v.size() && v[i] != '=' && v[i] != ' ' && v[i] != ',') name.push_back(lower(v[i++]));
        skip(" \t");
        if (name.empty() || i >= v.size() || v[i] != '=') return std::nullopt;
        ++i;
        skip(" \t");
        std::string value;
        if (i < v.size() && v[i] == '"') {
            ++i;
            bool closed = false;
            for (; i < v.size(); ++i) {
                if (v[i] == '\\' && i + 1 < v.size()) value.push_back(v[++i]);
                else if (v[i] == '"') { closed = true; ++i; break; }
                else value.push_back(v[i]);
            }
            if (!closed) return std::nullopt;
        } else {
            while (i < v.size() && v[i] != ',' && v[i] != ' ' && v[i] != '\t') value.push_back(v[i++]);
        }
        out[name] = std::move(value);
    }
    return out;
}

std::string digest_response(const DigestInput& in) {
    const auto colon = [](std::initializer_list<std::string_view> parts) {
        std::string s;
        bool first = true;
        for (auto p : parts) {
            if (!first) s.push_back(':');
            first = false;
            s.append(p);
        }
        return s;
    };
    const auto ha1 = hash_hex(in.algorithm, colon({in.username, in.realm, in.password}));
    const auto ha2 = hash_hex(in.algorithm, colon({in.method, in.uri}));
    if (in.qop.empty()) return hash_hex(in.algorithm, colon({ha1, in.nonce, ha2}));
    return hash_hex(in.algorithm, colon({ha1, in.nonce, in.nc, in.cnonce, in.qop, ha2}));
}

std::optional<std::string> realm_password(const config::Realm& realm, std::string_view username, std::int64_t unix_now) {
    auto c = find_credential(realm.users, realm.rest_secret, username, unix_now);
    if (!c) return std::nullopt;
    return std::move(c->password);
}

std::string_view account_of(const config::Realm& realm, std::string_view username) {
    if (realm.users.contains(std::string(username))) return username;
    return rest_account(username);
}

std::string_view user_of(const config::Realm& realm, std::string_view username) {
    return limit_name(account_of(realm, username), username);
}

Message DigestServer::challenge(const Message& request, Time now, const IpAddress& client, std::string_view to_tag,
                                bool stale, bool proxy) const {
    auto resp = Message::response(request, proxy ? 407 : 401, {}, to_tag);
    std::string v = "Digest realm=" + quote(realm_) + ", nonce=" + quote(nonces_.mint(now, client)) +
                    ", qop=\"auth\", algorithm=MD5";
    if (stale) v += ", stale=true";  // RFC 2617 §3.2.1: retry with the new nonce, no new password prompt
    resp.add_auth_header(proxy ? AuthHeader::ProxyAuthenticate : AuthHeader::WwwAuthenticate, v);
    return resp;
}

DigestServer::Check DigestServer::verify(const Message& request, Time now, const IpAddress& client,
                                         const PasswordLookup& lookup, bool proxy) const {
    Check c;
    // RFC 3261 §22.4: of several credentials, the ones for our realm count.
    std::optional<std::map<std::string, std::string>> creds;
    for (const auto& h : request.auth_headers(proxy ? AuthHeader::ProxyAuthorization : AuthHeader::Authorization)) {
        auto p = parse_digest(h);
        if (!p) continue;
        if ((*p)["realm"] == realm_) {
            creds = std::move(p);
            break;
        }
    }
    if (!creds) return c;  // Missing
    auto& m = *creds;
    c.username = m["username"];
    const auto alg = algorithm_of(m["algorithm"]);
    const bool qop_ok = m["qop"].empty() || (m["qop"] == "auth" && !m["nc"].empty() && !m["cnonce"].empty());
    if (c.username.empty() || m["nonce"].empty() || m["uri"].empty() || m["response"].empty() || !alg || !qop_ok) {
        c.verdict = Verdict::Malformed;
        return c;
    }
    const auto freshness = nonces_.check(m["nonce"], now, client);
    if (freshness == turn::NonceMinter::Check::Invalid) {
        c.verdict = Verdict::Rejected;
        return c;
    }
    const auto password = lookup ? lookup(c.username) : std::nullopt;
    // Compute a digest even for unknown users, so timing does not tell which names exist.
    const auto expected = digest_response({*alg, c.username, realm_, password.value_or("\x01unknown"), request.method(),
                                           m["uri"], m["nonce"], m["qop"], m["nc"], m["cnonce"]});
    const auto& got = m["response"];
    std::string got_lower;
    for (char ch : got) got_lower.push_back(lower(ch));
    const bool match = got_lower.size() == expected.size() &&
                       CRYPTO_memcmp(got_lower.data(), expected.data(), expected.size()) == 0;
    if (!password || !match) {
        c.verdict = Verdict::Forbidden;
        return c;
    }
    // Deviation: no nonce-count tracking (stateless nonces); a captured request replays only
    // from the same IP until the nonce expires, which the nonce lifetime bounds.
    c.verdict = freshness == turn::NonceMinter::Check::Stale ? Verdict::Stale : Verdict::Ok;
    return c;
}

std::optional<DigestAnswer> answer_challenge(const Message& response, std::string_view method, std::string_view uri,
                                             std::string_view username, std::string_view password,
                                             const Random& random, std::uint32_t nc) {
    const bool proxy = response.status() == 407;
    for (const auto& h : response.auth_headers(proxy ? AuthHeader::ProxyAuthenticate : AuthHeader::WwwAuthenticate)) {
        auto p = parse_digest(h);
        if (!p) continue;
        auto& m = *p;
        const auto alg = algorithm_of(m["algorithm"]);
        if (!alg || m["nonce"].empty()) continue;
        const bool qop = text::has_token(m["qop"], "auth");
        char ncbuf[9];
        std::snprintf(ncbuf, sizeof ncbuf, "%08x", nc);
        std::string cnonce;
        if (qop) {
            char cn[17];
            std::snprintf(cn, sizeof cn, "%016llx", static_cast<unsigned long long>(random()));
            cnonce = cn;
        }
        const auto resp = digest_response({*alg, username, m["realm"], password, method, uri, m["nonce"],
                                           qop ? "auth" : "", qop ? ncbuf : "", cnonce});
        std::string v = "Digest username=" + quote(username) + ", realm=" + quote(m["realm"]) + ", nonce=" +
                        quote(m["nonce"]) + ", uri=" + quote(uri) + ", response=" + quote(resp) +
                        ", algorithm=" + std::string(algorithm_name(*alg));
        if (qop) v += ", cnonce=" + quote(cnonce) + ", qop=auth, nc=" + ncbuf;
        if (m.count("opaque")) v += ", opaque=" + quote(m["opaque"]);
        return DigestAnswer{proxy ? AuthHeader::ProxyAuthorization : AuthHeader::Authorization, std::move(v)};
    }
    return std::nullopt;
}

}  // namespace turnbridge::sip
