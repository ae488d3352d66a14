// SPDX-License-Identifier: Apache-2.0
// Long-term credential mechanism (RFC 8489 §9.2) with static users and TURN REST API
// credentials (draft-uberti-behave-turn-rest-00: username "expiry[:user]",
// password base64(HMAC-SHA1(secret, username))).
#include <cstring>
#include <optional>

#include "server_internal.hpp"
#include "turnbridge/base/rest_credential.hpp"
#include "turnbridge/base/log.hpp"
#include "turnbridge/stun/integrity.hpp"

namespace turnbridge::turn {
namespace {

constexpr std::uint8_t kOurAlgorithms[] = {0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00};

struct Lookup {
    std::string password;
    std::string account;  // who pays: the static user, the REST userid, or "" for a bare expiry
    std::string username;
};

std::optional<Lookup> find_user(const config::Realm& realm, const stun::Message& m, std::int64_t unix_now,
                                bool& expired) {
    if (auto hash = m.get(stun::attr::Userhash)) {
        // RFC 8489 §14.4: only static users can be found by hash; compare in constant time.
        std::optional<Lookup> found;
        for (const auto& [name, password] : realm.users) {
            const auto h = stun::userhash(name, realm.name);
            if (stun::equal_secret(h, *hash)) found = Lookup{password, name, name};
        }
        return found;
    }
    auto username = m.get_string(stun::attr::Username);
    if (!username) return std::nullopt;
    RestCheck why = RestCheck::NotRest;
    auto c = find_credential(realm.users, realm.rest_secret, *username, unix_now, &why);
    expired = why == RestCheck::Expired;
    if (!c) return std::nullopt;
    return Lookup{std::move(c->password), std::move(c->account), std::string(*username)};
}

// Who a request claims to be, for the per-user throttle: USERNAME, or the USERHASH bytes.
std::string_view throttle_name(const stun::Message& m) {
    if (auto name = m.get_string(stun::attr::Username)) return *name;
    if (auto hash = m.get(stun::attr::Userhash)) return {reinterpret_cast<const char*>(hash->data()), hash->size()};
    return {};
}

}  // namespace

bool Server::authenticate(const Clock& now, Request& req, std::vector<Action>& out) {
    const auto& m = req.msg;
    const bool has_mi = m.find(stun::attr::MessageIntegrity) != nullptr;
    const bool has_mi256 = m.find(stun::attr::MessageIntegritySha256) != nullptr;
    auto challenge = [&](StunCode code, std::string_view reason) {
        ResponseWriter w(*this, req, stun::Class::Error);
        w.builder().add_error_code(code, reason);
        add_challenge(w.builder(), req.realm, shared_.nonces->mint(now.mono, req.from.client.ip));
        w.finish(out, false);
    };
    // RFC 8489 §9.2.4: no integrity at all -> 401 with the challenge, nothing else.
    if (!has_mi && !has_mi256) {
        challenge(StunCode::Unauthenticated, "Unauthenticated");
        return false;
    }
    const auto realm = m.get_string(stun::attr::Realm);
    const auto nonce = m.get_string(stun::attr::Nonce);
    const bool has_user = m.find(stun::attr::Username) || m.find(stun::attr::Userhash);
    if (!realm || !nonce || !has_user) {
        send_error(req, StunCode::BadRequest, "Bad Request: USERNAME, REALM and NONCE required", out, false);
        return false;
    }
    if (shared_.nonces->check(*nonce, now.mono, req.from.client.ip) != NonceMinter::Check::Valid) {
        challenge(StunCode::StaleNonce, "Stale Nonce");
        return false;
    }
    // RFC 8489 §9.2.4: with the password-algorithms feature, PASSWORD-ALGORITHMS must echo ours
    // and PASSWORD-ALGORITHM pick one of them; with neither, MD5 (compatibility with RFC 5389).
    std::uint16_t algorithm = stun::password_algorithm::Md5;
    const auto algs = m.get(stun::attr::PasswordAlgorithms);
    const auto alg = m.get(stun::attr::PasswordAlgorithm);
    if (algs || alg) {
        const bool echo_ok = algs && algs->size() == sizeof kOurAlgorithms &&
                             std::memcmp(algs->data(), kOurAlgorithms, sizeof kOurAlgorithms) == 0;
        const bool pick_ok = alg && alg->size() == 4 && (*alg)[2] == 0 && (*alg)[3] == 0 && (*alg)[0] == 0 &&
                             ((*alg)[1] == 1 || (*alg)[1] == 2);
        if (!echo_ok || !pick_ok || !NonceMinter::announces_password_algorithms(*nonce)) {
            send_error(req, StunCode::BadRequest, "Bad Request: PASSWORD-ALGORITHM", out, false);
            return false;
        }
        algorithm = (*alg)[1];
    }
    // security.auth_failures_per_minute: a source (or, from a source that failed too, a user)
    // over its budget gets the same 401 as a wrong password, without the lookup or the HMAC.
    // RFC 8489 has no "too many requests" code, and an answer that differed from a wrong
    // password's would tell a guesser when to resume.
    const auto claimed = throttle_name(m);
    if (shared_.auth != nullptr &&
        shared_.auth->admit(now.mono, AuthProtocol::Turn, req.from.client.ip, *realm, claimed).throttled) {
        ++stats_.auth_throttled;
        challenge(StunCode::Unauthenticated, "Unauthenticated");
        return false;
    }
    bool expired = false;
    auto user = *realm == req.realm.name ? find_user(req.realm, m, now.unix_seconds, expired) : std::nullopt;
    // Derive a key even for unknown users, so timing does not tell which usernames exist.
    const std::string_view name = user ? std::string_view(user->username) : m.get_string(stun::attr::Username).value_or("");
    const std::string_view password = user ? std::string_view(user->password) : std::string_view("\x01unknown");
    Key key;
    if (algorithm == stun::password_algorithm::Sha256) {
        const auto k = stun::long_term_key_sha256(name, req.realm.name, password);
        std::memcpy(key.bytes.data(), k.data(), k.size());
        key.size = 32;
    } else {
        const auto k = stun::long_term_key_md5(name, req.realm.name, password);
        std::memcpy(key.bytes.data(), k.data(), k.size());
        key.size = 16;
    }
    const bool mac_ok = has_mi256 ? stun::check_message_integrity_sha256(m, key.span())
                                  : stun::check_message_integrity(m, key.span());
    if (!user || !mac_ok) {
        ++stats_.auth_failures;
        if (shared_.auth != nullptr) shared_.auth->on_failure(now.mono, AuthProtocol::Turn, req.from.client.ip, *realm, claimed);
        log::debug("auth failure from {}: user '{}' realm '{}'{}", req.from.to_string(), name, *realm,
                   expired ? " (REST credential expired)" : "");
        challenge(StunCode::Unauthenticated, "Unauthenticated");
        return false;
    }
    req.authenticated = true;
    req.key = key;
    req.integrity = has_mi256 ? IntegrityKind::Sha256 : IntegrityKind::Sha1;
    req.username = std::move(user->username);
    req.account = std::move(user->account);
    return true;
}

}  // namespace turnbridge::turn
