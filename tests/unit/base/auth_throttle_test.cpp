// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/base/auth_throttle.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace turnbridge;
using namespace std::chrono_literals;

namespace {

IpAddress ip(const char* s) { return *IpAddress::parse(s); }

const AuthThrottle::Time t0 = AuthThrottle::Time{} + 1h;

// `n` wrong passwords of `user` from `source` at `now`, each admitted first as a caller would.
int guesses_checked(AuthThrottle& t, AuthThrottle::Time now, const char* source, const char* user, int n) {
    int checked = 0;
    for (int i = 0; i < n; ++i) {
        if (t.admit(now, AuthProtocol::Turn, ip(source), "example.org", user).throttled) continue;
        ++checked;
        t.on_failure(now, AuthProtocol::Turn, ip(source), "example.org", user);
    }
    return checked;
}

}  // namespace

TEST_CASE("A source gets auth_failures_per_minute wrong passwords checked, then none until its bucket refills") {
    AuthThrottle t(20, 1);
    CHECK(guesses_checked(t, t0, "192.0.2.1", "alice", 2000) == 20);
    const auto c = t.counters();
    CHECK(c.failures[0] == 20);
    CHECK(c.throttled[0] == 1980);
    const auto a = t.admit(t0, AuthProtocol::Turn, ip("192.0.2.1"), "example.org", "alice");
    CHECK(a.throttled);
    CHECK(a.retry_after_s == 3);  // 20 a minute: one token every 3 s
    // One token back 3 s later, and one check; a minute later the whole burst again.
    CHECK(guesses_checked(t, t0 + 3s, "192.0.2.1", "alice", 100) == 1);
    CHECK(guesses_checked(t, t0 + 3s + 60s, "192.0.2.1", "bob", 100) == 20);
}

TEST_CASE("The right user from a clean source is checked while another source guesses its password") {
    AuthThrottle t(20, 1);
    CHECK(guesses_checked(t, t0, "192.0.2.1", "alice", 500) == 20);
    // alice's bucket is empty, but 198.51.100.7 never failed: its requests are checked.
    CHECK_FALSE(t.admit(t0, AuthProtocol::Turn, ip("198.51.100.7"), "example.org", "alice").throttled);
    CHECK_FALSE(t.admit(t0, AuthProtocol::Sip, ip("198.51.100.7"), "example.org", "alice").throttled);
}

TEST_CASE("Many sources guessing one user each get one check, then wait for the user's bucket") {
    AuthThrottle t(10, 7);
    int checked = 0;
    for (int i = 0; i < 200; ++i) {
        const std::string src = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
        checked += guesses_checked(t, t0, src.c_str(), "alice", 5);
    }
    // The user's bucket (10) goes to the first two sources; after that each source's first guess
    // is checked (it had no failure yet), then the user's empty bucket holds it.
    CHECK(checked == 5 + 5 + 198);
    CHECK(t.admit(t0, AuthProtocol::Turn, ip("10.0.0.1"), "example.org", "alice").throttled);
    CHECK_FALSE(t.admit(t0, AuthProtocol::Turn, ip("10.0.0.1"), "example.org", "bob").throttled);
}

TEST_CASE("auth_failures_per_minute = 0 never throttles but still counts failures") {
    AuthThrottle t(0, 1);
    CHECK(guesses_checked(t, t0, "192.0.2.1", "alice", 300) == 300);
    CHECK(t.counters().failures[0] == 300);
    CHECK(t.counters().throttled[0] == 0);
}

TEST_CASE("The admin token has no user: only the source's bucket applies") {
    AuthThrottle t(5, 1);
    for (int i = 0; i < 5; ++i) {
        CHECK_FALSE(t.admit(t0, AuthProtocol::Admin, ip("::1"), "", "").throttled);
        t.on_failure(t0, AuthProtocol::Admin, ip("::1"), "", "");
    }
    const auto a = t.admit(t0, AuthProtocol::Admin, ip("::1"), "", "");
    CHECK(a.throttled);
    CHECK(a.retry_after_s == 12);
    CHECK_FALSE(t.admit(t0, AuthProtocol::Admin, ip("127.0.0.1"), "", "").throttled);
    CHECK(t.counters().throttled[static_cast<std::size_t>(AuthProtocol::Admin)] == 1);
}

TEST_CASE("A flood of new sources does not evict a throttled source from the bounded table") {
    AuthThrottle t(20, 3);
    CHECK(guesses_checked(t, t0, "192.0.2.1", "alice", 100) == 20);
    // Far more sources than the table holds, one failure each.
    for (int i = 0; i < 40000; ++i) {
        const IpAddress src = ip(("10." + std::to_string(i >> 16 & 255) + "." + std::to_string(i >> 8 & 255) + "." +
                                  std::to_string(i & 255)).c_str());
        t.on_failure(t0, AuthProtocol::Turn, src, "example.org", "u" + std::to_string(i));
    }
    CHECK(t.counters().evictions > 0);
    CHECK(t.admit(t0, AuthProtocol::Turn, ip("192.0.2.1"), "example.org", "alice").throttled);
}
