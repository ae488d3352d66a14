// SPDX-License-Identifier: Apache-2.0
#include "fleet_config.hpp"

#include <unistd.h>

#include <climits>
#include <fmt/format.h>

namespace turnbridge::config::detail {
namespace {

constexpr std::int64_t kMaxSeconds = 7 * 86'400;
constexpr std::int64_t kMaxRows = 1'000'000'000;
constexpr std::size_t kMaxNodeId = 63;

std::string host_name() {
    char name[HOST_NAME_MAX + 1] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "turnbridge";
    return name;
}

// A node id names the node in PostgreSQL rows and in allocation ids ("NODE:BOOT-COUNTER", which
// the admin API takes in a URL path): host-name characters and '_', no ':'.
bool valid_node_id(std::string_view id) {
    if (id.empty() || id.size() > kMaxNodeId) return false;
    for (char c : id)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_'))
            return false;
    return true;
}

}  // namespace

Fleet load_fleet(const Reader& r, const Field& f) {
    const auto& t = r.as_table(f);
    r.only_keys(t, "fleet", {"database", "node_id", "region", "spool_max_rows", "lease_ttl", "quota_outage",
                             "drain_timeout"});
    Fleet fleet;
    if (auto v = r.get(t, "fleet", "database")) {
        fleet.database = r.as_string(*v);
        if (fleet.database.empty())
            r.fail(*v, R"(expected a libpq conninfo or URI, like "postgresql://turnbridge@db.example/turnbridge")");
    } else {
        r.fail(f.line(), "fleet.database", "[fleet] needs database (a libpq conninfo or postgresql:// URI)");
    }
    fleet.node_id = host_name();
    if (auto v = r.get(t, "fleet", "node_id")) fleet.node_id = r.as_string(*v);
    if (!valid_node_id(fleet.node_id)) {
        const auto v = r.get(t, "fleet", "node_id");
        const std::string why = fmt::format(
            "expected 1 to {} letters, digits, '-', '.' or '_', got \"{}\"", kMaxNodeId, fleet.node_id);
        if (v) r.fail(*v, why);
        r.fail(f.line(), "fleet.node_id", why + " (the host name; set node_id)");
    }
    if (auto v = r.get(t, "fleet", "region")) fleet.region = r.as_string(*v);
    if (auto v = r.get(t, "fleet", "spool_max_rows"))
        fleet.spool_max_rows = static_cast<std::uint64_t>(r.as_integer(*v, 1000, kMaxRows));
    if (auto v = r.get(t, "fleet", "lease_ttl")) fleet.lease_ttl = std::chrono::seconds(r.as_integer(*v, 2, kMaxSeconds));
    if (auto v = r.get(t, "fleet", "drain_timeout"))
        fleet.drain_timeout = std::chrono::seconds(r.as_integer(*v, 0, kMaxSeconds));
    if (auto v = r.get(t, "fleet", "quota_outage")) {
        const std::string s = r.as_string(*v);
        if (s == "fail_closed") {
            fleet.quota_outage = Fleet::QuotaOutage::FailClosed;
        } else if (s == "fail_open") {
            fleet.quota_outage = Fleet::QuotaOutage::FailOpen;
        } else if (s.rfind("grace:", 0) == 0 && s.size() > 6 && s.size() < 26 &&
                   s.find_first_not_of("0123456789", 6) == std::string::npos) {
            fleet.quota_outage = Fleet::QuotaOutage::Grace;
            fleet.quota_grace_bytes = std::stoull(s.substr(6));
        } else {
            r.fail(*v, fmt::format(R"(expected "fail_closed", "grace:BYTES" or "fail_open", got "{}")", s));
        }
    }
    return fleet;
}

}  // namespace turnbridge::config::detail
