// SPDX-License-Identifier: Apache-2.0
#pragma once
// Slows password guessing (issue 11) on TURN long-term credentials (RFC 8489 §9.2), SIP digest
// (RFC 3261 §22) and the admin bearer token (RFC 6750): a token bucket of failed authentications
// per source IP and per user, `auth_failures_per_minute` deep and refilled at that rate. While a
// bucket is empty the protocol answers without checking the password, so guesses cost nothing
// and teach nothing. The per-user bucket only stops sources that failed themselves (fail2ban's
// rule): a user whose name is being guessed from elsewhere still logs in from a clean address.
// Sans-I/O: time comes in. One object for the process, behind a mutex, touched only by requests
// that carry credentials (never by relayed packets); the tables are fixed-size (no growth
// however many sources or names a flood uses) and made on the first failure.
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>

#include "turnbridge/base/address.hpp"

namespace turnbridge {

enum class AuthProtocol : std::uint8_t { Turn, Sip, Admin };
inline constexpr std::size_t kAuthProtocols = 3;
std::string_view to_string(AuthProtocol p);

class AuthThrottle {
public:
    using Time = std::chrono::steady_clock::time_point;
    static constexpr std::size_t kSets = 1024;  // per table (sources, users): kSets * kWays entries
    static constexpr std::size_t kWays = 4;
    // One log line per source per interval, with the counts since its last line, and at most
    // kMaxLogLines of them per interval for all sources together (many addresses, IPv6 ones in
    // particular, must not fill the log either); the rest are summed up in one more line.
    static constexpr std::chrono::seconds kLogInterval{60};
    static constexpr std::uint32_t kMaxLogLines = 20;

    // `failures_per_minute` 0 = never throttle (failures are still counted and logged per interval).
    // `seed` keys the table hash so that a sender cannot pick keys that evict a given entry.
    AuthThrottle(std::uint32_t failures_per_minute, std::uint64_t seed);
    static std::uint64_t random_seed();
    // SIGHUP: a new limit; the buckets so far stay.
    void set_limit(std::uint32_t failures_per_minute);

    struct Admission {
        bool throttled = false;
        std::uint32_t retry_after_s = 0;  // when throttled: until the bucket has a token again
    };
    // Before checking a password of `user` in `realm` (both "" for the admin token) from
    // `source`. Throttled: answer without checking; counted (and logged per interval).
    Admission admit(Time now, AuthProtocol p, const IpAddress& source, std::string_view realm, std::string_view user);
    // After a wrong password (or an unknown user): takes a token from both buckets.
    void on_failure(Time now, AuthProtocol p, const IpAddress& source, std::string_view realm, std::string_view user);

    struct Counters {
        std::array<std::uint64_t, kAuthProtocols> failures{};   // passwords checked and found wrong
        std::array<std::uint64_t, kAuthProtocols> throttled{};  // answered without a check
        std::uint64_t evictions = 0;                            // entries taken over when a set was full
    };
    Counters counters() const;

private:
    struct Entry {
        std::uint64_t key = 0;
        bool used = false;
        double tokens = 0;
        Time refilled{};
        Time logged{};  // the last log line (sources only)
        std::uint32_t failures_since_log = 0;
        std::uint32_t throttled_since_log = 0;
    };
    using Table = std::array<Entry, kSets * kWays>;

    std::uint64_t key_of(const IpAddress& ip) const;
    std::uint64_t key_of(std::string_view realm, std::string_view user) const;
    Entry* find(Table* t, std::uint64_t key, Time now);
    Entry& find_or_insert(std::unique_ptr<Table>& t, std::uint64_t key, Time now);
    void refill(Entry& e, Time now) const;
    std::uint32_t seconds_to_token(const Entry& e) const;
    void maybe_log(Entry& e, Time now, AuthProtocol p, const IpAddress& source, std::string_view user);

    mutable std::mutex mu_;
    // Set by the first failure: until then admit() answers without the lock, so a server nobody
    // guesses on never takes it.
    std::atomic<bool> armed_{false};
    double capacity_ = 0;  // = failures_per_minute
    double per_second_ = 0;
    std::uint64_t seed_;
    std::unique_ptr<Table> sources_;
    std::unique_ptr<Table> users_;
    Counters counters_;
    Time log_window_{};  // start of the interval kMaxLogLines counts in
    std::uint32_t log_lines_ = 0;
    std::uint64_t unlogged_sources_ = 0, unlogged_failures_ = 0, unlogged_throttled_ = 0;
};

}  // namespace turnbridge
