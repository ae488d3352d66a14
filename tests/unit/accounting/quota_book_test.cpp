// SPDX-License-Identifier: Apache-2.0
// accounting::QuotaBook and the snapshot workers read byte quotas from (issue 12: a worker never
// waits for the store).
#include <doctest/doctest.h>

#include "turnbridge/accounting/quota_book.hpp"

using namespace turnbridge::accounting;

namespace {
constexpr std::int64_t kDay1 = 1'000 * 86'400 * 20'000LL;
constexpr std::int64_t kDay2 = kDay1 + 86'400'000;
}  // namespace

TEST_SUITE_BEGIN("accounting");

TEST_CASE("quota snapshot: a loaded period's usage plus the written deltas, per realm and account") {
    QuotaBook book;
    book.load("example.org", kDay1, {{"alice", 1000}, {"bob", 5}});
    book.add("example.org", "alice", 500);
    book.add("example.org", "carol", 7);     // first traffic of an account in this period
    book.add("other.org", "alice", 99);      // a realm without a quota is not kept
    const auto s = book.snapshot();
    CHECK(s->used("example.org", "alice", kDay1) == 1500);
    CHECK(s->used("example.org", "bob", kDay1) == 5);
    CHECK(s->used("example.org", "carol", kDay1) == 7);
    CHECK(s->used("example.org", "dave", kDay1) == 0);
    CHECK(s->used("other.org", "alice", kDay1) == 0);
}

TEST_CASE("quota snapshot: published copies do not change when the book does") {
    QuotaBook book;
    book.load("example.org", kDay1, {{"alice", 10}});
    const auto before = book.snapshot();
    book.add("example.org", "alice", 90);
    CHECK(before->used("example.org", "alice", kDay1) == 10);
    CHECK(book.snapshot()->used("example.org", "alice", kDay1) == 100);
}

TEST_CASE("quota snapshot: a new period starts at zero until the control thread loads it") {
    QuotaBook book;
    book.load("example.org", kDay1, {{"alice", 1000}});
    CHECK(book.holds("example.org", kDay1));
    CHECK_FALSE(book.holds("example.org", kDay2));
    CHECK(book.snapshot()->used("example.org", "alice", kDay2) == 0);
    book.load("example.org", kDay2, {{"alice", 3}});
    CHECK(book.snapshot()->used("example.org", "alice", kDay2) == 3);
    CHECK(book.snapshot()->used("example.org", "alice", kDay1) == 0);
}

TEST_CASE("quota snapshot: a realm whose quota was taken away is forgotten") {
    QuotaBook book;
    book.load("example.org", kDay1, {{"alice", 1000}});
    book.load("other.org", kDay1, {{"alice", 1000}});
    book.retain([](const std::string& realm) { return realm == "other.org"; });
    CHECK(book.snapshot()->used("example.org", "alice", kDay1) == 0);
    CHECK(book.snapshot()->used("other.org", "alice", kDay1) == 1000);
}

TEST_SUITE_END();
