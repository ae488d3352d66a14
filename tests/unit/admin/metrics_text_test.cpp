// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "turnbridge/admin/metrics_text.hpp"

using namespace turnbridge;
using namespace turnbridge::admin;

namespace {

// A strict reader of the text format 0.0.4, enough to read our output back: samples keyed by
// `name{k="v",...}` with label values unescaped and labels in the order written.
struct Exposition {
    std::map<std::string, std::string> types;   // family -> counter | gauge
    std::map<std::string, std::string> help;
    std::map<std::string, double> samples;
    std::vector<std::string> errors;
};

std::string unescape_label(std::string_view s, std::size_t& i, bool& ok) {
    std::string out;
    while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\') {
            if (i + 1 >= s.size()) { ok = false; return out; }
            const char n = s[i + 1];
            if (n == 'n') out.push_back('\n');
            else if (n == '\\' || n == '"') out.push_back(n);
            else ok = false;
            i += 2;
        } else {
            if (s[i] == '\n') ok = false;
            out.push_back(s[i++]);
        }
    }
    if (i >= s.size()) ok = false;
    ++i;  // closing quote
    return out;
}

Exposition read_exposition(const std::string& text) {
    Exposition e;
    std::istringstream in(text);
    std::string line;
    if (text.empty() || text.back() != '\n') e.errors.push_back("no final newline");
    while (std::getline(in, line)) {
        if (line.rfind("# TYPE ", 0) == 0) {
            const auto sp = line.find(' ', 7);
            e.types[line.substr(7, sp - 7)] = line.substr(sp + 1);
            continue;
        }
        if (line.rfind("# HELP ", 0) == 0) {
            const auto sp = line.find(' ', 7);
            e.help[line.substr(7, sp - 7)] = line.substr(sp + 1);
            continue;
        }
        if (line.empty() || line[0] == '#') continue;
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        std::string key = line.substr(0, i);
        bool ok = true;
        if (i < line.size() && line[i] == '{') {
            key += '{';
            ++i;
            bool first = true;
            while (ok && i < line.size() && line[i] != '}') {
                if (!first) {
                    if (line[i] != ',') { ok = false; break; }
                    ++i;
                }
                first = false;
                const auto eq = line.find("=\"", i);
                if (eq == std::string::npos) { ok = false; break; }
                const std::string name = line.substr(i, eq - i);
                i = eq + 2;
                const std::string value = unescape_label(line, i, ok);
                key += (key.back() == '{' ? "" : ",") + name + "=" + value;
            }
            key += '}';
            ++i;
        }
        if (!ok || i >= line.size() || line[i] != ' ') {
            e.errors.push_back("bad sample line: " + line);
            continue;
        }
        e.samples[key] = std::stod(line.substr(i + 1));
    }
    return e;
}

Metrics sample_metrics() {
    Metrics m;
    auto& r = m.realms["example.org"];
    r.active_allocations = 3;
    for (std::size_t d = 0; d < accounting::kDirections; ++d) {
        r.traffic.packets[d] = 100 + d;
        r.traffic.payload_bytes[d] = 10000 + d;
        r.traffic.wire_bytes[d] = 12000 + d;
    }
    m.realms["odd \"realm\"\\\nx"].active_allocations = 1;
    m.allocations_created["example.org"] = 7;
    m.allocations_closed["expired"] = 2;
    m.allocations_closed["kicked"] = 1;
    m.allocations_failed["auth"] = 4;
    m.auth_failures = 5;
    m.quota_refusals = 6;
    m.unauthenticated_dropped = 8;
    m.loop_lag_seconds = {0.0005, 0.25};
    m.sip_limited[static_cast<std::size_t>(sip::Limit::CallsPerUser)] = 3;
    m.auth_failed = {{"turn", 11}, {"sip", 0}, {"admin", 2}};
    m.auth_throttled = {{"turn", 12}, {"sip", 0}, {"admin", 0}};
    m.auth_throttle_evictions = 13;
    m.user_allocation_refusals = 14;
    m.permission_cap_refusals = 15;
    m.channel_cap_refusals = 16;
    return m;
}

}  // namespace

