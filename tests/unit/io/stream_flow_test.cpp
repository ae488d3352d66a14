// SPDX-License-Identifier: Apache-2.0
// io::apply_back_pressure over a real socketpair: a peer that does not read makes the stream
// stop reading; once it drains, reading starts again and what waited is delivered.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "turnbridge/io/stream_flow.hpp"

using namespace turnbridge::io;

namespace {

struct Side {
    uv_pipe_t pipe{};
    std::size_t got = 0;
    char buf[4096];
};

void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* b) {
    auto* s = static_cast<Side*>(h->data);
    *b = uv_buf_init(s->buf, sizeof s->buf);
}

void on_read(uv_stream_t* st, ssize_t n, const uv_buf_t*) {
    if (n > 0) static_cast<Side*>(st->data)->got += static_cast<std::size_t>(n);
}

}  // namespace

TEST_CASE("back-pressure over a socketpair: reading stops while the peer does not read, and resumes when it does") {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    const int small = 4096;
    ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    uv_loop_t loop;
    uv_loop_init(&loop);
    Side side;
    uv_pipe_init(&loop, &side.pipe, 0);
    side.pipe.data = &side;
    REQUIRE(uv_pipe_open(&side.pipe, sv[0]) == 0);
    auto* s = reinterpret_cast<uv_stream_t*>(&side.pipe);
    REQUIRE(uv_read_start(s, on_alloc, on_read) == 0);

    GuardLimits limits;
    limits.write_soft = 64 * 1024;
    limits.write_hard = 1024 * 1024;
    StreamGuard guard(StreamKind::Sip, limits, nullptr, uv_now(&loop));
    guard.established(uv_now(&loop));

    // Queue 256 KiB the peer never reads: over the soft bound.
    const std::string chunk(16 * 1024, 'x');
    std::vector<uv_write_t> reqs(16);
    for (auto& r : reqs) {
        uv_buf_t b = uv_buf_init(const_cast<char*>(chunk.data()), static_cast<unsigned>(chunk.size()));
        REQUIRE(uv_write(&r, s, &b, 1, nullptr) == 0);
    }
    CHECK(apply_back_pressure(s, guard, on_alloc, on_read));
    CHECK(guard.paused());

    // What the peer sends now is not read while paused.
    REQUIRE(::write(sv[1], "hello", 5) == 5);
    for (int i = 0; i < 5; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(side.got == 0);

    // The peer reads everything: the queue drains, reading resumes, "hello" arrives.
    char sink[65536];
    for (int i = 0; i < 1000 && uv_stream_get_write_queue_size(s) > 0; ++i) {
        while (::recv(sv[1], sink, sizeof sink, MSG_DONTWAIT) > 0) {
        }
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    CHECK(uv_stream_get_write_queue_size(s) == 0);
    CHECK(apply_back_pressure(s, guard, on_alloc, on_read));
    CHECK_FALSE(guard.paused());
    for (int i = 0; i < 5 && side.got == 0; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(side.got == 5);

    SUBCASE("over the hard bound the caller is told to close") {
        StreamGuard tight(StreamKind::Sip, GuardLimits{0, 0, 0, 0, 1024, 2048}, nullptr, 0);
        std::vector<uv_write_t> more(4);
        for (auto& r : more) {
            uv_buf_t b = uv_buf_init(const_cast<char*>(chunk.data()), static_cast<unsigned>(chunk.size()));
            REQUIRE(uv_write(&r, s, &b, 1, nullptr) == 0);
        }
        CHECK_FALSE(apply_back_pressure(s, tight, on_alloc, on_read));
        for (int i = 0; i < 1000 && uv_stream_get_write_queue_size(s) > 0; ++i) {
            while (::recv(sv[1], sink, sizeof sink, MSG_DONTWAIT) > 0) {
            }
            uv_run(&loop, UV_RUN_NOWAIT);
        }
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&side.pipe), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    ::close(sv[1]);
}
