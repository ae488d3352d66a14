// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/base/rest_credential.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <span>

#include "turnbridge/base/base64.hpp"

namespace turnbridge {

std::optional<Credential> rest_credential(std::string_view secret, std::string_view username, std::int64_t unix_now,
                                          RestCheck* why) {
    RestCheck ignored;
    RestCheck& result = why != nullptr ? *why : ignored;
    result = RestCheck::NotRest;
    if (secret.empty()) return std::nullopt;
    const auto stamp = username.substr(0, username.find(':'));
    std::int64_t expiry = 0;
    const auto [p, ec] = std::from_chars(stamp.data(), stamp.data() + stamp.size(), expiry);
    if (stamp.empty() || ec != std::errc() || p != stamp.data() + stamp.size()) return std::nullopt;
    if (expiry <= unix_now) {
        result = RestCheck::Expired;
        return std::nullopt;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(username.data()),
         username.size(), mac, &n);
    result = RestCheck::Ok;
    return Credential{base64_encode(std::span<const std::uint8_t>(mac, n)), std::string(rest_account(username))};
}

std::optional<Credential> find_credential(const std::map<std::string, std::string>& users, std::string_view secret,
                                          std::string_view username, std::int64_t unix_now, RestCheck* why) {
    if (why != nullptr) *why = RestCheck::NotRest;
    if (auto it = users.find(std::string(username)); it != users.end()) return Credential{it->second, it->first};
    return rest_credential(secret, username, unix_now, why);
}

}  // namespace turnbridge