TEST_CASE("/metrics text: every family has HELP and TYPE, and the samples read back") {
    const auto e = read_exposition(format_metrics(sample_metrics()));
    CHECK(e.errors.empty());
    for (const auto& err : e.errors) MESSAGE(err);
    const std::map<std::string, std::string> families = {
        {"turnbridge_active_allocations", "gauge"},
        {"turnbridge_relayed_bytes_total", "counter"},
        {"turnbridge_relayed_packets_total", "counter"},
        {"turnbridge_allocations_created_total", "counter"},
        {"turnbridge_allocations_closed_total", "counter"},
        {"turnbridge_allocations_failed_total", "counter"},
        {"turnbridge_auth_failures_total", "counter"},
        {"turnbridge_quota_refusals_total", "counter"},
        {"turnbridge_unauthenticated_dropped_total", "counter"},
        {"turnbridge_sip_limited_total", "counter"},
        {"turnbridge_loop_lag_seconds", "gauge"},
        {"turnbridge_gateway_calls_total", "counter"},
        {"turnbridge_gateway_call_seconds_total", "counter"},
        {"turnbridge_gateway_call_bytes_total", "counter"},
        {"turnbridge_gateway_call_packets_total", "counter"},
        {"turnbridge_gateway_call_rtp_lost_total", "counter"},
        {"turnbridge_gateway_call_mos", "histogram"},
        {"turnbridge_gateway_media_dropped_total", "counter"},
        {"turnbridge_gateway_mailbox_dropped_total", "counter"},
        {"turnbridge_gateway_agent_events_total", "counter"},
        {"turnbridge_gateway_agent_transfers_total", "counter"},
        {"turnbridge_gateway_agent_outbound_total", "counter"},
        {"turnbridge_gateway_agent_outbound_active", "gauge"},
        {"turnbridge_gateway_trunk_target_up", "gauge"},
        {"turnbridge_gateway_trunk_target_rtt_seconds", "gauge"},
        {"turnbridge_auth_failed_checks_total", "counter"},
        {"turnbridge_auth_throttled_total", "counter"},
        {"turnbridge_auth_throttle_evictions_total", "counter"},
        {"turnbridge_user_allocation_limit_total", "counter"},
        {"turnbridge_permission_limit_total", "counter"},
        {"turnbridge_channel_limit_total", "counter"},
        {"turnbridge_stream_connections", "gauge"},
        {"turnbridge_stream_refused_total", "counter"},
        {"turnbridge_stream_closed_total", "counter"},
        {"turnbridge_stream_read_pauses_total", "counter"},
    };
    for (const auto& family : families) {  // not a structured binding: clang 14 cannot CAPTURE one
        const auto& name = family.first;
        const auto& type = family.second;
        CAPTURE(name);
        CHECK(e.types.count(name) == 1);
        if (e.types.count(name)) CHECK(e.types.at(name) == type);
        CHECK(e.help.count(name) == 1);
    }
    CHECK(e.types.size() == families.size());
    const std::map<std::string, double> expected = {
        {"turnbridge_active_allocations{realm=example.org}", 3},
        {"turnbridge_relayed_bytes_total{realm=example.org,direction=client_to_relay,kind=payload}", 10000},
        {"turnbridge_relayed_bytes_total{realm=example.org,direction=relay_to_client,kind=wire}", 12003},
        {"turnbridge_relayed_bytes_total{realm=example.org,direction=peer_to_relay,kind=wire}", 12002},
        {"turnbridge_relayed_packets_total{realm=example.org,direction=relay_to_peer}", 101},
        {"turnbridge_allocations_created_total{realm=example.org}", 7},
        {"turnbridge_allocations_closed_total{reason=kicked}", 1},
        {"turnbridge_allocations_failed_total{reason=auth}", 4},
        {"turnbridge_auth_failures_total", 5},
        {"turnbridge_quota_refusals_total", 6},
        {"turnbridge_unauthenticated_dropped_total", 8},
        {"turnbridge_sip_limited_total{limit=calls_per_user}", 3},
        {"turnbridge_sip_limited_total{limit=udp_flow_evicted}", 0},
        {"turnbridge_loop_lag_seconds{worker=0}", 0.0005},
        {"turnbridge_loop_lag_seconds{worker=1}", 0.25},
        {"turnbridge_auth_failed_checks_total{protocol=turn}", 11},
        {"turnbridge_auth_failed_checks_total{protocol=admin}", 2},
        {"turnbridge_auth_throttled_total{protocol=turn}", 12},
        {"turnbridge_auth_throttle_evictions_total", 13},
        {"turnbridge_user_allocation_limit_total", 14},
        {"turnbridge_permission_limit_total", 15},
        {"turnbridge_channel_limit_total", 16},
        // Label values are escaped on the way out and come back as they were.
        {"turnbridge_active_allocations{realm=odd \"realm\"\\\nx}", 1},
    };
    for (const auto& sample : expected) {
        const auto& key = sample.first;
        const auto& value = sample.second;
        CAPTURE(key);
        REQUIRE(e.samples.count(key) == 1);
        CHECK(e.samples.at(key) == doctest::Approx(value));
    }
    // 2 realms x 4 directions x 2 kinds.
    std::size_t bytes_samples = 0;
    for (const auto& [key, v] : e.samples) bytes_samples += key.rfind("turnbridge_relayed_bytes_total{", 0) == 0;
    CHECK(bytes_samples == 16);
}

