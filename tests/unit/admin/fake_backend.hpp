// SPDX-License-Identifier: Apache-2.0
#pragma once
// An admin::Backend that returns what the test put in and records what it was asked.
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "turnbridge/admin/backend.hpp"

namespace turnbridge::admin::testing {

class FakeBackend : public Backend {
public:
    std::vector<LiveAllocation> live_allocations;
    std::vector<accounting::UsageRow> rows;
    Metrics metrics_value;
    std::vector<std::string> kicked;
    std::vector<accounting::UsageQuery> queries;
    std::vector<accounting::CallRecord> call_records;
    std::vector<accounting::CallQuery> call_queries;
    bool throw_on_usage = false;
    std::vector<PlaceCall> placed;            // POST /api/v1/calls as the backend got them
    Placed place_answer;                      // what place_call answers (its call gets the id "dial-1")
    std::optional<OutboundCall> outbound;     // what GET /api/v1/calls/ID finds
    std::vector<std::string> outbound_asked;

    std::vector<LiveAllocation> live() override { return live_allocations; }
    bool kick(std::string_view id) override {
        for (auto it = live_allocations.begin(); it != live_allocations.end(); ++it) {
            if (it->record.id == id) {
                kicked.emplace_back(id);
                live_allocations.erase(it);
                return true;
            }
        }
        return false;
    }
    std::vector<accounting::UsageRow> usage(const accounting::UsageQuery& q) override {
        if (throw_on_usage) throw std::runtime_error("database is locked");
        queries.push_back(q);
        return rows;
    }
    Metrics metrics() override { return metrics_value; }
    Placed place_call(const PlaceCall& p) override {
        placed.push_back(p);
        Placed r = place_answer;
        r.call.id = "dial-1";
        r.call.realm = p.realm;
        r.call.to = p.to;
        r.call.from = p.from;
        r.call.agent = p.agent;
        return r;
    }
    std::optional<OutboundCall> outbound_call(std::string_view id) override {
        outbound_asked.emplace_back(id);
        return outbound;
    }
    std::vector<accounting::CallRecord> calls(const accounting::CallQuery& q) override {
        call_queries.push_back(q);
        return call_records;
    }
};

inline LiveAllocation sample_allocation(std::string id, std::string account) {
    LiveAllocation a;
    a.record.id = std::move(id);
    a.record.account = account;
    a.record.username = "1793535296:" + account;
    a.record.realm = "example.org";
    a.record.client = "127.0.0.1:50000";
    a.record.transport = "udp";
    a.record.relay = "127.0.0.1:61000";
    a.record.start_ms = 1793535296000;  // 2026-11-01T12:14:56Z
    a.record.peers = 2;
    for (std::size_t d = 0; d < accounting::kDirections; ++d) {
        a.record.traffic.packets[d] = 10 + d;
        a.record.traffic.payload_bytes[d] = 1000 + d;
        a.record.traffic.wire_bytes[d] = 1040 + d;
    }
    a.bitrate_in_bps = 64000;
    a.bitrate_out_bps = 128000.5;
    return a;
}

}  // namespace turnbridge::admin::testing
