// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/base/auth_throttle.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "turnbridge/base/keyed_hash.hpp"
#include "turnbridge/base/log.hpp"

namespace turnbridge {

std::string_view to_string(AuthProtocol p) {
    switch (p) {
        case AuthProtocol::Turn: return "turn";
        case AuthProtocol::Sip: return "sip";
        case AuthProtocol::Admin: return "admin";
    }
    return "?";
}

AuthThrottle::AuthThrottle(std::uint32_t failures_per_minute, std::uint64_t seed) : seed_(seed) {
    set_limit(failures_per_minute);
}

std::uint64_t AuthThrottle::random_seed() {
    std::random_device rd;
    return std::uint64_t{rd()} << 32 | rd();
}

void AuthThrottle::set_limit(std::uint32_t failures_per_minute) {
    std::lock_guard lock(mu_);
    capacity_ = failures_per_minute;
    per_second_ = failures_per_minute / 60.0;
}

std::uint64_t AuthThrottle::key_of(const IpAddress& ip) const {
    return keyed_hash(seed_ ^ static_cast<std::uint64_t>(ip.family), ip.bytes.data(), ip.size());
}

std::uint64_t AuthThrottle::key_of(std::string_view realm, std::string_view user) const {
    return keyed_hash(keyed_hash(~seed_, realm), user);
}

void AuthThrottle::refill(Entry& e, Time now) const {
    if (now <= e.refilled) return;  // callers never go back in time; do not rely on it
    const double seconds = std::chrono::duration<double>(now - e.refilled).count();
    e.tokens = std::min(capacity_, e.tokens + seconds * per_second_);
    e.refilled = now;
}

std::uint32_t AuthThrottle::seconds_to_token(const Entry& e) const {
    if (per_second_ <= 0) return 0;
    return static_cast<std::uint32_t>(std::ceil(std::max(0.0, 1.0 - e.tokens) / per_second_));
}

AuthThrottle::Entry* AuthThrottle::find(Table* t, std::uint64_t key, Time now) {
    if (t == nullptr) return nullptr;
    Entry* set = &(*t)[key % kSets * kWays];
    for (std::size_t i = 0; i < kWays; ++i) {
        if (set[i].used && set[i].key == key) {
            refill(set[i], now);
            return &set[i];
        }
    }
    return nullptr;
}

AuthThrottle::Entry& AuthThrottle::find_or_insert(std::unique_ptr<Table>& t, std::uint64_t key, Time now) {
    if (!t) t = std::make_unique<Table>();  // once, on the first failure: ~200 KiB a table
    if (Entry* e = find(t.get(), key, now)) return *e;
    // A full set gives up the entry with the most tokens: the one furthest from being
    // throttled. A source that is being slowed down keeps its place however many new
    // sources or names a flood brings.
    Entry* set = &(*t)[key % kSets * kWays];
    Entry* victim = &set[0];
    for (std::size_t i = 0; i < kWays; ++i) {
        if (!set[i].used) {
            victim = &set[i];
            break;
        }
        refill(set[i], now);
        if (set[i].tokens > victim->tokens) victim = &set[i];
    }
    if (victim->used) ++counters_.evictions;
    *victim = Entry{key, true, capacity_, now, Time{}, 0, 0};
    return *victim;
}

void AuthThrottle::maybe_log(Entry& e, Time now, AuthProtocol p, const IpAddress& source, std::string_view user) {
    if (e.logged != Time{} && now - e.logged < kLogInterval) return;
    if (log_window_ == Time{} || now - log_window_ >= kLogInterval) {
        if (unlogged_sources_ != 0)
            log::warn("auth: {} failed and {} throttled authentications from {} more sources not reported one by one "
                      "(at most {} lines a minute)",
                      unlogged_failures_, unlogged_throttled_, unlogged_sources_, kMaxLogLines);
        log_window_ = now;
        log_lines_ = 0;
        unlogged_sources_ = unlogged_failures_ = unlogged_throttled_ = 0;
    }
    if (log_lines_ < kMaxLogLines) {
        ++log_lines_;
        log::warn("auth: {} failed and {} throttled authentication{} from {} since its last report (last: {} user '{}')",
                  e.failures_since_log, e.throttled_since_log,
                  e.failures_since_log + e.throttled_since_log == 1 ? "" : "s", source.to_string(), to_string(p), user);
    } else {
        ++unlogged_sources_;
        unlogged_failures_ += e.failures_since_log;
        unlogged_throttled_ += e.throttled_since_log;
    }
    e.logged = now;
    e.failures_since_log = 0;
    e.throttled_since_log = 0;
}

AuthThrottle::Admission AuthThrottle::admit(Time now, AuthProtocol p, const IpAddress& source, std::string_view realm,
                                            std::string_view user) {
    if (!armed_.load(std::memory_order_acquire)) return {};
    std::lock_guard lock(mu_);
    if (capacity_ <= 0) return {};
    Entry* s = find(sources_.get(), key_of(source), now);
    if (s == nullptr) return {};  // no recent failure from there: always checked
    Admission a;
    if (s->tokens < 1.0) {
        a = {true, seconds_to_token(*s)};
    } else if (s->tokens < capacity_ && (!realm.empty() || !user.empty())) {
        // A source with failures of its own also waits for the user's bucket.
        if (Entry* u = find(users_.get(), key_of(realm, user), now); u != nullptr && u->tokens < 1.0)
            a = {true, seconds_to_token(*u)};
    }
    if (a.throttled) {
        ++counters_.throttled[static_cast<std::size_t>(p)];
        ++s->throttled_since_log;
        maybe_log(*s, now, p, source, user);
    }
    return a;
}

void AuthThrottle::on_failure(Time now, AuthProtocol p, const IpAddress& source, std::string_view realm,
                              std::string_view user) {
    std::lock_guard lock(mu_);
    armed_.store(true, std::memory_order_release);
    ++counters_.failures[static_cast<std::size_t>(p)];
    Entry& s = find_or_insert(sources_, key_of(source), now);
    s.tokens = std::max(0.0, s.tokens - 1.0);
    ++s.failures_since_log;
    if (!realm.empty() || !user.empty()) {
        Entry& u = find_or_insert(users_, key_of(realm, user), now);
        u.tokens = std::max(0.0, u.tokens - 1.0);
    }
    maybe_log(s, now, p, source, user);
}

AuthThrottle::Counters AuthThrottle::counters() const {
    std::lock_guard lock(mu_);
    return counters_;
}

}  // namespace turnbridge
