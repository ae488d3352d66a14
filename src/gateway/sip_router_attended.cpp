// SPDX-License-Identifier: Apache-2.0
// SipRouter, attended transfer between two calls of one browser user (issue 14; the SIP is
// sip::Call's, call_attended.cpp; the media CallMedia's, call_media_join.cpp). The REFER's
// Replaces names the browser dialog of the other call, which must be a live call of the same
// user in the same realm, on this worker: GatewayShared::route() places a user's new browser
// call on the worker of their live call, so two calls of one user meet there unless an inbound
// call was placed elsewhere (then 503: both calls go on; see README).
// Inbound calls are placed by the first user their DID rings (placement_user()), so a user's
// inbound and outbound calls meet too, unless the DID rings several users.
// After the join both calls stay live with their trunk legs only, end reason "transferred", and
// no longer count as the user's (gateway.max_calls_per_user); the first to end hangs up the other.
#include "turnbridge/base/log.hpp"
#include "turnbridge/config/agent_url.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/gateway/trunk_identity.hpp"
#include "turnbridge/sip/numbers.hpp"
#include "turnbridge/sip/refer.hpp"

namespace turnbridge::gateway {

std::string SipRouter::placement_user(const SipFlow& flow, const sip::Message& invite) const {
    if (!flow.websocket) {
        // A DID routed to users (not to an agent): where the first of them has a live call.
        const auto did = sip::dialled_number(invite);
        const config::Realm* realm = trunk_realm(flow.peer, did);
        const auto* route = realm == nullptr ? nullptr : find_route(realm->gateway, did);
        if (route == nullptr || route->empty() || route->front().starts_with(config::kAgentPrefix)) return {};
        return route->front() + "@" + realm->name;
    }
    const auto from = invite.from();
    const std::string ruri = invite.request_uri();
    std::string_view host = ruri;
    const auto at = host.rfind('@');
    if (!from || at == std::string_view::npos) return {};
    host = host.substr(at + 1);
    host = host.substr(0, host.starts_with('[') ? host.find(']') + 1 : host.find_first_of(":;?>"));
    const auto user = sip::uri_user(from->uri);
    return user.empty() || host.empty() ? std::string() : user + "@" + std::string(host);
}

void SipRouter::arm_attended(CallEntry& e) {
    CallEntry* entry = &e;   // a std::list element: it stays where it is while the call lives
    e.call->set_attended_join([this, entry](sip::Time now, const sip::Replaces& replaces, sip::TransactionLayer&,
                                            std::vector<sip::Action>& out) { return join_calls(now, *entry, replaces, out); });
}

int SipRouter::join_calls(sip::Time now, CallEntry& a, const sip::Replaces& replaces, std::vector<sip::Action>& out) {
    CallEntry* b = nullptr;
    for (auto& e : calls_)
        if (&e != &a && e.call->state() == sip::Call::State::Confirmed && e.call->has_browser_dialog(replaces)) {
            b = &e;
            break;
        }
    if (b == nullptr) {
        if (const auto w = shared_->placed(replaces.call_id); w && *w != worker_) {
            log::warn("call {}: attended transfer to call {} on worker {} refused: the two calls are on different "
                      "workers", a.call_id, replaces.call_id, *w);
            return 503;
        }
        log::info("call {}: attended transfer refused: its Replaces names no live call", a.call_id);
        return 481;
    }
    // Never another user's call: the Replaces names a dialog, and only the caller's own are theirs.
    if (a.summary.account.empty() || b->summary.account != a.summary.account || b->summary.realm != a.summary.realm) {
        log::warn("call {}: attended transfer refused: call {} is not {}@{}'s", a.call_id, b->call_id, a.summary.account,
                  a.summary.realm);
        return 481;
    }
    if (a.joined != nullptr || b->joined != nullptr || !b->call->joinable()) return 491;
    if (!a.agent_key.empty() || !b->agent_key.empty() || !a.media->join_trunk(*b->media)) {
        log::warn("call {}: attended transfer to call {} refused: their media cannot be joined", a.call_id, b->call_id);
        return 503;
    }
    b->call->release_browser(now, layer_, out);
    a.joined = b;
    b->joined = &a;
    for (CallEntry* e : {&a, b}) {
        e->summary.end_reason = "transferred";
        e->browser_flows.clear();   // the browser's WebSocket closing no longer ends them
        if (!e->counted_user.empty()) {
            shared_->drop_user(worker_, e->summary.realm, e->counted_user);
            e->counted_user.clear();
        }
    }
    log::info("call {}: {}@{} joined it to call {} (attended transfer): {} now talks to {}", a.call_id,
              a.summary.account, a.summary.realm, b->call_id, a.summary.remote, b->summary.remote);
    return 0;
}

void SipRouter::end_joined(sip::Time now, std::vector<sip::Action>& out) {
    std::vector<sip::Action> in;
    for (auto& e : calls_) {
        if (e.joined == nullptr || e.call->state() != sip::Call::State::Ended) continue;
        CallEntry* other = e.joined;
        e.joined = nullptr;
        other->joined = nullptr;
        if (other->call->state() == sip::Call::State::Ended) continue;
        log::info("call {}: the call it was joined to ended ({}); hanging up", other->call_id, e.call_id);
        other->call->hang_up(now, layer_, in);
    }
    if (!in.empty()) process(now, 0, nullptr, in, out);
}

}  // namespace turnbridge::gateway