TEST_CASE("/metrics text with nothing counted yet still lists every family") {
    const auto text = format_metrics(Metrics{});
    const auto e = read_exposition(text);
    CHECK(e.errors.empty());
    CHECK(e.types.size() == 35);
    // The seven unlabelled counters, one turnbridge_sip_limited_total per limit, and the stream
    // families' fixed label sets, at 0: 4 kinds x (1 gauge + 2 refusal reasons + 7 close reasons
    // + 1 pause counter). No gateway: no media drops.
    CHECK(e.samples.size() == 7 + sip::kLimitNames.size() + 4 * (1 + 2 + 7 + 1));
    CHECK(e.samples.at("turnbridge_auth_failures_total") == 0);
    CHECK(e.samples.at("turnbridge_unauthenticated_dropped_total") == 0);
}

TEST_CASE("/metrics text: stream connections, refusals and limit closes by listener kind (issue 11)") {
    Metrics m;
    m.streams.open[static_cast<std::size_t>(turnbridge::io::StreamKind::Sip)] = 32;
    m.streams.refused[0][static_cast<std::size_t>(turnbridge::io::Refusal::PerIp)] = 1968;
    m.streams.closed[1][static_cast<std::size_t>(turnbridge::io::StreamClose::MessageTimeout)] = 5;
    m.streams.closed[3][static_cast<std::size_t>(turnbridge::io::StreamClose::Evicted)] = 2;
    m.streams.read_pauses[1] = 7;
    const auto e = read_exposition(format_metrics(m));
    CHECK(e.errors.empty());
    CHECK(e.samples.at("turnbridge_stream_connections{kind=sip}") == 32);
    CHECK(e.samples.at("turnbridge_stream_refused_total{kind=turn,reason=per_ip}") == 1968);
    CHECK(e.samples.at("turnbridge_stream_refused_total{kind=turn,reason=global}") == 0);
    CHECK(e.samples.at("turnbridge_stream_closed_total{kind=ws,reason=message_timeout}") == 5);
    CHECK(e.samples.at("turnbridge_stream_closed_total{kind=admin,reason=evicted}") == 2);
    CHECK(e.samples.at("turnbridge_stream_read_pauses_total{kind=ws}") == 7);
}

TEST_CASE("/metrics text: gateway calls by realm, direction, result and trunk; answered seconds; bytes and packets per leg") {
    Metrics m;
    auto& c = m.calls["example.org"];
    c.ended[{"outbound", "answered", "carrier-a"}] = 5;
    c.ended[{"outbound", "busy", "carrier-b"}] = 1;
    c.ended[{"inbound", "cancelled", "carrier-a"}] = 2;
    c.ended[{"outbound", "answered", ""}] = 4;   // a browser's call to an agent: no trunk
    c.answered_seconds = 312.25;
    c.packets = {1000, 1001, 1002, 1003};
    c.bytes = {160000, 160001, 172000, 172001};
    m.calls["idle.org"];  // a gateway realm with no call yet
    const auto e = read_exposition(format_metrics(m));
    CHECK(e.errors.empty());
    const std::map<std::string, double> expected = {
        {"turnbridge_gateway_calls_total{realm=example.org,direction=outbound,result=answered,trunk=carrier-a}", 5},
        {"turnbridge_gateway_calls_total{realm=example.org,direction=outbound,result=busy,trunk=carrier-b}", 1},
        {"turnbridge_gateway_calls_total{realm=example.org,direction=inbound,result=cancelled,trunk=carrier-a}", 2},
        {"turnbridge_gateway_calls_total{realm=example.org,direction=outbound,result=answered,trunk=}", 4},
        {"turnbridge_gateway_call_seconds_total{realm=example.org}", 312.25},
        {"turnbridge_gateway_call_seconds_total{realm=idle.org}", 0},
        {"turnbridge_gateway_call_bytes_total{realm=example.org,leg=browser,direction=in}", 160000},
        {"turnbridge_gateway_call_bytes_total{realm=example.org,leg=browser,direction=out}", 160001},
        {"turnbridge_gateway_call_bytes_total{realm=example.org,leg=trunk,direction=in}", 172000},
        {"turnbridge_gateway_call_bytes_total{realm=example.org,leg=trunk,direction=out}", 172001},
        {"turnbridge_gateway_call_packets_total{realm=example.org,leg=browser,direction=in}", 1000},
        {"turnbridge_gateway_call_packets_total{realm=example.org,leg=trunk,direction=out}", 1003},
        {"turnbridge_gateway_call_bytes_total{realm=idle.org,leg=trunk,direction=out}", 0},
    };
    for (const auto& sample : expected) {
        const auto& key = sample.first;
        CAPTURE(key);
        REQUIRE(e.samples.count(key) == 1);
        CHECK(e.samples.at(key) == doctest::Approx(sample.second));
    }
    std::size_t calls_samples = 0;
    for (const auto& [key, v] : e.samples) calls_samples += key.rfind("turnbridge_gateway_calls_total{", 0) == 0;
    CHECK(calls_samples == 4);  // none for idle.org: no result to name yet
}

