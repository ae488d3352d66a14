// SPDX-License-Identifier: Apache-2.0
#pragma once
// HTTP Digest for SIP (RFC 3261 §22.4, RFC 2617 §3.2, RFC 7616, RFC 8760 for SHA-256):
// the server side that challenges browsers and checks their REGISTER/INVITE, and the client
// side that answers an operator trunk's 401/407.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/sip/message.hpp"
#include "turnbridge/turn/nonce.hpp"

namespace turnbridge::config {
struct Realm;
}

namespace turnbridge::sip {

enum class DigestAlgorithm { Md5, Sha256 };

// "Digest a=b, c="d"" -> {a: b, c: d}, names lower-case, quotes and escapes removed.
// nullopt if the scheme is not Digest or the list is malformed.
std::optional<std::map<std::string, std::string>> parse_digest(std::string_view header_value);

struct DigestInput {
    DigestAlgorithm algorithm = DigestAlgorithm::Md5;
    std::string_view username, realm, password, method, uri, nonce;
    std::string_view qop, nc, cnonce;   // qop empty: RFC 2069 form H(HA1:nonce:HA2)
};
// RFC 2617 §3.2.2.1 / RFC 7616 §3.4.1: the lower-case hex request-digest.
std::string digest_response(const DigestInput& in);

// ---- server side: challenge browsers, verify their credentials ----

// Who may register or call, and with which password; nullopt = no such user.
using PasswordLookup = std::function<std::optional<std::string>(std::string_view username)>;

// A realm's static users, then TURN REST API credentials, as TURN accepts them (one check:
// base/rest_credential.hpp).
std::optional<std::string> realm_password(const config::Realm& realm, std::string_view username, std::int64_t unix_now);
// For a username that passed the check, with TURN's account rule: the account a call is
// accounted to (a static user's name, a REST userid, "" for a bare REST expiry) ...
std::string_view account_of(const config::Realm& realm, std::string_view username);
// ... and the name it registers and is limited under: the account, or the username when "".
std::string_view user_of(const config::Realm& realm, std::string_view username);

class DigestServer {
public:
    // Nonces come from the same stateless minter as TURN's (timestamp + HMAC, bound to the
    // client's IP), so any worker verifies them and a flood of requests leaves no state.
    DigestServer(std::string realm, const turn::NonceMinter& nonces) : realm_(std::move(realm)), nonces_(nonces) {}

    // 401 (or 407 with `proxy`) carrying WWW-Authenticate (Proxy-Authenticate): qop="auth", MD5.
    Message challenge(const Message& request, Time now, const IpAddress& client, std::string_view to_tag,
                      bool stale = false, bool proxy = false) const;

    // Rejected: the nonce is not one of ours for this client (a restart, another address):
    // challenge again. Forbidden: a good nonce but an unknown user or a wrong password: 403, the
    // same answer for both so that names cannot be probed (issue 4: unknown user 403/404).
    enum class Verdict { Ok, Missing, Stale, Malformed, Rejected, Forbidden };
    struct Check {
        Verdict verdict = Verdict::Missing;
        std::string username;   // as the client gave it, when there was one
    };
    // RFC 3261 §22.4: Missing/Stale/Rejected -> challenge again (stale=true for Stale),
    // Forbidden -> 403, Malformed -> 400, Ok -> go on as `username`.
    Check verify(const Message& request, Time now, const IpAddress& client, const PasswordLookup& lookup,
                 bool proxy = false) const;

    const std::string& realm() const { return realm_; }

private:
    std::string realm_;
    const turn::NonceMinter& nonces_;
};

// ---- client side: answer a trunk's challenge ----

struct DigestAnswer {
    AuthHeader header;   // Authorization for 401, Proxy-Authorization for 407
    std::string value;
};
// Picks the first Digest challenge with an algorithm we know (MD5, SHA-256) and builds the
// credentials for a retry of `method` to `uri`; qop=auth when offered (cnonce from `random`).
std::optional<DigestAnswer> answer_challenge(const Message& response, std::string_view method, std::string_view uri,
                                             std::string_view username, std::string_view password,
                                             const Random& random, std::uint32_t nc = 1);

}  // namespace turnbridge::sip
