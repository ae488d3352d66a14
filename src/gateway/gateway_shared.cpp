// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/gateway_shared.hpp"

#include <algorithm>

namespace turnbridge::gateway {

GatewayShared::GatewayShared(unsigned workers, std::size_t placements)
    : workers_(workers == 0 ? 1 : workers), placement_(workers_, placements), loads_(workers_),
      load_(std::make_unique<std::atomic<std::uint32_t>[]>(workers_)), boxes_(std::make_unique<Box[]>(workers_)) {}

unsigned GatewayShared::route(sip::Time now, std::string_view call_id, bool initial_invite, std::string_view user) {
    std::optional<unsigned> prefer;
    if (initial_invite && !user.empty()) {
        std::lock_guard lock(live_mu_);
        if (auto it = user_workers_.find(user); it != user_workers_.end())
            for (unsigned w = 0; w < it->second.size(); ++w)
                if (it->second[w] > 0 && (!prefer || it->second[w] > it->second[*prefer])) prefer = w;
    }
    std::lock_guard lock(placement_mu_);
    for (unsigned w = 0; w < workers_; ++w) loads_[w] = load_[w].load(std::memory_order_relaxed);
    return placement_.route(now, call_id, initial_invite, loads_, prefer);
}

std::optional<unsigned> GatewayShared::placed(std::string_view call_id) const {
    std::lock_guard lock(placement_mu_);
    return placement_.find(call_id);
}

void GatewayShared::count_user(unsigned worker, const std::string& key, int delta) {
    if (worker >= workers_) return;
    auto& by_worker = user_workers_[key];
    by_worker.resize(workers_);
    by_worker[worker] = delta > 0 ? by_worker[worker] + 1 : by_worker[worker] == 0 ? 0 : by_worker[worker] - 1;
    if (std::all_of(by_worker.begin(), by_worker.end(), [](std::uint32_t n) { return n == 0; })) user_workers_.erase(key);
}

void GatewayShared::set_placements(std::size_t n) {
    std::lock_guard lock(placement_mu_);
    placement_.set_capacity(n);
}

void GatewayShared::call_started(unsigned worker, const std::string& realm, const std::string& user,
                                 const std::string& call_id) {
    if (worker < workers_) load_[worker].fetch_add(1, std::memory_order_relaxed);
    {
        std::lock_guard lock(placement_mu_);
        placement_.started(call_id);
    }
    std::lock_guard lock(live_mu_);
    ++realm_calls_[realm];
    if (!user.empty()) {
        ++user_calls_[user + "@" + realm];
        count_user(worker, user + "@" + realm, 1);
    }
}

void GatewayShared::add_user(unsigned worker, const std::string& realm, const std::string& user) {
    std::lock_guard lock(live_mu_);
    ++user_calls_[user + "@" + realm];
    count_user(worker, user + "@" + realm, 1);
}

void GatewayShared::drop_user(unsigned worker, const std::string& realm, const std::string& user) {
    std::lock_guard lock(live_mu_);
    const std::string key = user + "@" + realm;
    if (auto it = user_calls_.find(key); it != user_calls_.end() && --it->second == 0) user_calls_.erase(it);
    count_user(worker, key, -1);
}

void GatewayShared::hold_placement(const std::string& call_id) {
    std::lock_guard lock(placement_mu_);
    placement_.started(call_id);
}

void GatewayShared::release_placement(sip::Time now, const std::string& call_id) {
    std::lock_guard lock(placement_mu_);
    placement_.finished(now, call_id);
}

void GatewayShared::call_ended(sip::Time now, unsigned worker, const std::string& realm, const std::string& user,
                               const std::string& call_id) {
    if (worker < workers_) load_[worker].fetch_sub(1, std::memory_order_relaxed);
    {
        std::lock_guard lock(placement_mu_);
        placement_.finished(now, call_id);
    }
    std::lock_guard lock(live_mu_);
    const auto drop = [](auto& map, const std::string& key) {
        auto it = map.find(key);
        if (it != map.end() && --it->second == 0) map.erase(it);
    };
    drop(realm_calls_, realm);
    if (!user.empty()) {
        drop(user_calls_, user + "@" + realm);
        count_user(worker, user + "@" + realm, -1);
    }
}

std::pair<std::uint32_t, std::uint32_t> GatewayShared::live(const std::string& realm, const std::string& user) const {
    std::lock_guard lock(live_mu_);
    std::pair<std::uint32_t, std::uint32_t> n{0, 0};
    if (auto it = realm_calls_.find(realm); it != realm_calls_.end()) n.first = it->second;
    if (!user.empty())
        if (auto it = user_calls_.find(user + "@" + realm); it != user_calls_.end()) n.second = it->second;
    return n;
}

void GatewayShared::attach(unsigned w, std::function<void()> wake) {
    std::lock_guard lock(boxes_[w].mu);
    boxes_[w].wake = std::move(wake);
}

void GatewayShared::detach(unsigned w) {
    std::lock_guard lock(boxes_[w].mu);
    boxes_[w].wake = nullptr;
    boxes_[w].mail.clear();
    boxes_[w].bytes = 0;
}

void GatewayShared::post(unsigned w, SipMail mail) {
    if (w >= workers_) return;
    Box& b = boxes_[w];
    std::lock_guard lock(b.mu);
    if (!b.wake) return;
    if (b.mail.size() >= kMaxMail || b.bytes + mail.bytes.size() > kMaxMailBytes) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const bool was_empty = b.mail.empty();
    b.bytes += mail.bytes.size();
    b.mail.push_back(std::move(mail));
    if (was_empty) b.wake();
}

void GatewayShared::take(unsigned w, std::vector<SipMail>& into) {
    into.clear();
    std::lock_guard lock(boxes_[w].mu);
    into.swap(boxes_[w].mail);
    boxes_[w].bytes = 0;
}

}  // namespace turnbridge::gateway
