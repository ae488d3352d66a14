// SPDX-License-Identifier: Apache-2.0
#pragma once
// POST /api/v1/calls (issue 17) on the control thread: checks an outbound agent call against
// the configuration (realm, gateway mode, agent URL, gateway.agent_outbound_max_calls in
// progress per realm), gives it an id and posts it to a gateway worker (round robin), which
// places it and reports its progress back (gateway::DialReports, any thread: a short lock, a
// few times per call, never on a packet). GET /api/v1/calls/ID reads the table; it keeps the
// calls in progress and the last kKeepEnded that ended.
#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "turnbridge/admin/backend.hpp"
#include "turnbridge/config/config.hpp"
#include "turnbridge/gateway/agent_dial.hpp"

namespace turnbridge::app {

class OutboundCalls final : public gateway::DialReports {
public:
    static constexpr std::size_t kKeepEnded = 1000;
    // `post` hands a dial to worker `index` (false: it has no gateway).
    using Post = std::function<bool(unsigned worker, const gateway::AgentDial& d)>;
    OutboundCalls(std::shared_ptr<const config::Config> cfg, unsigned workers, Post post);

    void set_config(std::shared_ptr<const config::Config> cfg);   // control thread
    admin::Placed place(const admin::PlaceCall& req, std::int64_t now_ms);   // control thread
    std::optional<admin::OutboundCall> find(std::string_view id);
    void fill(admin::Metrics& m);
    void on_dial_update(const gateway::DialUpdate& u) override;   // any thread

private:
    std::shared_ptr<const config::Config> cfg_;
    unsigned workers_;
    unsigned next_worker_ = 0;
    Post post_;
    std::mutex mu_;
    std::map<std::string, admin::OutboundCall, std::less<>> calls_;
    std::deque<std::string> ended_;   // ids of ended calls, oldest first (bounded by kKeepEnded)
    std::array<std::uint64_t, 7> counts_{};   // admin::kOutboundResults order
};

// The agent of a request: "agent:ws(s)://...", "ws(s)://..." as is, or a name of the realm's
// [gateway.agents] (with its authorization and parameters); nullopt with `why`.
std::optional<gateway::AgentDial> agent_of(const config::Realm& realm, const std::string& agent, std::string& why);

}  // namespace turnbridge::app
