// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/net/media_exchange.hpp"

#include <algorithm>

namespace turnbridge::net {

MediaExchange::MediaExchange(const config::Config& cfg, unsigned workers)
    : ip_(cfg.media_ip), port_min_(cfg.media_port_min), port_max_(cfg.media_port_max), boxes_(workers + 1) {}

void MediaExchange::attach(unsigned box, uv_async_t* wake) {
    std::lock_guard lock(boxes_.at(box).mu);
    boxes_[box].wake = wake;
}

void MediaExchange::detach(unsigned box) {
    std::lock_guard lock(boxes_.at(box).mu);
    boxes_[box].wake = nullptr;
    boxes_[box].waiting.clear();
}

bool MediaExchange::post(unsigned box, unsigned worker, turn::RelayHandle relay, const Endpoint& relayed,
                         const Endpoint& media, std::span<const std::uint8_t> bytes) {
    Box& b = boxes_.at(box);
    std::lock_guard lock(b.mu);
    if (b.wake == nullptr || b.waiting.size() >= kMaxWaiting || bytes.size() > MediaHandoff{}.buf.size()) return false;
    MediaHandoff& h = b.waiting.emplace_back();
    h.worker = worker;
    h.relay = relay;
    h.relayed = relayed;
    h.media = media;
    h.size = static_cast<std::uint16_t>(bytes.size());
    std::copy(bytes.begin(), bytes.end(), h.buf.begin());
    // One wake-up per batch: the owner takes everything waiting when it runs.
    if (b.waiting.size() == 1) uv_async_send(b.wake);
    return true;
}

void MediaExchange::take(unsigned box, std::vector<MediaHandoff>& into) {
    into.clear();
    Box& b = boxes_.at(box);
    std::lock_guard lock(b.mu);
    into.swap(b.waiting);
}

}  // namespace turnbridge::net
