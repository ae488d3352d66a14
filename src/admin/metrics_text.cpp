// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/admin/metrics_text.hpp"

#include <cmath>
#include <fmt/format.h>
#include <initializer_list>
#include <utility>

#include "turnbridge/base/utf8.hpp"

namespace turnbridge::admin {
namespace {

using Label = std::pair<std::string_view, std::string_view>;

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample_name(std::string& out, std::string_view name, std::initializer_list<Label> labels) {
    out += name;
    if (labels.size() == 0) return;
    out.push_back('{');
    bool first = true;
    for (const auto& [k, v] : labels) {
        if (!first) out.push_back(',');
        first = false;
        out += k;
        out += "=\"";
        append_label_value(out, v);
        out.push_back('"');
    }
    out.push_back('}');
}

void sample(std::string& out, std::string_view name, std::initializer_list<Label> labels, std::uint64_t v) {
    sample_name(out, name, labels);
    fmt::format_to(std::back_inserter(out), " {}\n", v);
}

void sample(std::string& out, std::string_view name, std::initializer_list<Label> labels, double v) {
    sample_name(out, name, labels);
    // The format takes Go's float syntax: NaN, +Inf, -Inf, and exponents.
    if (std::isnan(v)) out += " NaN\n";
    else if (std::isinf(v)) out += v > 0 ? " +Inf\n" : " -Inf\n";
    else fmt::format_to(std::back_inserter(out), " {}\n", v);
}

// allocations_created/closed/failed: one counter family keyed by one label.
void keyed_counter(std::string& out, std::string_view name, std::string_view label, std::string_view help,
                   const std::map<std::string, std::uint64_t>& values) {
    family(out, name, "counter", help);
    for (const auto& [k, v] : values) sample(out, name, {{label, k}}, v);
}

constexpr std::string_view kKinds[] = {"payload", "wire"};

// RealmCalls::packets and ::bytes order: (leg, direction) of each slot.
constexpr std::pair<std::string_view, std::string_view> kCallLegs[] = {
    {"browser", "in"}, {"browser", "out"}, {"trunk", "in"}, {"trunk", "out"}};

void per_leg(std::string& out, std::string_view name, std::string_view help, const std::map<std::string, RealmCalls>& calls,
             std::array<std::uint64_t, 4> RealmCalls::*counts) {
    family(out, name, "counter", help);
    for (const auto& [realm, c] : calls)
        for (std::size_t i = 0; i < std::size(kCallLegs); ++i)
            sample(out, name, {{"realm", realm}, {"leg", kCallLegs[i].first}, {"direction", kCallLegs[i].second}},
                   (c.*counts)[i]);
}

// Estimated MOS (ITU-T G.107 E-model, issue 14) of ended calls per leg and direction: a histogram
// with fixed bounds, so its series are realms x 4 x 9 at most.
void mos_histogram(std::string& out, const std::map<std::string, RealmCalls>& calls) {
    constexpr std::string_view name = "turnbridge_gateway_call_mos";
    family(out, name, "histogram",
           "Estimated MOS (ITU-T G.107 E-model from loss and jitter) of gateway calls ended since start, by leg and "
           "direction; calls whose direction was not measured are not counted.");
    for (const auto& [realm, c] : calls)
        for (std::size_t i = 0; i < std::size(kCallLegs); ++i) {
            const auto leg = kCallLegs[i].first, dir = kCallLegs[i].second;
            for (std::size_t b = 0; b < kMosBounds.size(); ++b) {
                const std::string le = fmt::format("{}", kMosBounds[b]);
                sample(out, "turnbridge_gateway_call_mos_bucket", {{"realm", realm}, {"leg", leg}, {"direction", dir}, {"le", le}},
                       c.mos_buckets[i][b]);
            }
            sample(out, "turnbridge_gateway_call_mos_bucket", {{"realm", realm}, {"leg", leg}, {"direction", dir}, {"le", "+Inf"}},
                   c.mos_count[i]);
            sample(out, "turnbridge_gateway_call_mos_sum", {{"realm", realm}, {"leg", leg}, {"direction", dir}}, c.mos_sum[i]);
            sample(out, "turnbridge_gateway_call_mos_count", {{"realm", realm}, {"leg", leg}, {"direction", dir}}, c.mos_count[i]);
        }
}

// Gateway calls (issue 4): counted when a call ends, from its CallRecord.
void call_metrics(std::string& out, const std::map<std::string, RealmCalls>& calls) {
    family(out, "turnbridge_gateway_calls_total", "counter",
           "Gateway calls ended since start, by direction, result (answered, cancelled, busy, declined, failed) "
           "and trunk (empty for a call with none).");
    for (const auto& [realm, c] : calls)
        for (const auto& [key, n] : c.ended) {
            const auto& [direction, result, trunk] = key;
            sample(out, "turnbridge_gateway_calls_total",
                   {{"realm", realm}, {"direction", direction}, {"result", result}, {"trunk", trunk}}, n);
        }
    family(out, "turnbridge_gateway_call_seconds_total", "counter",
           "Answered time (200 OK to end) of gateway calls ended since start.");
    for (const auto& [realm, c] : calls) sample(out, "turnbridge_gateway_call_seconds_total", {{"realm", realm}}, c.answered_seconds);
    per_leg(out, "turnbridge_gateway_call_bytes_total",
            "Media bytes on the wire of gateway calls ended since start, by leg and direction (in = toward turnbridge).",
            calls, &RealmCalls::bytes);
    per_leg(out, "turnbridge_gateway_call_packets_total",
            "Media datagrams of gateway calls ended since start, by leg and direction.", calls, &RealmCalls::packets);
    per_leg(out, "turnbridge_gateway_call_rtp_lost_total",
            "RTP packets lost (RFC 3550 6.4.1) in gateway calls ended since start, by leg and direction "
            "(in: what turnbridge did not receive; out: what the peer's RTCP reported missing).",
            calls, &RealmCalls::rtp_lost);
    mos_histogram(out, calls);
}

// Strict media sources (issue 11): what strangers sent to live calls' media ports. Samples only
// with gateway mode on (some realm listed in `calls`).
void media_drop_metrics(std::string& out, const Metrics& m) {
    constexpr std::string_view name = "turnbridge_gateway_media_dropped_total";
    family(out, name, "counter",
           "Gateway media datagrams dropped since start because their source was not the leg's peer "
           "(browser: not the ICE-selected pair; trunk: not the trunk's RTP address).");
    if (m.calls.empty()) return;
    sample(out, name, {{"leg", "browser"}, {"reason", "source"}}, m.gateway_media_dropped_source[0]);
    sample(out, name, {{"leg", "trunk"}, {"reason", "source"}}, m.gateway_media_dropped_source[1]);
}

// AI agent calls (issue 17): streams opened and failed, and what the bounds dropped. Samples only
// with gateway mode on.
void agent_metrics(std::string& out, const Metrics& m) {
    constexpr std::string_view name = "turnbridge_gateway_agent_events_total";
    family(out, name, "counter",
           "AI agent (Media Streams) events since start: calls (streams opened), failed (refused, timed out or "
           "closed by the agent), frames_dropped (agent audio over gateway.agent_playout_frames), "
           "messages_dropped (toward an agent with 64 KiB unsent), bad_messages (unreadable agent messages).");
    if (m.calls.empty()) return;
    for (std::size_t i = 0; i < kAgentEventNames.size(); ++i)
        sample(out, name, {{"event", kAgentEventNames[i]}}, m.gateway_agent[i]);
}

// Agents' hand-overs (issue 17, {"event":"transfer"}). Samples only with gateway mode on.
void agent_transfer_metrics(std::string& out, const Metrics& m) {
    constexpr std::string_view name = "turnbridge_gateway_agent_transfers_total";
    family(out, name, "counter",
           "AI agents' transfer requests since start: user and number (hand-overs begun), ignored (no such "
           "registered user or number, no trunk or media ports), failed (begun, but refused or not answered).");
    if (m.calls.empty()) return;
    for (std::size_t i = 0; i < kAgentTransferResults.size(); ++i)
        sample(out, name, {{"result", kAgentTransferResults[i]}}, m.agent_transfers[i]);
}

constexpr std::string_view kActiveHelp =
    "Outbound agent calls of POST /api/v1/calls in progress (dialing, ringing or answered).";

// POST /api/v1/calls (issue 17): what became of the outbound agent calls, and those in progress.
// Samples only with gateway mode on.
void agent_outbound_metrics(std::string& out, const Metrics& m) {
    constexpr std::string_view outbound = "turnbridge_gateway_agent_outbound_total";
    family(out, outbound, "counter",
           "Outbound agent calls of POST /api/v1/calls since start: placed, refused (over "
           "gateway.agent_outbound_max_calls), answered, and how they ended (completed, busy, no-answer, failed).");
    constexpr std::string_view active = "turnbridge_gateway_agent_outbound_active";
    if (m.calls.empty()) return family(out, active, "gauge", kActiveHelp);
    for (std::size_t i = 0; i < kOutboundResults.size(); ++i)
        sample(out, outbound, {{"result", kOutboundResults[i]}}, m.agent_outbound[i]);
    family(out, active, "gauge", kActiveHelp);
    sample(out, active, {}, m.agent_outbound_active);
}

// SIP handed from the worker that read it to the worker that owns its call (issue 12), dropped
// because that worker's mailbox was full (it is stalled): UDP senders retransmit.
void mailbox_metrics(std::string& out, const Metrics& m) {
    constexpr std::string_view name = "turnbridge_gateway_mailbox_dropped_total";
    family(out, name, "counter",
           "SIP messages not handed to the worker owning their call since start: its mailbox was full "
           "(65,536 messages or 16 MiB).");
    if (!m.calls.empty()) sample(out, name, {}, m.gateway_mail_dropped);
}

// Trunk targets' OPTIONS health (issue 14): up (1) or down (0), and the last answer's RTT.
void trunk_metrics(std::string& out, const Metrics& m) {
    family(out, "turnbridge_gateway_trunk_target_up", "gauge",
           "1 while a trunk target answers OPTIONS (gateway.options_interval), 0 once 3 in a row went unanswered.");
    for (const auto& t : m.trunk_targets)
        sample(out, "turnbridge_gateway_trunk_target_up", {{"realm", t.realm}, {"trunk", t.trunk}, {"target", t.target}},
               std::uint64_t{t.up ? 1u : 0u});
    family(out, "turnbridge_gateway_trunk_target_rtt_seconds", "gauge",
           "Round-trip time of the trunk target's last OPTIONS answer (no sample before the first).");
    for (const auto& t : m.trunk_targets)
        if (t.rtt_ms >= 0)
            sample(out, "turnbridge_gateway_trunk_target_rtt_seconds", {{"realm", t.realm}, {"trunk", t.trunk}, {"target", t.target}},
                   t.rtt_ms / 1000.0);
}

// Password guessing and the per-user limits of a public server (issue 11).
void auth_metrics(std::string& out, const Metrics& m) {
    keyed_counter(out, "turnbridge_auth_failed_checks_total", "protocol",
                  "Credentials checked and found wrong since start (turn, sip digest, admin token).", m.auth_failed);
    keyed_counter(out, "turnbridge_auth_throttled_total", "protocol",
                  "Requests answered without checking their credentials: the source or user was over "
                  "security.auth_failures_per_minute.",
                  m.auth_throttled);
    const std::pair<std::string_view, std::string_view> help[] = {
        {"turnbridge_auth_throttle_evictions_total",
         "Entries of the failed-authentication tables given up to new sources or users (the tables are full)."},
        {"turnbridge_user_allocation_limit_total",
         "Allocate requests refused with 486: the user had server.max_allocations_per_user."},
        {"turnbridge_permission_limit_total",
         "CreatePermission and ChannelBind requests refused with 508: server.max_permissions_per_allocation."},
        {"turnbridge_channel_limit_total", "ChannelBind requests refused with 508: server.max_channels_per_allocation."},
    };
    const std::uint64_t values[] = {m.auth_throttle_evictions, m.user_allocation_refusals, m.permission_cap_refusals,
                                    m.channel_cap_refusals};
    for (std::size_t i = 0; i < std::size(values); ++i) {
        family(out, help[i].first, "counter", help[i].second);
        sample(out, help[i].first, {}, values[i]);
    }
}

// [streams] bounds (issue 11), by listener kind: turn, ws, sip, admin.
void stream_metrics(std::string& out, const io::StreamCounts& c) {
    using io::StreamKind;
    family(out, "turnbridge_stream_connections", "gauge", "Stream connections open now, by listener kind.");
    for (std::size_t k = 0; k < io::kStreamKinds; ++k)
        sample(out, "turnbridge_stream_connections", {{"kind", io::to_string(static_cast<StreamKind>(k))}}, c.open[k]);
    family(out, "turnbridge_stream_refused_total", "counter",
           "Connections closed at accept since start: over the kind's global or per-IP cap (streams.*_max_connections*).");
    for (std::size_t k = 0; k < io::kStreamKinds; ++k)
        for (std::size_t r = 0; r < io::kRefusals; ++r)
            sample(out, "turnbridge_stream_refused_total",
                   {{"kind", io::to_string(static_cast<StreamKind>(k))}, {"reason", io::to_string(static_cast<io::Refusal>(r))}},
                   c.refused[k][r]);
    family(out, "turnbridge_stream_closed_total", "counter",
           "Connections closed by a limit since start: timeouts, write bounds (the peer does not read), message caps, "
           "admin evictions.");
    for (std::size_t k = 0; k < io::kStreamKinds; ++k)
        for (std::size_t r = 0; r < io::kStreamCloses; ++r)
            sample(out, "turnbridge_stream_closed_total",
                   {{"kind", io::to_string(static_cast<StreamKind>(k))}, {"reason", io::to_string(static_cast<io::StreamClose>(r))}},
                   c.closed[k][r]);
    family(out, "turnbridge_stream_read_pauses_total", "counter",
           "Times reading stopped because unsent bytes passed streams.write_soft_limit (back-pressure).");
    for (std::size_t k = 0; k < io::kStreamKinds; ++k)
        sample(out, "turnbridge_stream_read_pauses_total", {{"kind", io::to_string(static_cast<StreamKind>(k))}}, c.read_pauses[k]);
}

// [fleet] only (issue 15): the outbox toward PostgreSQL and its shipper.
void fleet_metrics(std::string& out, const std::optional<FleetMetrics>& f) {
    if (!f) return;
    family(out, "turnbridge_fleet_spool_rows", "gauge", "Outbox rows waiting for PostgreSQL (fleet.spool_max_rows bounds them).");
    sample(out, "turnbridge_fleet_spool_rows", {}, f->spool_rows);
    family(out, "turnbridge_fleet_spool_max_rows", "gauge", "fleet.spool_max_rows.");
    sample(out, "turnbridge_fleet_spool_max_rows", {}, f->spool_max_rows);
    family(out, "turnbridge_fleet_spool_dropped_rows_total", "counter",
           "Intervals not queued for the fleet because the outbox was full (the local database has them).");
    sample(out, "turnbridge_fleet_spool_dropped_rows_total", {}, f->spool_dropped);
    family(out, "turnbridge_fleet_shipped_rows_total", "counter", "Outbox rows PostgreSQL newly took since start.");
    sample(out, "turnbridge_fleet_shipped_rows_total", {}, f->shipped_rows);
    family(out, "turnbridge_fleet_replayed_rows_total", "counter",
           "Outbox rows shipped again that PostgreSQL already had (after a crash between COMMIT and delete).");
    sample(out, "turnbridge_fleet_replayed_rows_total", {}, f->replayed_rows);
    family(out, "turnbridge_fleet_database_up", "gauge", "1 when the last attempt reached PostgreSQL.");
    sample(out, "turnbridge_fleet_database_up", {}, std::uint64_t{f->database_up ? 1u : 0u});
    family(out, "turnbridge_fleet_quota_users", "gauge", "Quota users with allocations or a lease on this node.");
    sample(out, "turnbridge_fleet_quota_users", {}, f->quota_users);
    family(out, "turnbridge_fleet_quota_leased_bytes", "gauge", "Quota lease bytes this node holds and has not relayed yet.");
    sample(out, "turnbridge_fleet_quota_leased_bytes", {}, f->quota_leased_bytes);
    family(out, "turnbridge_fleet_quota_refused_bytes_total", "counter",
           "Payload bytes of quota users not relayed for want of a lease.");
    sample(out, "turnbridge_fleet_quota_refused_bytes_total", {}, f->quota_refused_bytes);
    family(out, "turnbridge_fleet_quota_excess_bytes_total", "counter",
           "Payload bytes relayed beyond the leases while PostgreSQL was unreachable (fleet.quota_outage).");
    sample(out, "turnbridge_fleet_quota_excess_bytes_total", {}, f->quota_excess_bytes);
}

}  // namespace

void append_label_value(std::string& out, std::string_view v) {
    while (!v.empty()) {
        const char c = v[0];
        std::size_t n = 1;
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else if (static_cast<unsigned char>(c) < 0x80) out.push_back(c);
        else if ((n = utf8_char_length(v)) != 0) out.append(v.substr(0, n));
        else {
            out += "\xEF\xBF\xBD";  // U+FFFD: the format is UTF-8
            n = 1;
        }
        v.remove_prefix(n);
    }
}

std::string format_metrics(const Metrics& m) {
    std::string out;
    out.reserve(4096);
    family(out, "turnbridge_active_allocations", "gauge", "Allocations that are live now.");
    for (const auto& [realm, t] : m.realms) sample(out, "turnbridge_active_allocations", {{"realm", realm}}, t.active_allocations);

    family(out, "turnbridge_relayed_bytes_total", "counter",
           "Relayed bytes since start by direction; payload is application data, wire includes STUN/TURN/ChannelData framing.");
    for (const auto& [realm, t] : m.realms) {
        for (std::size_t d = 0; d < accounting::kDirections; ++d) {
            sample(out, "turnbridge_relayed_bytes_total", {{"realm", realm}, {"direction", kDirectionNames[d]}, {"kind", kKinds[0]}},
                   t.traffic.payload_bytes[d]);
            sample(out, "turnbridge_relayed_bytes_total", {{"realm", realm}, {"direction", kDirectionNames[d]}, {"kind", kKinds[1]}},
                   t.traffic.wire_bytes[d]);
        }
    }

    family(out, "turnbridge_relayed_packets_total", "counter", "Relayed packets since start by direction.");
    for (const auto& [realm, t] : m.realms)
        for (std::size_t d = 0; d < accounting::kDirections; ++d)
            sample(out, "turnbridge_relayed_packets_total", {{"realm", realm}, {"direction", kDirectionNames[d]}},
                   t.traffic.packets[d]);

    keyed_counter(out, "turnbridge_allocations_created_total", "realm", "Allocations created since start.",
                  m.allocations_created);
    keyed_counter(out, "turnbridge_allocations_closed_total", "reason", "Allocations ended since start, by reason.",
                  m.allocations_closed);
    keyed_counter(out, "turnbridge_allocations_failed_total", "reason", "Allocate requests refused since start, by reason.",
                  m.allocations_failed);

    family(out, "turnbridge_auth_failures_total", "counter", "Requests that failed authentication since start.");
    sample(out, "turnbridge_auth_failures_total", {}, m.auth_failures);
    family(out, "turnbridge_quota_refusals_total", "counter", "Allocate and Refresh requests refused over quota since start.");
    sample(out, "turnbridge_quota_refusals_total", {}, m.quota_refusals);

    family(out, "turnbridge_unauthenticated_dropped_total", "counter",
           "Answers to unauthenticated requests not sent: their source was over security.unauthenticated_rate.");
    sample(out, "turnbridge_unauthenticated_dropped_total", {}, m.unauthenticated_dropped);
    family(out, "turnbridge_sip_limited_total", "counter",
           "Times a bound of the gateway's SIP side bit since start, by limit (turnbridge.toml(5): server.sip_*, "
           "gateway.max_calls*).");
    for (std::size_t i = 0; i < m.sip_limited.size(); ++i)
        sample(out, "turnbridge_sip_limited_total", {{"limit", sip::kLimitNames[i]}}, m.sip_limited[i]);
    auth_metrics(out, m);
    family(out, "turnbridge_loop_lag_seconds", "gauge", "Event loop lag of each worker thread.");
    for (std::size_t i = 0; i < m.loop_lag_seconds.size(); ++i) {
        const auto worker = std::to_string(i);
        sample(out, "turnbridge_loop_lag_seconds", {{"worker", worker}}, m.loop_lag_seconds[i]);
    }
    call_metrics(out, m.calls);
    media_drop_metrics(out, m);
    agent_metrics(out, m);
    agent_transfer_metrics(out, m);
    agent_outbound_metrics(out, m);
    mailbox_metrics(out, m);
    trunk_metrics(out, m);
    stream_metrics(out, m.streams);
    fleet_metrics(out, m.fleet);
    return out;
}

}  // namespace turnbridge::admin
