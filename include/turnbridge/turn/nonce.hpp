// SPDX-License-Identifier: Apache-2.0
#pragma once
// Stateless nonces (RFC 8489 §9.2): "obMatJos2" + security-feature bits + expiry + MAC, so a
// flood of unauthenticated requests creates no per-source state and any worker can verify.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "turnbridge/base/address.hpp"
#include "turnbridge/turn/clock.hpp"

namespace turnbridge::turn {

class NonceMinter {
public:
    // `key` is random per process; `lifetime` how long a nonce stays fresh.
    NonceMinter(std::array<std::uint8_t, 32> key, std::chrono::seconds lifetime);
    static NonceMinter with_random_key(std::chrono::seconds lifetime);

    std::string mint(Time now, const IpAddress& client) const;
    enum class Check { Valid, Stale, Invalid };
    Check check(std::string_view nonce, Time now, const IpAddress& client) const;
    // RFC 8489 §9.2: the nonce announces the password-algorithms and username-anonymity features.
    static bool announces_password_algorithms(std::string_view nonce);
    void set_lifetime(std::chrono::seconds lifetime) { lifetime_ = lifetime; }

    static constexpr std::string_view kCookie = "obMatJos2";

private:
    std::string mac(std::int64_t expiry, const IpAddress& client) const;
    std::array<std::uint8_t, 32> key_;
    std::chrono::seconds lifetime_;
};

}  // namespace turnbridge::turn
