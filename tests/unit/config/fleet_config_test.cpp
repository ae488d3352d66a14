// SPDX-License-Identifier: Apache-2.0
// [fleet]: many nodes on one PostgreSQL ledger (issue 15).
#include <doctest/doctest.h>

#include <string>

#include "config_errors.hpp"
#include "turnbridge/config/config.hpp"

using namespace turnbridge::config;

namespace {

constexpr const char* kPath = "/etc/turnbridge/turnbridge.toml";

// Line 1 is [server], line 2 its listener, line 3 [fleet]: a row's own lines start at line 4.
std::string with_fleet(const std::string& lines, const std::string& after = "") {
    return "[server]\nlisten = [\"127.0.0.1:3478\"]\n[fleet]\n" + lines +
           "\n[realm.\"example.org\"]\nusers = { test = \"secret\" }\n" + after;
}

}  // namespace

TEST_SUITE_BEGIN("config");

TEST_CASE("Every [fleet] key is read into its field; without [fleet] there is no fleet") {
    auto r = load_string(with_fleet("database = \"postgresql://tb@db/tb\"\nnode_id = \"turn:1\"\nregion = \"eu\"\n"
                                    "spool_max_rows = 5000\nlease_ttl = 12\nquota_outage = \"grace:2048\"\n"
                                    "drain_timeout = 60"),
                         kPath);
    // ':' is not allowed in node_id: allocation ids are NODE:BOOT-COUNTER.
    REQUIRE(std::holds_alternative<ConfigError>(r));
    CHECK(std::get<ConfigError>(r).key == "fleet.node_id");
    r = load_string(with_fleet("database = \"postgresql://tb@db/tb\"\nnode_id = \"turn-1.b_c\"\nregion = \"eu\"\n"
                               "spool_max_rows = 5000\nlease_ttl = 12\nquota_outage = \"grace:2048\"\n"
                               "drain_timeout = 60"),
                    kPath);
    if (auto* e = std::get_if<ConfigError>(&r)) FAIL(e->to_string());
    const Fleet& f = std::get<std::shared_ptr<const Config>>(r)->fleet;
    CHECK(f.enabled());
    CHECK(f.database == "postgresql://tb@db/tb");
    CHECK(f.node_id == "turn-1.b_c");
    CHECK(f.region == "eu");
    CHECK(f.spool_max_rows == 5000);
    CHECK(f.lease_ttl.count() == 12);
    CHECK(f.quota_outage == Fleet::QuotaOutage::Grace);
    CHECK(f.quota_grace_bytes == 2048);
    CHECK(f.drain_timeout.count() == 60);

    auto plain = load_string("[server]\nlisten = [\"127.0.0.1:3478\"]\n[realm.\"example.org\"]\nusers = { a = \"b\" }\n",
                             kPath);
    REQUIRE(std::holds_alternative<std::shared_ptr<const Config>>(plain));
    const Fleet& none = std::get<std::shared_ptr<const Config>>(plain)->fleet;
    CHECK_FALSE(none.enabled());
    CHECK(none.quota_outage == Fleet::QuotaOutage::Grace);
    CHECK(none.quota_grace_bytes == 10'000'000);  // 10 MB per user per node
}

TEST_CASE("[fleet] mistakes name the key") {
    test::check_errors({
        {with_fleet("region = \"eu\""), "fleet.database", 3, "needs database"},
        {with_fleet("database = \"\""), "fleet.database", 4, "conninfo"},
        {with_fleet("database = \"x\"\nnode_id = \"a b\""), "fleet.node_id", 5, "letters, digits"},
        {with_fleet("database = \"x\"\nspool_max_rows = 10"), "fleet.spool_max_rows", 5, ""},
        {with_fleet("database = \"x\"\nlease_ttl = 1"), "fleet.lease_ttl", 5, ""},
        {with_fleet("database = \"x\"\nquota_outage = \"grace\""), "fleet.quota_outage", 5, "fail_closed"},
        {with_fleet("database = \"x\"\nquota_outage = \"open\""), "fleet.quota_outage", 5, "grace:BYTES"},
        {with_fleet("database = \"x\"\nnode = \"a\""), "fleet.node", 5, ""},
        {with_fleet("database = \"x\"", "[accounting]\nenabled = false\n"), "fleet.database", 3, "needs accounting"},
    });
}

TEST_SUITE_END();
