// SPDX-License-Identifier: Apache-2.0
#pragma once
// Byte quotas without a lock on the workers' side (ARCHITECTURE.md: workers read what they need
// from an immutable snapshot the control thread publishes, never through a lock it may hold
// during a store write). The control thread owns a QuotaBook: each realm's usage per account in
// its current quota period, loaded from the store when the period starts and kept current with
// the deltas of every batch it writes. After each change it publishes a QuotaSnapshot, which
// workers load atomically on Allocate and Refresh. No clock and no store here: times and rows
// come in as values.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

namespace turnbridge::accounting {

class QuotaSnapshot {
public:
    // Relayed payload bytes of `account` in `realm` in the period starting at `period_start_ms`:
    // 0 when the snapshot is of an earlier period (a new period starts empty; the control thread
    // loads it at its next drain) or does not know the realm or the account.
    std::uint64_t used(const std::string& realm, const std::string& account, std::int64_t period_start_ms) const;

private:
    friend class QuotaBook;
    struct Realm {
        std::int64_t period_start_ms = 0;
        std::unordered_map<std::string, std::uint64_t> bytes;   // account -> payload bytes
    };
    std::unordered_map<std::string, Realm> realms_;
};

class QuotaBook {
public:
    // The period of `realm` that the book holds, if any (the caller reloads when it moved on).
    bool holds(const std::string& realm, std::int64_t period_start_ms) const;
    // Replaces what the book knows of `realm` with the store's totals for a new period.
    void load(const std::string& realm, std::int64_t period_start_ms, std::map<std::string, std::uint64_t> bytes);
    // Forgets realms that no longer have a quota.
    template <class KeepFn> void retain(KeepFn keep) { std::erase_if(realms_, [&](const auto& r) { return !keep(r.first); }); }
    // Bytes the store gained for `account` of `realm` (ignored for a realm the book does not hold).
    void add(const std::string& realm, const std::string& account, std::uint64_t bytes);
    // An immutable copy for the workers.
    std::shared_ptr<const QuotaSnapshot> snapshot() const;

private:
    std::unordered_map<std::string, QuotaSnapshot::Realm> realms_;
};

}  // namespace turnbridge::accounting
