// SPDX-License-Identifier: Apache-2.0
#pragma once
// The TURN REST API credential (draft-uberti-behave-turn-rest-00 §2.2), checked in one place for
// TURN (turn/auth.cpp) and the gateway's SIP digest (sip/digest.cpp): the username is
// "expiry" or "expiry:userid" with `expiry` a unix time, the password is
// base64(HMAC-SHA1(secret, username)).
//
// The one account rule: a REST credential is accounted to its userid, and to "" (the realm
// alone) when it is a bare expiry; a static user is accounted to its own name. Per-user limits
// that need a name for "" use the username (limit_name()).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace turnbridge {

struct Credential {
    std::string password;
    std::string account;   // who pays: the static user, the REST userid, or "" for a bare expiry
};

enum class RestCheck {
    Ok,
    NotRest,   // no secret, or the part before the first ':' is not a unix time
    Expired,   // expiry <= now
};

// The password of REST `username` under `secret` at `unix_now`, when it is a REST username that
// has not expired (whether the client knows the password is the caller's check).
std::optional<Credential> rest_credential(std::string_view secret, std::string_view username, std::int64_t unix_now,
                                          RestCheck* why = nullptr);

// The account of a REST `username` (not checked): the userid after the first ':', or "".
inline std::string_view rest_account(std::string_view username) {
    const auto colon = username.find(':');
    return colon == std::string_view::npos ? std::string_view() : username.substr(colon + 1);
}

// A realm's credentials: a static user first (`users`: name -> password), then REST.
std::optional<Credential> find_credential(const std::map<std::string, std::string>& users, std::string_view secret,
                                          std::string_view username, std::int64_t unix_now, RestCheck* why = nullptr);

// The name per-user limits count under: the account, or the username when the account is "".
inline std::string_view limit_name(std::string_view account, std::string_view username) {
    return account.empty() ? username : account;
}

}  // namespace turnbridge
