// SPDX-License-Identifier: Apache-2.0
// MediaExchange N x N (issue 12): relayed media toward the worker owning a media port, answers
// back to the allocation's worker, one ring per (poster, inbox) pair, the shared port cursor.
#include <doctest/doctest.h>

#include <thread>

#include "turnbridge/server/media_exchange.hpp"

using namespace turnbridge;
using namespace turnbridge::server;

namespace {

struct Wakes {
    uv_loop_t loop{};
    std::vector<uv_async_t> asyncs;
    explicit Wakes(std::size_t n) : asyncs(n) {
        REQUIRE(uv_loop_init(&loop) == 0);
        for (auto& a : asyncs) uv_async_init(&loop, &a, [](uv_async_t*) {});
    }
    ~Wakes() {
        for (auto& a : asyncs) uv_close(reinterpret_cast<uv_handle_t*>(&a), nullptr);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
};

config::Config media_config() {
    config::Config cfg;
    cfg.media_ip = *IpAddress::parse("127.0.0.1");
    cfg.media_port_min = 41000;
    cfg.media_port_max = 41009;
    return cfg;
}

}  // namespace

TEST_CASE("media exchange: the port table names the worker owning each media port") {
    const auto cfg = media_config();
    MediaExchange x(cfg, 3);
    CHECK(x.workers() == 3);
    CHECK(x.port_owner(41000) == MediaExchange::kNoWorker);
    CHECK(x.port_owner(40999) == MediaExchange::kNoWorker);   // outside the range
    x.set_port_owner(41004, 2);
    CHECK(x.port_owner(41004) == 2);
    x.clear_port_owner(41004, 1);   // not its owner: no effect (the port was taken over)
    CHECK(x.port_owner(41004) == 2);
    x.clear_port_owner(41004, 2);
    CHECK(x.port_owner(41004) == MediaExchange::kNoWorker);
    x.set_port_owner(50000, 1);   // outside: ignored
    CHECK(x.port_owner(50000) == MediaExchange::kNoWorker);
    // One cursor for every worker.
    const auto a = x.next_port();
    const auto b = x.next_port();
    CHECK(b == a + 1);
}

TEST_CASE("media exchange: every worker posts to every worker's gateway and allocations, itself included") {
    const auto cfg = media_config();
    MediaExchange x(cfg, 2);
    Wakes w(4);
    for (unsigned box = 0; box < 4; ++box) x.attach(box, &w.asyncs[box]);
    const Endpoint relayed = *Endpoint::parse("203.0.113.9:50000");
    const Endpoint media = *Endpoint::parse("127.0.0.1:41002");
    const std::uint8_t bytes[] = {1, 2, 3};
    // Allocation on worker 1 -> call on worker 0 and on worker 1 (same thread: its own ring).
    CHECK(x.post(x.gateway_box(0), 1, 1, 77, relayed, media, bytes));
    CHECK(x.post(x.gateway_box(1), 1, 1, 78, relayed, media, bytes));
    // Call on worker 0 -> allocation on worker 1; call on worker 1 -> allocation on worker 0.
    CHECK(x.post(1, 0, 1, 77, relayed, media, bytes));
    CHECK(x.post(0, 1, 0, 79, relayed, media, bytes));
    std::vector<MediaHandoff> got;
    x.take(x.gateway_box(0), got);
    REQUIRE(got.size() == 1);
    CHECK(got[0].worker == 1);
    CHECK(got[0].relay == 77);
    CHECK(got[0].media == media);
    CHECK(got[0].bytes().size() == 3);
    x.take(x.gateway_box(1), got);
    REQUIRE(got.size() == 1);
    CHECK(got[0].relay == 78);
    x.take(1, got);
    REQUIRE(got.size() == 1);
    CHECK(got[0].relay == 77);
    x.take(0, got);
    REQUIRE(got.size() == 1);
    CHECK(got[0].relay == 79);
    // Detached: dropped. Too big: dropped.
    x.detach(x.gateway_box(1));
    CHECK_FALSE(x.post(x.gateway_box(1), 0, 0, 1, relayed, media, bytes));
    std::vector<std::uint8_t> big(2000);
    CHECK_FALSE(x.post(x.gateway_box(0), 0, 0, 1, relayed, media, big));
    for (unsigned box : {0u, 1u, 2u}) x.detach(box);
}

TEST_CASE("media exchange: a full ring drops (bounded), two producers into one inbox never share a ring") {
    const auto cfg = media_config();
    MediaExchange x(cfg, 2);
    Wakes w(4);
    x.attach(x.gateway_box(0), &w.asyncs[0]);
    const Endpoint ep = *Endpoint::parse("127.0.0.1:41000");
    const std::uint8_t bytes[] = {9};
    constexpr int kEach = 20000;
    std::atomic<int> queued{0};
    std::atomic<int> finished{0};
    auto producer = [&](unsigned poster) {
        for (int i = 0; i < kEach; ++i)
            if (x.post(x.gateway_box(0), poster, poster, static_cast<turn::RelayHandle>(i), ep, ep, bytes)) ++queued;
        ++finished;
    };
    std::thread t0(producer, 0), t1(producer, 1);
    std::vector<MediaHandoff> got;
    std::size_t taken[2] = {0, 0};
    std::int64_t last[2] = {-1, -1};
    bool ordered = true;
    const auto drain = [&] {
        x.take(x.gateway_box(0), got);
        for (const auto& h : got) {
            ++taken[h.worker];
            // Each producer's datagrams arrive in order (one ring per pair).
            if (static_cast<std::int64_t>(h.relay) <= last[h.worker]) ordered = false;
            last[h.worker] = static_cast<std::int64_t>(h.relay);
        }
    };
    while (finished.load() < 2) drain();
    t0.join();
    t1.join();
    drain();
    CHECK(ordered);
    CHECK(taken[0] + taken[1] == static_cast<std::size_t>(queued.load()));
    CHECK(taken[0] > 0);
    CHECK(taken[1] > 0);
    x.detach(x.gateway_box(0));
}
