// SPDX-License-Identifier: Apache-2.0
#pragma once
// g++ 12 has no std::expected; this is the small stand-in the protocol cores return.
#include <cstdint>
#include <string_view>
#include <utility>
#include <variant>

namespace turnbridge {

// RFC 8489 §14.8 and RFC 8656 §19: the enum value is the wire number.
enum class StunCode : std::uint16_t {
    TryAlternate = 300,
    BadRequest = 400,
    Unauthenticated = 401,
    Forbidden = 403,
    UnknownAttribute = 420,
    AllocationMismatch = 437,
    StaleNonce = 438,
    AddressFamilyNotSupported = 440,
    WrongCredentials = 441,
    UnsupportedTransport = 442,
    PeerAddressFamilyMismatch = 443,
    AllocationQuotaReached = 486,
    ServerError = 500,
    InsufficientCapacity = 508,
};

// `what` is fixed text, `attr` names the offending attribute: the error path allocates nothing.
struct Error {
    StunCode code = StunCode::BadRequest;
    std::uint16_t attr = 0;
    std::string_view what;
};

// E defaults to the STUN Error; other domains (SIP) pass their own error type.
template <class T, class E = Error>
class Result {
public:
    Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
    Result(E error) : v_(error) {}                      // NOLINT
    explicit operator bool() const { return v_.index() == 0; }
    T& operator*() { return std::get<0>(v_); }
    const T& operator*() const { return std::get<0>(v_); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }
    const E& error() const { return std::get<1>(v_); }

private:
    std::variant<T, E> v_;
};

}  // namespace turnbridge
