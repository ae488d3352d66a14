// SPDX-License-Identifier: Apache-2.0
// Which worker handles a SIP message (issue 12): sip::Placement.
#include <doctest/doctest.h>

#include <array>

#include "turnbridge/sip/placement.hpp"

using namespace turnbridge::sip;
using namespace std::chrono_literals;

namespace {
const Time kT0 = Time{} + 100h;
}

TEST_CASE("placement: our Call-IDs name their worker") {
    CHECK(Placement::owned_by(Placement::mark(3) + "00ab@turnbridge") == 3u);
    CHECK(Placement::owned_by("w0-1@turnbridge") == 0u);
    CHECK_FALSE(Placement::owned_by("w1-abc@example.org"));   // not our host
    CHECK_FALSE(Placement::owned_by("wx-abc@turnbridge"));
    CHECK_FALSE(Placement::owned_by("w12abc@turnbridge"));
    CHECK_FALSE(Placement::owned_by("abc"));
    Placement p(2, 16);
    const std::array<std::uint32_t, 2> load{0, 5};
    CHECK(p.route(kT0, "w1-ff@turnbridge", true, load) == 1);
    CHECK(p.size() == 0);   // never remembered
    // A mark beyond the workers there are (a restart with fewer threads): by hash.
    CHECK(p.route(kT0, "w7-ff@turnbridge", false, load) == p.hashed("w7-ff@turnbridge"));
}

TEST_CASE("placement: a new INVITE goes to the least loaded worker and stays there") {
    Placement p(3, 16);
    std::array<std::uint32_t, 3> load{4, 2, 3};
    CHECK(p.route(kT0, "a@b", true, load) == 1);
    load = {0, 9, 9};
    // The retry after a 407 (same Call-ID, still no To tag) and everything else of the call.
    CHECK(p.route(kT0 + 1s, "a@b", true, load) == 1);
    CHECK(p.route(kT0 + 2s, "a@b", false, load) == 1);
    p.started("a@b");
    CHECK(p.route(kT0 + 1h, "a@b", false, load) == 1);   // a live call holds it however long
    p.finished(kT0 + 1h, "a@b");
    CHECK(p.route(kT0 + 1h + 10s, "a@b", false, load) == 1);   // retransmissions within 64*T1
    p.expire(kT0 + 1h + Placement::kLinger);
    CHECK(p.size() == 0);
    // Ties: the lowest index.
    load = {1, 1, 1};
    CHECK(p.route(kT0, "c@d", true, load) == 0);
}

TEST_CASE("placement: a burst of new INVITEs spreads before any call starts") {
    Placement p(2, 16);
    const std::array<std::uint32_t, 2> load{0, 0};
    unsigned on[2] = {0, 0};
    for (int i = 0; i < 8; ++i) ++on[p.route(kT0, "burst" + std::to_string(i), true, load)];
    CHECK(on[0] == 4);
    CHECK(on[1] == 4);
    // A started call stops counting as pending (the live count holds it); an expired choice too.
    Placement q(2, 16);
    CHECK(q.route(kT0, "a", true, load) == 0);
    q.started("a");
    CHECK(q.route(kT0, "b", true, load) == 0);   // "a" is now in `load` (here: not), not pending
    CHECK(q.route(kT0, "c", true, load) == 1);   // "b" pending on 0
    q.expire(kT0 + Placement::kLinger);           // "b" and "c" expire; "a" is held by its call
    CHECK(q.size() == 1);
    CHECK(q.route(kT0 + Placement::kLinger, "d", true, load) == 0);
}

TEST_CASE("placement: a choice no call came of expires after 64*T1") {
    Placement p(2, 16);
    const std::array<std::uint32_t, 2> load{1, 0};
    CHECK(p.route(kT0, "x@y", true, load) == 1);
    CHECK(p.size() == 1);
    CHECK(p.route(kT0 + Placement::kLinger - 1ms, "other", false, load) == p.hashed("other"));
    CHECK(p.size() == 1);
    p.route(kT0 + Placement::kLinger, "other", false, load);   // route() sweeps when due
    CHECK(p.size() == 0);
}

TEST_CASE("placement: other foreign messages go by hash; a full table too") {
    Placement p(4, 2);
    const std::array<std::uint32_t, 4> load{3, 3, 0, 3};
    for (const char* id : {"r1@h", "r2@h", "r3@h", "r4@h"}) {
        CHECK(p.route(kT0, id, false, load) == p.hashed(id));   // REGISTER, OPTIONS...
        CHECK(p.route(kT0, id, false, load) == p.route(kT0, id, false, load));
    }
    CHECK(p.size() == 0);
    CHECK(p.route(kT0, "i1", true, load) == 2);
    CHECK(p.route(kT0, "i2", true, load) == 2);
    CHECK(p.size() == 2);
    CHECK(p.route(kT0, "i3", true, load) == p.hashed("i3"));   // full: by hash, not remembered
    CHECK(p.size() == 2);
    unsigned seen = 0;
    for (int i = 0; i < 64; ++i) seen |= 1u << p.hashed("h" + std::to_string(i));
    CHECK(seen == 0xF);   // the hash spreads over every worker
}
