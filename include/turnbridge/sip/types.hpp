// SPDX-License-Identifier: Apache-2.0
#pragma once
// What every SIP core shares: time and randomness given by the caller (sans-I/O), SIP status
// codes (RFC 3261 §21) and the error type that carries one.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>

#include "turnbridge/base/result.hpp"

namespace turnbridge::sip {

using Time = std::chrono::steady_clock::time_point;   // the type only, never ::now() here
using Duration = std::chrono::steady_clock::duration;
using Milliseconds = std::chrono::milliseconds;

// Injected randomness (branches, tags, cnonces): tests pass a counter, the net layer RAND_bytes.
using Random = std::function<std::uint64_t()>;

// RFC 3261 §21: the enum value is the wire number, so an Error becomes a response directly.
enum class Status : std::uint16_t {
    Trying = 100,
    Ringing = 180,
    SessionProgress = 183,
    Ok = 200,
    BadRequest = 400,
    Unauthorized = 401,
    Forbidden = 403,
    NotFound = 404,
    MethodNotAllowed = 405,
    ProxyAuthenticationRequired = 407,
    RequestTimeout = 408,
    UnsupportedMediaType = 415,
    IntervalTooBrief = 423,
    TemporarilyUnavailable = 480,
    CallDoesNotExist = 481,
    LoopDetected = 482,
    TooManyHops = 483,
    BusyHere = 486,
    RequestTerminated = 487,
    NotAcceptableHere = 488,
    RequestPending = 491,
    ServerInternalError = 500,
    NotImplemented = 501,
    ServiceUnavailable = 503,
    ServerTimeout = 504,
    Decline = 603,
};

constexpr int code(Status s) { return static_cast<int>(s); }

// `what` is fixed text naming the bad field; it doubles as the reason phrase of a 4xx.
struct Error {
    Status code = Status::BadRequest;
    std::string_view what;
};

template <class T>
using Result = turnbridge::Result<T, Error>;

}  // namespace turnbridge::sip
