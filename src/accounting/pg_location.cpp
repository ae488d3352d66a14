// SPDX-License-Identifier: Apache-2.0
// SIP location across nodes (issue 15), in PostgreSQL: which node holds each browser's
// registration. Written and read by the fleet shipper's thread only (fleet_location.cpp), never
// by a worker: a REGISTER or an inbound INVITE never waits on the database.
#include <fmt/format.h>

#include "pg_conn.hpp"

namespace turnbridge::accounting {

// A node's rows outlive it when it dies (kill -9); readers join fleet_nodes and ignore a node
// whose heartbeat is over 3 s old, and the node replaces all its rows when it starts again.
std::string location_schema_sql() {
    return R"(
ALTER TABLE fleet_nodes ADD COLUMN sip TEXT NOT NULL DEFAULT '';
CREATE TABLE fleet_locations (
    aor TEXT NOT NULL, instance TEXT NOT NULL, node TEXT NOT NULL, expires TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (aor, instance, node));
CREATE INDEX fleet_locations_by_node ON fleet_locations (node);
)";
}

bool PgLedger::sync_locations(const std::string& node, const std::vector<LocationRow>& upserts,
                              const std::vector<LocationRow>& removed, bool replace_all) {
    if (!connect()) return false;
    try {
        conn_->exec("BEGIN");
        if (replace_all) conn_->exec("DELETE FROM fleet_locations WHERE node = $1", {node});
        for (const auto& r : removed)
            conn_->exec("DELETE FROM fleet_locations WHERE aor = $1 AND instance = $2 AND node = $3",
                        {r.aor, r.instance, node});
        for (const auto& r : upserts)
            conn_->exec("INSERT INTO fleet_locations (aor, instance, node, expires) "
                        "VALUES ($1, $2, $3, now() + make_interval(secs => $4)) ON CONFLICT (aor, instance, node) "
                        "DO UPDATE SET expires = excluded.expires",
                        {r.aor, r.instance, node, std::to_string(r.expires_in_s)});
        conn_->exec("COMMIT");
        return true;
    } catch (const PgError& e) {
        error_ = e.what();
        conn_.reset();   // the transaction dies with the connection
        return false;
    }
}

std::optional<std::vector<RemoteLocation>> PgLedger::remote_locations(const std::string& node) {
    if (!connect()) return std::nullopt;
    try {
        auto res = conn_->exec("SELECT aor, node FROM fleet_locations WHERE node <> $1 AND expires > now()", {node});
        std::vector<RemoteLocation> out;
        out.reserve(static_cast<std::size_t>(res.rows()));
        for (int i = 0; i < res.rows(); ++i) out.push_back({res.text(i, 0), res.text(i, 1)});
        return out;
    } catch (const PgError& e) {
        error_ = e.what();
        conn_.reset();
        return std::nullopt;
    }
}

}  // namespace turnbridge::accounting
