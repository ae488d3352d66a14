// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fleet mode (issue 15): the fleet's ledger in PostgreSQL, through libpq. The only code that
// includes <libpq-fe.h> is src/accounting/pg_*. Blocking calls: used from the shipper's own
// thread and by `turnbridge report`, never from a loop that relays.
//
// Tables (schema versioned in turnbridge_schema, migrated under an advisory lock by the first
// node that connects):
// - fleet_intervals: one row per shipped outbox row, keyed (node, boot, allocation, seq), with
//   its deltas: the exact ledger, and what makes a replayed batch add nothing.
// - fleet_allocations: per allocation id, the sums of its intervals (the SQLite columns + node).
// - fleet_hourly: per (UTC hour, realm, account, node), as SQLite's hourly table.
// - fleet_nodes: the registry, one heartbeat row per node.
// - fleet_quota, fleet_leases: fleet-wide byte quotas (pg_leases.hpp).
// - fleet_calls: every node's gateway call records, keyed (node, id).
// - fleet_locations: browsers' registrations, (aor, instance, node, expires).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/accounting/outbox.hpp"
#include "turnbridge/accounting/store.hpp"

namespace turnbridge::accounting {

class PgConn;  // src/accounting/pg_conn.hpp

struct NodeHeartbeat {
    std::string node, region, listen, relay;
    std::string sip;               // its first SIP listener, "ip:port" ("" without a gateway)
    std::int64_t boot = 0;
    std::string state = "ready";   // "ready" | "draining"
    std::uint64_t allocations = 0, spool_rows = 0;
};

struct FleetNode {
    NodeHeartbeat beat;
    double age_seconds = 0;        // since its last heartbeat; over 3 s = dead
};

// One browser registration held by this node (issue 15: SIP location across nodes).
struct LocationRow {
    std::string aor;               // "user@realm"
    std::string instance;          // +sip.instance, else the Contact URI
    std::int64_t expires_in_s = 0;
};

// A registration held by another node.
struct RemoteLocation {
    std::string aor, node;
};

class PgLedger {
public:
    explicit PgLedger(std::string conninfo);
    ~PgLedger();
    PgLedger(const PgLedger&) = delete;
    PgLedger& operator=(const PgLedger&) = delete;

    // Connects if not connected (and migrates the schema once per process). False, with the
    // reason in error(), when PostgreSQL cannot be reached or refuses.
    bool connect();
    bool connected() const;
    const std::string& error() const { return error_; }

    // One statement, so one transaction: inserts the rows not yet in fleet_intervals and adds
    // only those to fleet_allocations and fleet_hourly. Returns the rows newly inserted, or -1
    // (connection dropped; error()) when nothing is known to have committed.
    long ship(const std::string& node, const std::vector<OutboxRow>& rows);
    // Inserts the calls not yet in fleet_calls (keyed node, id); the count inserted, or -1.
    long ship_calls(const std::string& node, const std::vector<OutboxCall>& calls);
    bool heartbeat(const NodeHeartbeat& beat);
    // fleet_locations (pg_location.cpp): this node's rows become `upserts` minus `removed`;
    // `replace_all` first deletes every row of the node (its first sync after a start).
    bool sync_locations(const std::string& node, const std::vector<LocationRow>& upserts,
                        const std::vector<LocationRow>& removed, bool replace_all);
    // The other nodes' unexpired registrations; nullopt when PostgreSQL failed.
    std::optional<std::vector<RemoteLocation>> remote_locations(const std::string& node);
    std::vector<FleetNode> nodes();

    // The ledger as a Store for reading (report, admin API): usage() sums every node's rows;
    // GroupBy::Node gives one row per node. Throws std::runtime_error when PostgreSQL fails.
    // `statement_timeout_ms` (0: none) bounds each query: the admin API reads on the control
    // loop, which must not stall for long behind a slow database; a report may take its time.
    static std::unique_ptr<Store> open_store(const std::string& conninfo, int statement_timeout_ms = 0);

    // The open connection, after connect() (for pg_leases.cpp, which shares the migration);
    // drop() closes it after a failure, so the next connect() starts afresh.
    PgConn* session() { return conn_.get(); }
    void drop(std::string why);

    // Whether `text` names a PostgreSQL database rather than a file (`--db`).
    static bool is_conninfo(const std::string& text);

private:
    std::string conninfo_;
    std::unique_ptr<PgConn> conn_;
    std::string error_;
    bool migrated_ = false;
};

}  // namespace turnbridge::accounting
