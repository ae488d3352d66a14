// SPDX-License-Identifier: Apache-2.0
// app::AccountingHub's side of gateway calls: post_call from the gateway's thread, drain into the
// store with the allocation records, retry after a failed write, and the /metrics figures.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <uv.h>

#include "store_helpers.hpp"
#include "turnbridge/accounting/store.hpp"
#include "turnbridge/app/accounting_hub.hpp"

using namespace turnbridge;
using namespace turnbridge::accounting;
using namespace turnbridge::accounting::test;

namespace {

// A real store whose writes can be made to fail, as on a full or read-only disk.
class FlakyStore : public Store {
public:
    explicit FlakyStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}
    bool fail = false;
    int writes = 0;
    std::function<void()> before_write;   // runs inside write(): a test can block the control thread there

    using Store::write;
    bool write(const std::vector<AllocationRecord>& batch, const std::vector<CallRecord>& calls,
               std::int64_t now_ms) override {
        ++writes;
        if (before_write) before_write();
        return !fail && inner_->write(batch, calls, now_ms);
    }
    std::vector<UsageRow> usage(const UsageQuery& q, const std::map<std::string, Prices>& prices) override {
        return inner_->usage(q, prices);
    }
    std::optional<AllocationRecord> allocation(const std::string& id) override { return inner_->allocation(id); }
    std::vector<CallRecord> calls(const CallQuery& q) override { return inner_->calls(q); }
    std::map<std::string, std::uint64_t> relayed_bytes(const std::string& realm, std::int64_t since_ms) override {
        return inner_->relayed_bytes(realm, since_ms);
    }

private:
    std::unique_ptr<Store> inner_;
};

// A hub on its own loop over a store in a scratch directory, with a gateway realm and a plain one.
struct HubFixture {
    TempDir dir;
    uv_loop_t loop{};
    FlakyStore* store = nullptr;  // owned by the hub
    std::unique_ptr<app::AccountingHub> hub;
    std::shared_ptr<const config::Config> hub_config;

    explicit HubFixture(bool accounting = true, std::uint64_t plain_quota_bytes = 0) {
        auto cfg = std::make_shared<config::Config>();
        cfg->accounting.database = dir / "t.db";
        cfg->realms["example.org"].name = "example.org";
        cfg->realms["example.org"].gateway.enabled = true;
        cfg->realms["plain.org"].name = "plain.org";
        cfg->realms["plain.org"].quota_bytes = plain_quota_bytes;
        cfg->realms["plain.org"].quota_period = config::Realm::QuotaPeriod::Day;
        REQUIRE(uv_loop_init(&loop) == 0);
        std::unique_ptr<Store> s;
        if (accounting) {
            auto flaky = std::make_unique<FlakyStore>(Store::open(cfg->accounting.database, true));
            store = flaky.get();
            s = std::move(flaky);
        }
        hub_config = cfg;
        hub = std::make_unique<app::AccountingHub>(&loop, std::move(s), cfg, 1,
                                                   [](unsigned, std::uint64_t) { return false; });
    }
    ~HubFixture() {
        hub->close();
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    // What a reader sees in the file: what was committed, not the hub's memory.
    std::vector<CallRecord> stored_calls() { return Store::open(dir / "t.db", false)->calls({}); }
};

}  // namespace

TEST_SUITE_BEGIN("accounting");

TEST_CASE("hub: a call posted from another thread wakes the control loop and is written by drain") {
    HubFixture f;
    const auto c = call("c1-1", "alice", "example.org", kDay, 90'000);
    std::thread gateway([&] { f.hub->post_call(c); });
    gateway.join();
    CHECK(f.stored_calls().empty());  // nothing happens on the gateway's thread
    uv_run(&f.loop, UV_RUN_ONCE);     // the async handle runs drain() on the control thread
    const auto got = f.stored_calls();
    REQUIRE(got.size() == 1);
    check_call(got[0], c);
}

TEST_CASE("hub: calls and allocation records go to the store in one write; the admin API reads them back") {
    HubFixture f;
    f.hub->post(0, {record("i1-a", "alice", "example.org", kDay, scaled(1))}, app::WorkerStats{});
    f.hub->post_call(call("c1-1", "alice", "example.org", kDay, 90'000));
    f.hub->post_call(call("c1-2", "bob", "example.org", kDay + 1000, 0));
    f.hub->drain();
    CHECK(f.store->writes == 1);
    CHECK(f.store->allocation("i1-a"));
    const auto listed = f.hub->calls(CallQuery{"alice", std::nullopt, std::nullopt, std::nullopt, std::nullopt});
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].id == "c1-1");
    const auto rows = f.hub->usage(UsageQuery{std::nullopt, std::nullopt, std::nullopt, std::nullopt, GroupBy::Realm});
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].calls.calls == 2);
    CHECK(rows[0].calls.answered == 1);
}

