// SPDX-License-Identifier: Apache-2.0
// io::StreamGuard: the handshake, message (slowloris), idle and write limits every stream
// connection shares (issue 11). A fake clock in milliseconds.
#include <doctest/doctest.h>

#include "turnbridge/io/stream_guard.hpp"

using namespace turnbridge::io;

namespace {

GuardLimits limits() {
    GuardLimits l;
    l.handshake_ms = 10'000;
    l.message_ms = 10'000;
    l.idle_ms = 30'000;
    l.write_ms = 30'000;
    l.write_soft = 1000;
    l.write_hard = 5000;
    return l;
}

std::uint64_t closed(const StreamStats& s, StreamKind k, StreamClose c) {
    return s.snapshot().closed[static_cast<std::size_t>(k)][static_cast<std::size_t>(c)];
}

}  // namespace

TEST_CASE("a TLS handshake or WebSocket upgrade not done within handshake_timeout closes the connection") {
    StreamStats stats;
    StreamGuard g(StreamKind::WebSocket, limits(), &stats, 1000);
    CHECK_FALSE(g.expired(10'999));
    CHECK(g.expired(11'000) == StreamClose::HandshakeTimeout);
    CHECK(closed(stats, StreamKind::WebSocket, StreamClose::HandshakeTimeout) == 1);
    CHECK(g.expired(12'000) == StreamClose::HandshakeTimeout);
    CHECK(closed(stats, StreamKind::WebSocket, StreamClose::HandshakeTimeout) == 1);  // counted once

    SUBCASE("established in time: no handshake timeout") {
        StreamGuard ok(StreamKind::WebSocket, limits(), &stats, 1000);
        ok.established(5000);
        CHECK_FALSE(ok.expired(20'000));
    }
}

TEST_CASE("slowloris: a message started and not finished within message_timeout closes, a byte a second or not") {
    StreamStats stats;
    StreamGuard g(StreamKind::Sip, limits(), &stats, 0);
    g.established(0);
    for (std::uint64_t t = 1000; t < 11'000; t += 1000) {
        g.on_read(t, true);  // one more byte of the same header
        CHECK_FALSE(g.expired(t));
    }
    CHECK(g.expired(11'000) == StreamClose::MessageTimeout);
    CHECK(closed(stats, StreamKind::Sip, StreamClose::MessageTimeout) == 1);
}

TEST_CASE("whole messages keep a busy connection open: pipelined partial tails start the clock again") {
    StreamGuard g(StreamKind::Sip, limits(), nullptr, 0);
    g.established(0);
    for (std::uint64_t t = 0; t < 100'000; t += 5000) {
        g.on_read(t, true);
        g.on_message(t + 1);  // a message finished, the next one's first bytes are buffered
        CHECK_FALSE(g.expired(t + 4000));
    }
    g.on_read(100'000, false);
    CHECK_FALSE(g.expired(120'000));
}

TEST_CASE("idle_timeout runs from the last whole message, and not while exempt (a live TURN allocation)") {
    StreamStats stats;
    StreamGuard g(StreamKind::Turn, limits(), &stats, 0);
    g.established(0);
    g.on_message(10'000);
    CHECK_FALSE(g.expired(39'999));
    g.set_idle_exempt(true);
    CHECK_FALSE(g.expired(100'000));
    g.set_idle_exempt(false);  // the allocation expired or was deleted
    CHECK(g.expired(100'000) == StreamClose::IdleTimeout);
    CHECK(closed(stats, StreamKind::Turn, StreamClose::IdleTimeout) == 1);
}

TEST_CASE("back-pressure: reading stops over the soft bound, resumes under it, closes over the hard bound") {
    StreamStats stats;
    StreamGuard g(StreamKind::WebSocket, limits(), &stats, 0);
    g.established(0);
    CHECK(g.on_queue(0, 1000) == StreamGuard::Flow::Keep);
    CHECK(g.on_queue(0, 1001) == StreamGuard::Flow::Pause);
    CHECK(g.paused());
    CHECK(g.on_queue(1, 2000) == StreamGuard::Flow::Keep);  // already paused
    CHECK(g.on_queue(2, 999) == StreamGuard::Flow::Resume);
    CHECK_FALSE(g.paused());
    CHECK(g.on_queue(3, 5001) == StreamGuard::Flow::Close);
    CHECK(closed(stats, StreamKind::WebSocket, StreamClose::WriteLimit) == 1);
    CHECK(stats.snapshot().read_pauses[1] == 1);
}

TEST_CASE("a peer that does not read for write_timeout is closed even under the hard bound") {
    StreamGuard g(StreamKind::Sip, limits(), nullptr, 0);
    g.established(0);
    g.on_message(0);
    CHECK(g.on_queue(1000, 3000) == StreamGuard::Flow::Pause);
    g.on_message(20'000);  // it still sends (pings, OPTIONS); it does not read
    CHECK_FALSE(g.expired(30'999));
    CHECK(g.expired(31'000) == StreamClose::WriteTimeout);
}
