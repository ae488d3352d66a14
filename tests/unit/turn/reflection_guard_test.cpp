// SPDX-License-Identifier: Apache-2.0
// Reflection and amplification limits on unauthenticated answers (RFC 8489 §16.1.2, RFC 8656 §21).
#include "turnbridge/turn/reflection_guard.hpp"

#include "harness.hpp"

using namespace std::chrono_literals;
using turn::ReflectionGuard;

namespace {

const tb::IpAddress kA = *tb::IpAddress::parse("198.51.100.7");
const tb::IpAddress kB = *tb::IpAddress::parse("198.51.100.8");
const turn::Time kT0 = turn::Time{} + std::chrono::hours(1000);

// How many of `n` larger-than-request answers to `ip` at `now` the guard lets through.
int allowed(ReflectionGuard& g, turn::Time now, const tb::IpAddress& ip, int n) {
    int ok = 0;
    for (int i = 0; i < n; ++i) ok += g.allow(now, ip, 20, 100) ? 1 : 0;
    return ok;
}

}  // namespace

TEST_CASE("A source gets `burst` larger answers at once, then nothing until the window slides") {
    ReflectionGuard g(50, 100, 1);
    CHECK(allowed(g, kT0, kA, 150) == 100);
    CHECK(g.dropped() == 50);
    // The window is burst/rate = 2 s. One window later half of it still overlaps the old count.
    CHECK(allowed(g, kT0 + 1s, kA, 150) == 0);
    CHECK(allowed(g, kT0 + 3s, kA, 150) == 50);
    // Two quiet windows forget everything.
    CHECK(allowed(g, kT0 + 8s, kA, 150) == 100);
}

TEST_CASE("The sustained rate per source is `rate` answers per second") {
    ReflectionGuard g(50, 100, 1);
    int ok = 0;
    // 1000 answers a second for 20 s, in 1 ms steps.
    for (int ms = 0; ms < 20000; ++ms) ok += allowed(g, kT0 + std::chrono::milliseconds(ms), kA, 1);
    // 20 s at 50/s plus the first burst; the sliding estimate may be a little stricter.
    CHECK(ok <= 20 * 50 + 100);
    CHECK(ok >= 20 * 50 * 9 / 10);
}

TEST_CASE("Answers no larger than their request are always sent and not counted") {
    ReflectionGuard g(1, 1, 1);
    for (int i = 0; i < 1000; ++i) CHECK(g.allow(kT0, kA, 100, 100));
    CHECK(g.dropped() == 0);
    CHECK(g.allow(kT0, kA, 20, 21));   // the one the burst allows
    CHECK_FALSE(g.allow(kT0, kA, 20, 21));
    CHECK(g.dropped() == 1);
}

TEST_CASE("One source's flood does not throttle another, and rate 0 means unlimited") {
    ReflectionGuard g(50, 100, 1);
    CHECK(allowed(g, kT0, kA, 1000) == 100);
    CHECK(allowed(g, kT0, kB, 10) == 10);
    ReflectionGuard off(0, 1, 1);
    CHECK(allowed(off, kT0, kA, 10000) == 10000);
    CHECK(off.dropped() == 0);
}

TEST_CASE("A flood from many sources keeps within the fixed table and still limits each source") {
    ReflectionGuard g(50, 100, 42);
    // 100,000 distinct addresses (far more than kSlots): each gets its first answer.
    int ok = 0;
    for (std::uint32_t i = 0; i < 100000; ++i)
        ok += g.allow(kT0, tb::IpAddress::v4(10, std::uint8_t(i >> 16), std::uint8_t(i >> 8), std::uint8_t(i)), 20,
                      100);
    CHECK(ok == 100000);
    // A repeating source is still limited afterwards.
    CHECK(allowed(g, kT0, kA, 200) == 100);
    tb::IpAddress v6 = *tb::IpAddress::parse("2001:db8::1");
    CHECK(allowed(g, kT0, v6, 200) == 100);
}

TEST_CASE("set_limits applies new limits to counts already made") {
    ReflectionGuard g(50, 100, 1);
    CHECK(allowed(g, kT0, kA, 60) == 60);
    g.set_limits(50, 50);
    CHECK(allowed(g, kT0, kA, 10) == 0);
    g.set_limits(0, 50);
    CHECK(allowed(g, kT0, kA, 10) == 10);
}

// --- in turn::Server -------------------------------------------------------------------------

TEST_CASE("Binding answers over security.unauthenticated_burst are dropped silently and counted") {
    Bench b;
    b.cfg->unauthenticated_rate = 10;
    b.cfg->unauthenticated_burst = 5;
    b.restart();
    Client c(b, tuple("198.51.100.7:5000"));
    int answered = 0;
    for (int i = 0; i < 20; ++i) {
        auto req = c.build(stun::method::Binding, {}, Client::Options{Client::Mac::None});
        b.send(c.five_tuple(), req);
        answered += static_cast<int>(b.out.size());
    }
    CHECK(answered == 5);
    CHECK(b.server->stats().unauthenticated_dropped == 15);
    // Another source is answered meanwhile.
    Client other(b, tuple("198.51.100.8:5000"));
    b.send(other.five_tuple(), other.build(stun::method::Binding, {}, Client::Options{Client::Mac::None}));
    CHECK(b.reply().success());
    // The window is 0.5 s: a second later the source is answered again.
    b.advance(1s);
    b.send(c.five_tuple(), c.build(stun::method::Binding, {}, Client::Options{Client::Mac::None}));
    CHECK(b.reply().success());
}

TEST_CASE("401 challenges are limited, authenticated requests and TCP clients are not") {
    Bench b;
    b.cfg->unauthenticated_rate = 1;
    b.cfg->unauthenticated_burst = 1;
    b.restart();
    Client c(b, tuple("198.51.100.7:5000"));
    auto ar = c.allocate({Client::udp()});  // takes the one 401 the burst allows, then succeeds
    REQUIRE(ar.success());
    // Refresh with integrity: authenticated, so never limited.
    for (int i = 0; i < 5; ++i) CHECK(c.refresh(600).success());
    // A request without credentials from the same address gets nothing.
    b.send(c.five_tuple(), c.build(stun::method::Allocate, {Client::udp()}, Client::Options{Client::Mac::None}));
    CHECK(b.out.empty());
    CHECK(b.server->stats().unauthenticated_dropped == 1);
    // Over TCP the source cannot be spoofed: always answered.
    Client t(b, tuple("198.51.100.7:5001", tb::Transport::Tcp));
    for (int i = 0; i < 3; ++i) {
        b.send(t.five_tuple(), t.build(stun::method::Binding, {}, Client::Options{Client::Mac::None}));
        CHECK(b.reply().success());
    }
}

TEST_CASE("admit counts every event of a source, whatever its size (the gateway's SIP request limit)") {
    ReflectionGuard g(20, 40, 1);
    int ok = 0;
    for (int i = 0; i < 100; ++i) ok += g.admit(kT0, kA) ? 1 : 0;
    CHECK(ok == 40);
    CHECK(g.admit(kT0, kB));   // another source is not held back
    CHECK(g.dropped() == 60);
}
