// SPDX-License-Identifier: Apache-2.0
#pragma once
// Which worker handles a SIP message (issue 12: the gateway on every worker), without I/O or
// locks (the caller guards one shared instance). Every message is handled on the worker that owns
// its Call-ID:
//  - a Call-ID we generated (our INVITE toward a trunk, our forks toward browsers, our REGISTERs)
//    names its worker: owned_by() reads it back (see mark());
//  - a foreign Call-ID's new initial INVITE (no To tag) goes to the least loaded worker, and the
//    choice is remembered until its call ends (plus kLinger for retransmissions), or for kLinger
//    if no call comes of it (a 407-challenged INVITE, whose retry reuses the Call-ID);
//  - anything else with a foreign Call-ID and no entry (REGISTER, OPTIONS, junk) goes by a hash
//    of the Call-ID, and so does a new INVITE when the table is full.
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "turnbridge/sip/action.hpp"

namespace turnbridge::sip {

class Placement {
public:
    // 64*T1 (RFC 3261 §17.1.1.2 Timer B): how long a choice with no call behind it is kept.
    static constexpr std::chrono::milliseconds kLinger{64 * 500};

    Placement(unsigned workers, std::size_t capacity)
        : workers_(workers == 0 ? 1 : workers), capacity_(capacity), pending_(workers_, 0) {}
    void set_capacity(std::size_t capacity) { capacity_ = capacity; }

    // The worker for a message with `call_id`. `initial_invite`: an INVITE with no To tag.
    // `load[w]`: live calls of worker w. The least loaded takes a new call (ties: the lowest
    // index), counting the choices not yet started() as load too: a burst of INVITEs, each
    // challenged before any call starts, spreads instead of all going to one worker.
    // `prefer` (issue 14, attended transfer): a new call goes to that worker instead, where its
    // user's other live call is, so that the two can be joined there.
    unsigned route(Time now, std::string_view call_id, bool initial_invite, std::span<const std::uint32_t> load,
                   std::optional<unsigned> prefer = std::nullopt);
    // The worker `call_id` was placed on (or names), if any; nothing changes.
    std::optional<unsigned> find(std::string_view call_id) const;
    // A call was set up for `call_id` on its worker: keep the choice until finished().
    void started(std::string_view call_id);
    // Its call ended: the choice goes kLinger from now (retransmitted BYEs still find it).
    void finished(Time now, std::string_view call_id);
    // Drops choices whose time is up (route() does it too, a few at a time).
    void expire(Time now);
    std::size_t size() const { return table_.size(); }

    // A generated Call-ID's worker mark: Call-IDs of worker w start with mark(w) ("w3-").
    static std::string mark(unsigned worker);
    static std::optional<unsigned> owned_by(std::string_view call_id);
    unsigned hashed(std::string_view call_id) const;

private:
    struct Entry {
        unsigned worker = 0;
        std::optional<Time> until;   // none: a live call holds it
        bool pending = true;         // placed, no call started yet (counted in pending_)
    };
    void erase(std::unordered_map<std::string, Entry>::iterator it);
    unsigned workers_;
    std::size_t capacity_;
    std::unordered_map<std::string, Entry> table_;
    std::optional<Time> sweep_at_;
    std::vector<std::uint32_t> pending_;   // by worker
};

}  // namespace turnbridge::sip
