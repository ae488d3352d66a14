// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/placement.hpp"

#include <charconv>
#include <functional>

namespace turnbridge::sip {

std::string Placement::mark(unsigned worker) { return "w" + std::to_string(worker) + "-"; }

std::optional<unsigned> Placement::owned_by(std::string_view call_id) {
    // "w<index>-<random>@turnbridge": both the mark and our host, so a stranger's "w1-x" is foreign.
    if (call_id.size() < 3 || call_id[0] != 'w' || !call_id.ends_with("@turnbridge")) return std::nullopt;
    unsigned w = 0;
    const char* first = call_id.data() + 1;
    const char* last = call_id.data() + call_id.size();
    auto [p, ec] = std::from_chars(first, last, w);
    if (ec != std::errc{} || p == first || p == last || *p != '-') return std::nullopt;
    return w;
}

unsigned Placement::hashed(std::string_view call_id) const {
    return static_cast<unsigned>(std::hash<std::string_view>{}(call_id) % workers_);
}

std::optional<unsigned> Placement::find(std::string_view call_id) const {
    if (auto w = owned_by(call_id)) return *w < workers_ ? std::optional<unsigned>(*w) : std::nullopt;
    if (auto it = table_.find(std::string(call_id)); it != table_.end()) return it->second.worker;
    return std::nullopt;
}

unsigned Placement::route(Time now, std::string_view call_id, bool initial_invite, std::span<const std::uint32_t> load,
                          std::optional<unsigned> prefer) {
    if (auto w = owned_by(call_id)) return *w < workers_ ? *w : hashed(call_id);
    if (sweep_at_ && *sweep_at_ <= now) expire(now);
    if (auto it = table_.find(std::string(call_id)); it != table_.end()) return it->second.worker;
    if (!initial_invite || table_.size() >= capacity_) return hashed(call_id);
    const auto weight = [&](unsigned w) { return (w < load.size() ? load[w] : 0) + pending_[w]; };
    unsigned best = 0;
    for (unsigned w = 1; w < workers_; ++w)
        if (weight(w) < weight(best)) best = w;
    if (prefer && *prefer < workers_) best = *prefer;
    table_.emplace(std::string(call_id), Entry{best, now + kLinger, true});
    ++pending_[best];
    if (!sweep_at_) sweep_at_ = now + kLinger;
    return best;
}

void Placement::started(std::string_view call_id) {
    auto it = table_.find(std::string(call_id));
    if (it == table_.end()) return;
    it->second.until.reset();
    if (it->second.pending) {
        it->second.pending = false;
        --pending_[it->second.worker];
    }
}

void Placement::erase(std::unordered_map<std::string, Entry>::iterator it) {
    if (it->second.pending) --pending_[it->second.worker];
    table_.erase(it);
}

void Placement::finished(Time now, std::string_view call_id) {
    if (auto it = table_.find(std::string(call_id)); it != table_.end()) {
        if (it->second.pending) {
            it->second.pending = false;
            --pending_[it->second.worker];
        }
        it->second.until = now + kLinger;
        if (!sweep_at_ || *sweep_at_ > now + kLinger) sweep_at_ = now + kLinger;
    }
}

void Placement::expire(Time now) {
    sweep_at_.reset();
    for (auto it = table_.begin(); it != table_.end();) {
        if (it->second.until && *it->second.until <= now) {
            erase(it++);
            continue;
        }
        if (it->second.until && (!sweep_at_ || *it->second.until < *sweep_at_)) sweep_at_ = it->second.until;
        ++it;
    }
}

}  // namespace turnbridge::sip