TEST_CASE("hub: a failed write keeps the calls and the next drain writes them, once each") {
    HubFixture f;
    f.store->fail = true;
    f.hub->post_call(call("c1-1", "alice", "example.org", kDay, 90'000));
    f.hub->drain();
    CHECK(f.store->writes == 1);
    CHECK(f.stored_calls().empty());
    f.hub->post_call(call("c1-2", "alice", "example.org", kDay + 1000, 30'000));
    f.hub->drain();
    CHECK(f.store->writes == 2);
    CHECK(f.stored_calls().empty());
    // The disk is back: the next drain (here with nothing new posted) writes both.
    f.store->fail = false;
    f.hub->drain();
    const auto got = f.stored_calls();
    REQUIRE(got.size() == 2);
    CHECK(got[0].id == "c1-1");
    CHECK(got[1].id == "c1-2");
    // Written calls are not written again.
    const int writes = f.store->writes;
    f.hub->drain();
    CHECK(f.store->writes == writes);
    // Metrics counted each call once, when it arrived, whatever the store did.
    const auto m = f.hub->metrics();
    CHECK(m.calls.at("example.org").ended.at({"outbound", "answered", "carrier-a"}) == 2);
}

TEST_CASE("hub quotas: workers read over_quota from a snapshot, never waiting for a store write (issue 12)") {
    HubFixture f(true, 1000);
    const config::Realm& plain = f.hub_config->realms.at("plain.org");
    CHECK_FALSE(f.hub->over_quota(plain, "alice"));
    f.hub->post(0, {record("i1-a", "alice", "plain.org", kDay, scaled(100))}, app::WorkerStats{});  // 1,600 bytes
    f.hub->drain();
    CHECK(f.hub->over_quota(plain, "alice"));
    CHECK_FALSE(f.hub->over_quota(plain, "bob"));

    // The next write blocks inside the store (as SQLite does while another process holds the lock).
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<bool> writing{false};
    f.store->before_write = [&] { writing = true; released.wait(); };
    f.hub->post(0, {record("i1-b", "bob", "plain.org", kDay, scaled(100))}, app::WorkerStats{});
    std::thread control([&] { f.hub->drain(); });
    while (!writing) std::this_thread::yield();
    auto answer = std::async(std::launch::async, [&] { return f.hub->over_quota(plain, "alice"); });
    const bool answered = answer.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
    CHECK(answered);
    release.set_value();
    control.join();
    CHECK(answer.get());
    CHECK(f.hub->over_quota(plain, "bob"));   // published once the write committed
}

TEST_CASE("hub metrics: calls by realm, direction and result, answered seconds, bytes and packets per leg") {
    HubFixture f;
    auto in = call("c1-1", "alice", "example.org", kDay, 90'500, "PCMU/PCMU", 10);
    in.direction = "inbound";
    auto busy = call("c1-2", "alice", "example.org", kDay, 0, "", 20);
    busy.status = 486;
    busy.trunk = "uk";   // issue 14: the calls metric is labelled with the trunk
    f.hub->post_call(in);
    f.hub->post_call(busy);
    f.hub->post_call(call("c1-3", "alice", "example.org", kDay, 30'000, "opus/PCMU", 30));
    const auto m = f.hub->metrics();  // drains first
    REQUIRE(m.calls.count("example.org") == 1);
    CHECK(m.calls.count("plain.org") == 0);  // not a gateway realm
    const auto& c = m.calls.at("example.org");
    CHECK(c.ended == std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t>{
                         {{"inbound", "answered", "carrier-a"}, 1},
                         {{"outbound", "answered", "carrier-a"}, 1},
                         {{"outbound", "busy", "uk"}, 1}});
    CHECK(c.answered_seconds == doctest::Approx(120.5));
    // browser in, browser out, trunk in, trunk out: k + 1..4 packets, 100k + 1..4 bytes, k = 10, 20, 30.
    CHECK(c.packets == std::array<std::uint64_t, 4>{63, 66, 69, 72});
    CHECK(c.bytes == std::array<std::uint64_t, 4>{6003, 6006, 6009, 6012});
    CHECK(f.stored_calls().size() == 3);
}

TEST_CASE("hub metrics: a gateway realm shows zero calls before its first call ends") {
    HubFixture f;
    const auto m = f.hub->metrics();
    REQUIRE(m.calls.count("example.org") == 1);
    CHECK(m.calls.at("example.org").ended.empty());
    CHECK(m.calls.at("example.org").answered_seconds == 0);
}

TEST_CASE("hub with accounting off: calls are counted in metrics; the API lists none") {
    HubFixture f(false);
    f.hub->post_call(call("c1-1", "alice", "example.org", kDay, 1000));
    const auto m = f.hub->metrics();
    CHECK(m.calls.at("example.org").ended.at({"outbound", "answered", "carrier-a"}) == 1);
    CHECK(f.hub->calls(CallQuery{}).empty());
}

TEST_SUITE_END();
