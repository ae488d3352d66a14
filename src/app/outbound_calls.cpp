// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/app/outbound_calls.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/random.hpp"

namespace turnbridge::app {
namespace {

std::size_t result_index(std::string_view r) {
    const auto it = std::find(admin::kOutboundResults.begin(), admin::kOutboundResults.end(), r);
    return static_cast<std::size_t>(it - admin::kOutboundResults.begin());
}

}  // namespace

std::optional<gateway::AgentDial> agent_of(const config::Realm& realm, const std::string& agent, std::string& why) {
    gateway::AgentDial d;
    // A name a browser could dial too ([realm.X.gateway.agents]): its URL, authorization, parameters.
    if (auto it = realm.gateway.agents.find(agent); it != realm.gateway.agents.end()) {
        d.url = it->second.url;
        d.authorization = it->second.authorization;
        d.parameters = it->second.parameters;
        d.format = it->second.media_format;
        return d;
    }
    // A URL as in a route ("agent:ws://...") or bare ("ws://...", "wss://...").
    std::string entry = agent;
    if (entry.starts_with("ws://") || entry.starts_with("wss://")) entry = std::string(config::kAgentPrefix) + entry;
    if (!entry.starts_with(config::kAgentPrefix)) {
        why = "expected agent:ws://HOST:PORT/PATH, ws://..., wss://... or a name of [gateway.agents]";
        return std::nullopt;
    }
    auto url = config::parse_agent_url(entry, why);
    if (!url) return std::nullopt;
    d.url = std::move(*url);
    return d;
}

OutboundCalls::OutboundCalls(std::shared_ptr<const config::Config> cfg, unsigned workers, Post post)
    : cfg_(std::move(cfg)), workers_(workers == 0 ? 1 : workers), post_(std::move(post)) {}

void OutboundCalls::set_config(std::shared_ptr<const config::Config> cfg) { cfg_ = std::move(cfg); }

admin::Placed OutboundCalls::place(const admin::PlaceCall& req, std::int64_t now_ms) {
    admin::Placed p;
    const auto fail = [&](int status, std::string error, std::string field) {
        p.status = status;
        p.error = std::move(error);
        p.field = std::move(field);
        return p;
    };
    const auto realm = cfg_->realms.find(req.realm);
    if (realm == cfg_->realms.end()) return fail(404, "no such realm", "realm");
    const auto& gw = realm->second.gateway;
    if (!gw.enabled) return fail(409, "the realm has no gateway mode (no trunk to call through)", "realm");
    if (gw.agent_outbound_max_calls == 0)
        return fail(409, "outbound agent calls are off in this realm (gateway.agent_outbound_max_calls = 0)", "realm");
    std::string why;
    auto dial = agent_of(realm->second, req.agent, why);
    if (!dial) return fail(400, why, "agent");
    // The request's media_format over the agent's (calls_api.cpp validated it), else the realm's.
    if (const auto f = config::parse_agent_media_format(req.media_format)) dial->format = *f;
    admin::OutboundCall c;
    c.id = fmt::format("dial-{:016x}", gateway::random_value<std::uint64_t>(gateway::random_bytes));
    c.realm = req.realm;
    c.to = req.to;
    c.from = req.from;
    c.agent = dial->url.text;
    c.media_format = std::string(config::to_string(dial->format.value_or(gw.agent_media_format)));
    c.created_ms = now_ms;
    {
        std::lock_guard lock(mu_);
        const auto active = static_cast<std::uint64_t>(std::count_if(calls_.begin(), calls_.end(), [&](const auto& kv) {
            return kv.second.realm == req.realm && !gateway::is_final_text(kv.second.status);
        }));
        if (active >= gw.agent_outbound_max_calls) {
            ++counts_[result_index("refused")];
            return fail(429, fmt::format("{} outbound agent calls in progress in this realm "
                                         "(gateway.agent_outbound_max_calls)", active), "realm");
        }
        calls_.emplace(c.id, c);
        ++counts_[result_index("placed")];
    }
    const unsigned worker = next_worker_++ % workers_;
    dial->id = c.id;
    dial->realm = req.realm;
    dial->to = req.to;
    dial->from = req.from;
    if (!post_ || !post_(worker, *dial)) {
        on_dial_update({c.id, gateway::DialUpdate::State::Failed, 503, "", "no gateway worker"});
        return fail(503, "no gateway worker to place the call", "");
    }
    log::info("admin: outbound call {}: {} -> {} in realm {}, agent {} (worker {})", c.id, req.from, req.to, req.realm,
              dial->url.text, worker);
    p.call = std::move(c);
    return p;
}

void OutboundCalls::on_dial_update(const gateway::DialUpdate& u) {
    std::lock_guard lock(mu_);
    auto it = calls_.find(u.id);
    if (it == calls_.end()) return;
    auto& c = it->second;
    if (gateway::is_final_text(c.status)) return;   // the first outcome stands
    c.status = std::string(gateway::to_string(u.state));
    if (u.sip_code >= 200) c.sip_code = u.sip_code;   // a final status; ringing's 180 is not one
    if (!u.call_id.empty()) c.call_id = u.call_id;
    if (!u.end_reason.empty()) c.end_reason = u.end_reason;
    if (u.state == gateway::DialUpdate::State::Answered) ++counts_[result_index("answered")];
    if (!gateway::is_final(u.state)) return;
    ++counts_[result_index(c.status)];
    ended_.push_back(u.id);
    while (ended_.size() > kKeepEnded) {
        calls_.erase(ended_.front());
        ended_.pop_front();
    }
}

std::optional<admin::OutboundCall> OutboundCalls::find(std::string_view id) {
    std::lock_guard lock(mu_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return std::nullopt;
    return it->second;
}

void OutboundCalls::fill(admin::Metrics& m) {
    std::lock_guard lock(mu_);
    m.agent_outbound = counts_;
    m.agent_outbound_active = static_cast<std::uint64_t>(std::count_if(
        calls_.begin(), calls_.end(), [](const auto& kv) { return !gateway::is_final_text(kv.second.status); }));
}

}  // namespace turnbridge::app