TEST_CASE("/metrics text: gateway media from strangers, dropped by leg with reason source (issue 11)") {
    Metrics m;
    m.calls["example.org"];  // gateway mode on
    m.gateway_media_dropped_source = {12, 3456};
    const auto e = read_exposition(format_metrics(m));
    CHECK(e.errors.empty());
    CHECK(e.samples.at("turnbridge_gateway_media_dropped_total{leg=browser,reason=source}") == 12);
    CHECK(e.samples.at("turnbridge_gateway_media_dropped_total{leg=trunk,reason=source}") == 3456);
}

TEST_CASE("/metrics text: SIP dropped at a full worker mailbox, with gateway mode on only (issue 12)") {
    Metrics m;
    m.gateway_mail_dropped = 7;
    auto e = read_exposition(format_metrics(m));
    CHECK(e.samples.count("turnbridge_gateway_mailbox_dropped_total") == 0);  // no gateway: no sample
    m.calls["example.org"];
    e = read_exposition(format_metrics(m));
    CHECK(e.errors.empty());
    CHECK(e.samples.at("turnbridge_gateway_mailbox_dropped_total") == 7);
}

TEST_CASE("label values escape backslash, quote and newline and stay UTF-8") {
    std::string out;
    append_label_value(out, "a\\b\"c\nd\xC3\xA9\xFF");
    CHECK(out == "a\\\\b\\\"c\\nd\xC3\xA9\xEF\xBF\xBD");
}

TEST_CASE("gauges write NaN and infinity in the format's spelling") {
    Metrics m;
    m.loop_lag_seconds = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()};
    const auto text = format_metrics(m);
    CHECK(text.find("turnbridge_loop_lag_seconds{worker=\"0\"} NaN\n") != std::string::npos);
    CHECK(text.find("turnbridge_loop_lag_seconds{worker=\"1\"} +Inf\n") != std::string::npos);
}

TEST_CASE("/metrics text: AI agent events by kind, with gateway mode on (issue 17)") {
    Metrics m;
    m.calls["example.org"];
    m.gateway_agent = {6, 1, 1000, 3, 4};
    const auto e = read_exposition(format_metrics(m));
    CHECK(e.errors.empty());
    CHECK(e.samples.at("turnbridge_gateway_agent_events_total{event=calls}") == 6);
    CHECK(e.samples.at("turnbridge_gateway_agent_events_total{event=failed}") == 1);
    CHECK(e.samples.at("turnbridge_gateway_agent_events_total{event=frames_dropped}") == 1000);
    CHECK(e.samples.at("turnbridge_gateway_agent_events_total{event=messages_dropped}") == 3);
    CHECK(e.samples.at("turnbridge_gateway_agent_events_total{event=bad_messages}") == 4);
}

TEST_CASE("/metrics text: AI agents' transfers by result, with gateway mode on (issue 17)") {
    Metrics m;
    CHECK(format_metrics(m).find("turnbridge_gateway_agent_transfers_total{") == std::string::npos);
    m.calls["example.org"];
    m.agent_transfers = {3, 2, 5, 1};
    const auto e = read_exposition(format_metrics(m));
    CHECK(e.errors.empty());
    CHECK(e.samples.at("turnbridge_gateway_agent_transfers_total{result=user}") == 3);
    CHECK(e.samples.at("turnbridge_gateway_agent_transfers_total{result=number}") == 2);
    CHECK(e.samples.at("turnbridge_gateway_agent_transfers_total{result=ignored}") == 5);
    CHECK(e.samples.at("turnbridge_gateway_agent_transfers_total{result=failed}") == 1);
}

TEST_CASE("/metrics text: outbound agent calls of POST /api/v1/calls by result, and those in progress (issue 17)") {
    Metrics m;
    m.calls["example.org"];
    m.agent_outbound = {5, 2, 3, 1, 1, 0, 1};
    m.agent_outbound_active = 2;
    const auto e = read_exposition(format_metrics(m));
    CHECK(e.errors.empty());
    CHECK(e.samples.at("turnbridge_gateway_agent_outbound_total{result=placed}") == 5);
    CHECK(e.samples.at("turnbridge_gateway_agent_outbound_total{result=refused}") == 2);
    CHECK(e.samples.at("turnbridge_gateway_agent_outbound_total{result=answered}") == 3);
    CHECK(e.samples.at("turnbridge_gateway_agent_outbound_total{result=busy}") == 1);
    CHECK(e.samples.at("turnbridge_gateway_agent_outbound_total{result=no-answer}") == 0);
    CHECK(e.samples.at("turnbridge_gateway_agent_outbound_active") == 2);
}
