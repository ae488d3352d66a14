// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the admin HTTP server needs from the rest of the process. Implemented by the net layer
// on the control thread; every call happens on that thread, so nothing here locks.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "turnbridge/accounting/calls.hpp"
#include "turnbridge/accounting/record.hpp"
#include "turnbridge/accounting/usage.hpp"
#include "turnbridge/sip/limits.hpp"
#include "turnbridge/io/stream_stats.hpp"

namespace turnbridge::admin {

struct LiveAllocation {
    accounting::AllocationRecord record;  // counters as of the last flush
    double bitrate_in_bps = 0;             // client->relay + peer->relay, over the last flush interval
    double bitrate_out_bps = 0;            // relay->peer + relay->client
};

struct RealmTotals {
    std::uint64_t active_allocations = 0;
    accounting::Traffic traffic;           // since the server started, live and closed allocations
};

// Gateway calls of one realm that ended since the server started.
struct RealmCalls {
    // (direction, result, trunk) -> calls; trunk "" for calls with none (issue 14: its label is
    // bounded by the realm's trunks, at most 64, config/trunks_config.cpp).
    std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> ended;
    double answered_seconds = 0;                                         // answer to end, summed
    // Media datagrams per leg and direction, in CallRecord order: browser in, browser out,
    // trunk in, trunk out (in = toward turnbridge).
    std::array<std::uint64_t, 4> packets{};
    std::array<std::uint64_t, 4> bytes{};
    // Call quality (issue 14), same slots: RTP packets lost, and the MOS estimates of the calls
    // whose direction was measured as a histogram (cumulative counts per kMosBounds, sum, count).
    std::array<std::uint64_t, 4> rtp_lost{};
    std::array<std::array<std::uint64_t, 6>, 4> mos_buckets{};
    std::array<double, 4> mos_sum{};
    std::array<std::uint64_t, 4> mos_count{};
};

// The MOS histogram's upper bounds (le), +Inf implied: the MOS scale's bands (1 bad .. 4.5 best).
inline constexpr std::array<double, 6> kMosBounds = {1.5, 2.5, 3.0, 3.5, 4.0, 4.3};

// One trunk target's OPTIONS health (issue 14), for /api/v1/trunks and /metrics.
struct TrunkTargetStatus {
    std::string realm;
    std::string trunk;             // its name in the realm ("default" for the single-trunk form)
    std::string target;            // "192.0.2.10:5060"
    bool up = true;
    unsigned misses = 0;           // OPTIONS unanswered in a row
    int last_status = 0;           // of the last answer; 0 = none yet
    double last_response_age = -1; // seconds since the last answer; -1 = none yet
    double rtt_ms = -1;            // of the last answer; -1 = none yet
};

inline constexpr std::array<std::string_view, 5> kAgentEventNames = {"calls", "failed", "frames_dropped",
                                                                     "messages_dropped", "bad_messages"};
// Agents' transfers (issue 17), in gateway::SipRouter::Transfer order.
inline constexpr std::array<std::string_view, 4> kAgentTransferResults = {"user", "number", "ignored", "failed"};

// Outbound agent calls (issue 17): POST /api/v1/calls {realm, to, from, agent}.
struct PlaceCall {
    std::string realm, to, from, agent;
    std::string media_format;   // optional: "mulaw" or "l16" ("": the agent's or the realm's)
};
// One API call as GET /api/v1/calls/ID shows it.
struct OutboundCall {
    std::string id, realm, to, from, agent;
    std::string media_format = "mulaw";   // what the agent gets: "mulaw" or "l16"
    std::string status = "dialing";   // dialing, ringing, answered; completed, busy, no-answer, failed
    int sip_code = 0;                 // the trunk's final status (0 before one)
    std::string call_id;              // the call's id in the log lines (call.started, call.ended)
    std::string end_reason;           // as in the call record
    std::int64_t created_ms = 0;
};
struct Placed {
    int status = 202;                 // else the HTTP error: 400 bad field, 404, 409, 429, 503
    std::string error, field;         // the error's text and the field it concerns
    OutboundCall call;
};
inline constexpr std::array<std::string_view, 7> kOutboundResults = {"placed", "refused", "answered", "completed",
                                                                     "busy", "no-answer", "failed"};

// Fleet mode (issue 15): the outbox and its shipper.
struct FleetMetrics {
    std::uint64_t spool_rows = 0;        // outbox rows waiting for PostgreSQL
    std::uint64_t spool_max_rows = 0;    // fleet.spool_max_rows
    std::uint64_t spool_dropped = 0;     // rows not queued because the outbox was full
    std::uint64_t shipped_rows = 0;      // rows PostgreSQL newly took since start
    std::uint64_t replayed_rows = 0;     // rows it already had (shipped again after a crash)
    bool database_up = false;
    bool draining = false;
    // Fleet-wide byte quotas (leases): quota users with a slot here, lease bytes held and not
    // relayed yet, bytes not relayed for want of a lease, bytes relayed beyond the leases while
    // PostgreSQL was unreachable (fleet.quota_outage).
    std::uint64_t quota_users = 0, quota_leased_bytes = 0, quota_refused_bytes = 0, quota_excess_bytes = 0;
};

struct Metrics {
    std::map<std::string, RealmTotals> realms;
    std::map<std::string, std::uint64_t> allocations_created;  // realm -> count
    std::map<std::string, std::uint64_t> allocations_closed;   // close reason -> count
    std::map<std::string, std::uint64_t> allocations_failed;   // "auth" | "quota" | "capacity" | ...
    std::uint64_t auth_failures = 0;
    std::uint64_t quota_refusals = 0;
    std::uint64_t unauthenticated_dropped = 0;  // answers withheld by the reflection guard
    // security.auth_failures_per_minute, by protocol (turn, sip, admin): wrong credentials
    // checked, and requests answered without a check.
    std::map<std::string, std::uint64_t> auth_failed;
    std::map<std::string, std::uint64_t> auth_throttled;
    std::uint64_t auth_throttle_evictions = 0;
    // Per-user limits of a public server (issue 11).
    std::uint64_t user_allocation_refusals = 0;  // 486: server.max_allocations_per_user
    std::uint64_t permission_cap_refusals = 0;   // 508: server.max_permissions_per_allocation
    std::uint64_t channel_cap_refusals = 0;      // 508: server.max_channels_per_allocation
    std::vector<double> loop_lag_seconds;  // per worker thread
    std::map<std::string, RealmCalls> calls;  // realm -> its gateway calls
    sip::LimitCounts sip_limited{};            // the gateway's SIP bounds that bit (issue 11)
    // Gateway media datagrams dropped because their source was not the leg's peer (issue 11):
    // [0] browser leg (not the ICE-selected pair), [1] trunk leg (not the trunk's RTP address).
    std::array<std::uint64_t, 2> gateway_media_dropped_source{};
    // SIP messages between workers dropped because the owner worker's mailbox was full
    // (gateway::GatewayShared::kMaxMail / kMaxMailBytes); only with gateway mode on.
    std::uint64_t gateway_mail_dropped = 0;
    // AI agent calls (issue 17), in kAgentEventNames order: streams opened, failed (refused,
    // timed out, closed by the agent), agent audio frames dropped over the playout bound,
    // messages dropped toward a slow agent, unreadable agent messages.
    std::array<std::uint64_t, 5> gateway_agent{};
    // Agents' {"event":"transfer"} (issue 17), in kAgentTransferResults order: hand-overs begun
    // to a user or a number, ignored (nowhere to go), failed (begun, nobody took the call).
    std::array<std::uint64_t, 4> agent_transfers{};
    // POST /api/v1/calls (issue 17), in kOutboundResults order: placed, refused (over
    // gateway.agent_outbound_max_calls), answered, and the outcomes; and those in progress.
    std::array<std::uint64_t, 7> agent_outbound{};
    std::uint64_t agent_outbound_active = 0;
    io::StreamCounts streams;  // connection bounds that bit ([streams], issue 11)
    std::vector<TrunkTargetStatus> trunk_targets;   // gateway.options_interval probes (issue 14)
    std::optional<FleetMetrics> fleet;              // [fleet] only
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::vector<LiveAllocation> live() = 0;
    // Deletes a live allocation (reason "kicked"); false when no such allocation is live.
    virtual bool kick(std::string_view id) = 0;
    virtual std::vector<accounting::UsageRow> usage(const accounting::UsageQuery& q) = 0;
    virtual Metrics metrics() = 0;
    // Gateway call records from the store, as `turnbridge report --calls` lists them.
    virtual std::vector<accounting::CallRecord> calls(const accounting::CallQuery& q) = 0;
    // GET /readyz (issue 15): "" when this node should get new work, else why not (draining,
    // the outbox near its bound). GET /livez needs nothing: the control loop answered.
    virtual std::string not_ready() { return ""; }
    // POST /api/v1/drain (issue 15): start draining; false when this node cannot (no [fleet]).
    virtual bool drain_node() { return false; }
    // POST /api/v1/calls (issue 17): checks the request against the configuration and places
    // the call on a gateway worker; the answer comes at once (202), the outcome later.
    virtual Placed place_call(const PlaceCall&) { return {503, "outbound calls need gateway mode", {}, {}}; }
    // GET /api/v1/calls/ID: a recent API call (the last kept of them); nullopt: unknown.
    virtual std::optional<OutboundCall> outbound_call(std::string_view) { return std::nullopt; }
};

}  // namespace turnbridge::admin
