// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/server/media_exchange.hpp"

#include <algorithm>
#include <thread>

namespace turnbridge::server {

MediaExchange::MediaExchange(const config::Config& cfg, unsigned workers)
    : ip_(cfg.media_ip), port_min_(cfg.media_port_min), port_max_(cfg.media_port_max),
      workers_(workers), boxes_(std::make_unique<Box[]>(2 * workers)), count_(2 * workers) {
    const std::size_t span = port_max_ >= port_min_ ? static_cast<std::size_t>(port_max_ - port_min_) + 1 : 0;
    owners_ = std::make_unique<std::atomic<std::uint16_t>[]>(span);
    for (std::size_t i = 0; i < span; ++i) owners_[i].store(kNoWorker, std::memory_order_relaxed);
    const std::size_t capacity = std::clamp<std::size_t>(2 * kMaxWaiting / std::max(workers, 1u), kMinWaiting, kMaxWaiting);
    // Every worker posts to every inbox (its own included: an allocation and a call on one worker).
    for (unsigned box = 0; box < count_; ++box) {
        boxes_[box].from.resize(workers);
        for (unsigned w = 0; w < workers; ++w) boxes_[box].from[w] = std::make_unique<base::SpscRing<MediaHandoff>>(capacity);
    }
}

void MediaExchange::set_port_owner(std::uint16_t port, unsigned worker) {
    if (port >= port_min_ && port <= port_max_)
        owners_[port - port_min_].store(static_cast<std::uint16_t>(worker), std::memory_order_release);
}

void MediaExchange::clear_port_owner(std::uint16_t port, unsigned worker) {
    if (port < port_min_ || port > port_max_) return;
    auto expected = static_cast<std::uint16_t>(worker);
    owners_[port - port_min_].compare_exchange_strong(expected, static_cast<std::uint16_t>(kNoWorker),
                                                       std::memory_order_acq_rel);
}

void MediaExchange::attach(unsigned box, uv_async_t* wake) {
    boxes_[box].wake.store(wake, std::memory_order_release);
}

void MediaExchange::detach(unsigned box) {
    Box& b = boxes_[box];
    b.wake.store(nullptr, std::memory_order_seq_cst);
    // A post that saw the handle before it was cleared may still wake it: wait for it (a few
    // instructions), so the owner can close the handle afterwards.
    while (b.posting.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
    for (auto& ring : b.from)
        if (ring) ring->pop_all([](const MediaHandoff&) {});
}

bool MediaExchange::post(unsigned box, unsigned poster, unsigned worker, turn::RelayHandle relay,
                         const Endpoint& relayed, const Endpoint& media, std::span<const std::uint8_t> bytes) {
    if (box >= count_ || bytes.size() > sizeof(MediaHandoff::buf)) return false;
    Box& b = boxes_[box];
    auto* ring = poster < b.from.size() ? b.from[poster].get() : nullptr;
    if (ring == nullptr) return false;
    b.posting.fetch_add(1, std::memory_order_seq_cst);
    uv_async_t* wake = b.wake.load(std::memory_order_seq_cst);
    const bool queued = wake != nullptr && ring->push([&](MediaHandoff& h) {
        h.worker = worker;
        h.relay = relay;
        h.relayed = relayed;
        h.media = media;
        h.size = static_cast<std::uint16_t>(bytes.size());
        std::copy(bytes.begin(), bytes.end(), h.buf.begin());
    });
    // One wake-up per batch: the owner clears `signalled` before it drains, so a post it may
    // miss sends a new one.
    if (queued && !b.signalled.exchange(true, std::memory_order_acq_rel)) uv_async_send(wake);
    b.posting.fetch_sub(1, std::memory_order_seq_cst);
    return queued;
}

void MediaExchange::take(unsigned box, std::vector<MediaHandoff>& into) {
    into.clear();
    Box& b = boxes_[box];
    b.signalled.exchange(false, std::memory_order_acq_rel);
    for (auto& ring : b.from)
        if (ring) ring->pop_all([&](const MediaHandoff& h) { into.push_back(h); });
}

}  // namespace turnbridge::server
