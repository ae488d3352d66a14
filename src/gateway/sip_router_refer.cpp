// SPDX-License-Identifier: Apache-2.0
// SipRouter, the transfers the trunk asks for (issue 14; the Call does the SIP, call_refer_in.cpp).
// A REFER from the trunk, on an inbound or a browser's outbound call, names a user of the realm (sip:alice@realm), or a number routed to
// users (tel:+15550123, sip:+15550123@realm or @our address: the realm's gateway.routes, as an
// inbound call to that DID would ring). Anything else is no target of ours (403): the gateway
// rings only its own realm's browsers, never another domain or the trunk again.
// An out-of-dialog INVITE with Replaces (RFC 3891 §3) takes over the trunk dialog it names, when
// it comes from that realm's trunk; a Replaces that names no dialog of ours gets 481.
#include <algorithm>

#include "turnbridge/base/log.hpp"
#include "turnbridge/config/agent_url.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/gateway/trunk_choice.hpp"
#include "turnbridge/gateway/trunk_identity.hpp"
#include "turnbridge/sip/refer.hpp"

namespace turnbridge::gateway {
namespace {

// "127.0.0.1:5060" / "[::1]:5060" -> the host alone.
std::string_view host_of(std::string_view hostport) {
    if (hostport.starts_with('[')) return hostport.substr(0, hostport.find(']') + 1);
    return hostport.substr(0, hostport.find(':'));
}

}  // namespace

void SipRouter::arm_refer(CallEntry& e) {
    CallEntry* entry = &e;   // a std::list element: it stays where it is while the call lives
    e.call->set_refer_lookup([this, entry](const sip::ReferTarget& t) -> std::optional<sip::Call::ReferredUser> {
        const config::Realm* realm = gateway_realm(entry->summary.realm);
        if (realm == nullptr) return std::nullopt;
        if (!t.host.empty() && t.host != realm->name && t.host != host_of(local_.sent_by)) return std::nullopt;
        std::vector<std::string> users;
        if (const auto* route = find_route(realm->gateway, t.user)) {
            if (route->size() == 1 && route->front().starts_with(config::kAgentPrefix)) return std::nullopt;   // issue 17
            users = *route;
        } else if (t.scheme != "tel" && realm->users.contains(t.user)) {
            users = {t.user};
        } else if (t.scheme != "tel" &&
                   !shared_->with_registrar([&](sip::Registrar& r) { return r.lookup(t.user + "@" + realm->name); }).empty()) {
            users = {t.user};   // a user of the REST secret, registered now
        } else {
            return std::nullopt;
        }
        sip::Call::ReferredUser who;
        who.user = users.size() == 1 ? users.front() : t.user;
        for (const auto& user : users) {
            auto b = shared_->with_registrar([&](sip::Registrar& r) { return r.lookup(user + "@" + realm->name); });
            if (!b.empty() && user_at_limit(*realm, user)) continue;   // gateway.max_calls_per_user
            who.bindings.insert(who.bindings.end(), b.begin(), b.end());
        }
        // The new browsers' connections keep the call alive as the first one's did.
        for (const auto& b : who.bindings)
            if (std::find(entry->browser_flows.begin(), entry->browser_flows.end(), b.transport) == entry->browser_flows.end())
                entry->browser_flows.push_back(b.transport);
        log::info("call {}: the trunk transfers it to {}@{} ({} registration{})", entry->call_id, who.user, realm->name,
                  who.bindings.size(), who.bindings.size() == 1 ? "" : "s");
        return who;
    });
}

void SipRouter::on_replacing_invite(sip::Time now, const SipFlow& flow, sip::RequestIn& r, std::vector<sip::Action>& out) {
    const auto value = r.request.header("replaces");
    if (r.request.header_count("replaces") != 1 || !value || !sip::parse_replaces(*value))
        return reply(now, r.tx, r.request, 400, out, "Bad Replaces");   // RFC 3891 §6.1
    for (auto& e : calls_) {
        if (e.call->state() == sip::Call::State::Ended || flow.websocket || !e.call->replaces_trunk_dialog(r.request))
            continue;
        const config::Realm* realm = gateway_realm(e.summary.realm);
        // Only that realm's trunks move it (issue 14: any of its trunks, trunk_choice.hpp).
        const auto trunks = realm == nullptr ? std::span<const config::Realm>() : trunks_of(*realm);
        if (std::none_of(trunks.begin(), trunks.end(), [&](const config::Realm& t) { return trunk_allowed(t, flow.peer); }))
            break;
        using T = config::SipTrunk::Transport;
        const T transport = flow.secure ? T::Tls : flow.reliable ? T::Tcp : T::Udp;
        const bool sips = r.request.request_uri().starts_with("sips:");
        sip::LegAddress trunk{flow.id, flow.reliable, marked(trunk_local(transport, sips, flow.local, "turnbridge"))};
        e.trunk_flow = flow.id;
        log::info("call {}: the trunk replaces its dialog (RFC 3891)", e.call_id);
        std::vector<sip::Action> in;
        e.call->replace_trunk_dialog(now, r.tx, r.request, std::move(trunk), layer_, in);
        return process(now, 0, &flow, in, out);
    }
    // §3: no confirmed dialog of ours matches (or it is a browser's, which we do not hand over).
    reply(now, r.tx, r.request, 481, out, "Call/Transaction Does Not Exist");
}

}  // namespace turnbridge::gateway
