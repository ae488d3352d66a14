// SPDX-License-Identifier: Apache-2.0
// Fleet mode (issue 15): SIP location across nodes. A trunk INVITE for a DID whose users have
// no browser registered here, but have one on other live nodes (gateway::FleetLocations, a
// snapshot the fleet shipper refreshes every second), is proxied to those nodes over UDP, each
// of which takes it as if its trunk had sent it and bridges the media itself. This node stays
// on the signalling path only (Via, Record-Route), never on the media path.
//
// When the DID's users have browsers both here and on other live nodes, this node is one more
// branch of the fork: the INVITE is proxied to our own SIP address too, and comes back in as a
// peer's would (fleet_looped), ringing the local browsers through the ordinary trunk path. One
// fork (forks_) then sees every branch alike: the first 2xx wins wherever it is from, and the
// CANCEL of our own branch ends the local ringing like a trunk's CANCEL. Merging local ringing
// into the fork by hand would duplicate the trunk INVITE path; the loop costs one UDP datagram.
//
// The proxy keeps no state per message but per proxied INVITE (forks_: its branches, for the
// first-2xx-wins rule and the CANCELs of RFC 3261 §16.7 step 10). Everything else is stateless
// forwarding (§16.11): our Via branch carries the flow the request came on, so its responses
// find their way back without a table, and a request carrying our Record-Route (§16.4) is sent
// on to its next hop.
#include <algorithm>
#include <fmt/format.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/config/agent_url.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/gateway/trunk_identity.hpp"
#include "turnbridge/sip/numbers.hpp"
#include "turnbridge/sip/transaction.hpp"

namespace turnbridge::gateway {
namespace {

using namespace std::chrono_literals;

// Our branches: the magic cookie (§8.1.1.7), a mark, the flow to send responses back on, a
// hash of the upstream branch (and fork index), so that a retransmission or the CANCEL of a
// proxied INVITE gets the same branch as the INVITE (§16.11), and a MAC of both
// (FleetLocations::branch_tag): only a branch we made names a flow (the responses of stateless
// forwarding find their way back by it, and any UDP source may send a response).
constexpr std::string_view kBranchMark = "z9hG4bKfleet";
// A branch that gave no response at all in this time is dead (its node died since the last
// registry snapshot): with no other branch left, the trunk gets 480 well within 3 s.
constexpr auto kBranchWait = 2s;
// A fork stays this long after its final response, for retransmissions (§17: 64*T1), and at
// most kForkMax in all (a browser ringing for minutes).
constexpr auto kLinger = 32s;
constexpr auto kForkMax = 10min;

std::uint64_t fnv1a(std::string_view s, std::uint64_t seed) {
    std::uint64_t h = 1469598103934665603ull ^ seed;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

std::string branch(const FleetLocations& keys, sip::TransportId back, std::string_view upstream_branch, std::size_t index) {
    const auto signed_part = fmt::format("{:x}x{:016x}", back, fnv1a(upstream_branch, index));
    return fmt::format("{}{}{:016x}", kBranchMark, signed_part, keys.branch_tag(signed_part));
}

std::optional<std::uint64_t> hex_of(std::string_view s) {
    if (s.empty() || s.size() > 16) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return std::nullopt;
        v = v * 16 + static_cast<unsigned>(d);
    }
    return v;
}

// The flow a response to our branch goes back on; nullopt when the branch is not one we made.
std::optional<sip::TransportId> flow_of(const FleetLocations& keys, std::string_view b) {
    if (!b.starts_with(kBranchMark)) return std::nullopt;
    b.remove_prefix(kBranchMark.size());
    const auto x = b.find('x');
    if (x == std::string_view::npos || b.size() != x + 1 + 32) return std::nullopt;
    const auto id = hex_of(b.substr(0, x));
    const auto tag = hex_of(b.substr(x + 17));
    if (!id || !hex_of(b.substr(x + 1, 16)) || !tag || *tag == 0 || *tag != keys.branch_tag(b.substr(0, x + 17)))
        return std::nullopt;
    return *id;
}

// "sip:user@1.2.3.4:5060;transport=udp" or "<sip:...;lr>" -> the address (IP literals only:
// nodes and trunks in a fleet are addressed by IP).
std::optional<Endpoint> uri_endpoint(std::string_view uri) {
    if (auto lt = uri.find('<'); lt != std::string_view::npos) uri = uri.substr(lt + 1, uri.find('>') - lt - 1);
    if (uri.starts_with("sip:")) uri.remove_prefix(4);
    else return std::nullopt;
    if (auto at = uri.find('@'); at != std::string_view::npos) uri.remove_prefix(at + 1);
    uri = uri.substr(0, uri.find_first_of(";?>"));
    if (auto ep = Endpoint::parse(uri)) return ep;
    if (auto ip = IpAddress::parse(uri)) return Endpoint{*ip, 5060};
    return std::nullopt;
}

}  // namespace

bool SipRouter::fleet_peer(const IpAddress& ip) const {
    if (fleet_ == nullptr) return false;
    const auto snap = fleet_->snapshot();
    return snap && snap->is_peer(ip);
}

bool SipRouter::fleet_looped(const SipFlow& flow, const sip::Message& m) const {
    return m.is_request() && fleet_self(flow.peer) && flow_of(*fleet_, m.top_via_branch()) && m.top_via_sent_by() == fleet_sent_by_;
}

bool SipRouter::fleet_node(const IpAddress& ip) const { return fleet_peer(ip) || fleet_self(ip); }

bool SipRouter::fleet_may_call(sip::Time now, const SipFlow& flow) const {
    if (fleet_ == nullptr || flow.websocket || flow.reliable) return false;
    if (fleet_self(flow.peer)) return true;
    const auto snap = fleet_->snapshot();
    return snap && snap->is_live_peer(flow.peer, now);
}

bool SipRouter::fleet_forward(sip::Time now, const SipFlow& flow, sip::Message& m, std::vector<sip::Action>& out) {
    if (flow.websocket) return false;
    if (!m.is_request()) {
        if (!m.top_via_branch().starts_with(kBranchMark)) return false;
        if (!flow_of(*fleet_, m.top_via_branch())) {   // made up: it would name a flow of its choice
            count(sip::Limit::FleetRefused);
            return true;
        }
        fleet_response(now, m, out);
        return true;
    }
    const auto method = m.method();
    // A request on a dialog we Record-Routed: on to its next hop (§16.4, §16.6).
    const auto routes = m.routes();
    const std::string ours = "fleet@" + fleet_sent_by_;
    if (!routes.empty() && routes.front().find(ours) != std::string::npos) {
        m.pop_route();   // ours (§16.4); the rest stay in order
        const auto to = uri_endpoint(routes.size() > 1 ? routes[1] : m.request_uri());
        const auto hops = m.max_forwards().value_or(70);
        if (!to || hops <= 1) return true;   // nowhere to go: dropped (§16.3 would answer 483)
        // Only the two ends of a dialog we proxied use our Record-Route: a trunk and a node. Not
        // an open relay: neither anyone connecting over TCP, nor toward any address a request names.
        if (!is_trunk(flow.peer) || !(fleet_node(to->ip) || is_trunk(to->ip))) {
            log::debug("sip: {} from {} routed through us to {}: not between a trunk and a node; dropped", method,
                       flow.peer.to_string(), to->to_string());
            count(sip::Limit::FleetRefused);
            return true;
        }
        m.remove_header("Max-Forwards");   // set_max_forwards adds one (§16.6 step 3: decrement)
        m.set_max_forwards(hops - 1);
        m.push_via("UDP", fleet_sent_by_, branch(*fleet_, flow.id, m.top_via_branch(), 0));
        if (auto id = fleet_flow_(*to)) out.push_back(sip::Send{*id, m.serialize()});
        return true;
    }
    // The trunk's CANCEL, or ACK of a non-2xx, for an INVITE we proxied: to every branch, with
    // the branch's Via (§9.1, §16.10; hop-by-hop, but one Via copy of the INVITE's is enough).
    if ((method == "CANCEL" || method == "ACK") && !fleet_peer(flow.peer) && !fleet_looped(flow, m)) {
        auto it = forks_.find(m.call_id());
        if (it == forks_.end()) return false;
        if (flow.id != it->second.upstream && !is_trunk(flow.peer)) return false;   // not the trunk's: 481
        for (const auto& b : it->second.branches) {
            auto copy = m.clone();
            copy.push_via("UDP", fleet_sent_by_, b.via);
            out.push_back(sip::Send{b.flow, copy.serialize()});
        }
        return true;
    }
    if (method == "INVITE" && m.to_tag().empty()) return fleet_fork(now, flow, m, out);
    return false;
}

bool SipRouter::fleet_fork(sip::Time now, const SipFlow& flow, const sip::Message& m, std::vector<sip::Action>& out) {
    // Proxied to us (by a peer, or by ourselves as a branch): ours to answer (never proxied on).
    if (fleet_peer(flow.peer) || fleet_looped(flow, m)) return false;
    if (auto it = forks_.find(m.call_id()); it != forks_.end()) {
        for (const auto& b : it->second.branches)   // a retransmission: the branches get it again
            if (b.final_status == 0) out.push_back(sip::Send{b.flow, b.bytes});
        return true;
    }
    const auto did = sip::dialled_number(m);
    const config::Realm* realm = trunk_realm(flow.peer, did);
    if (realm == nullptr) return false;
    const auto* route = find_route(realm->gateway, did);
    if (route == nullptr || (route->size() == 1 && route->front().starts_with(config::kAgentPrefix))) return false;
    const auto snap = fleet_->snapshot();
    if (!snap) return false;
    std::vector<const FleetPeer*> owners;
    bool local = false;
    for (const auto& user : *route) {
        const auto aor = user + "@" + realm->name;
        if (!shared_->with_registrar([&](sip::Registrar& reg) { return reg.lookup(aor); }).empty()) local = true;
        for (const auto* p : snap->owners(aor, now))
            if (std::find(owners.begin(), owners.end(), p) == owners.end()) owners.push_back(p);
    }
    // No other live owner: the local path (it rings the browsers here, or answers 480).
    if (owners.empty()) return false;
    // Browsers here too: we are one more branch (the header comment says why a loop). Without a
    // usable address of our own the local browsers ring alone, as before issue 15's fork.
    if (local) {
        if (fleet_self_.sip.port == 0) return false;
        owners.insert(owners.begin(), &fleet_self_);
    }
    const auto hops = m.max_forwards().value_or(70);
    if (hops <= 1) return false;
    // Bounded like the transaction table: a fork is a proxied transaction.
    if (forks_.size() >= cfg_->sip_transactions) {
        count(sip::Limit::Transactions);
        return false;
    }
    FleetFork f;
    f.upstream = flow.id;
    f.invite = m.serialize();
    f.started = now;
    const auto upstream_branch = m.top_via_branch();
    for (std::size_t i = 0; i < owners.size(); ++i) {
        auto id = fleet_flow_(owners[i]->sip);
        if (!id) continue;
        auto copy = m.clone();
        copy.remove_header("Max-Forwards");   // set_max_forwards adds one (§16.6 step 3: decrement)
        copy.set_max_forwards(hops - 1);
        // §16.6 step 4: stay on the dialog's path, so the owner's in-dialog requests (it sends
        // them on its flow toward us) find their way to the trunk.
        copy.add_record_route(fmt::format("<sip:fleet@{};lr>", fleet_sent_by_));
        const auto via = branch(*fleet_, flow.id, upstream_branch, i);
        copy.push_via("UDP", fleet_sent_by_, via);
        FleetBranch b{owners[i]->sip, *id, via, copy.serialize(), 0, false};
        out.push_back(sip::Send{b.flow, b.bytes});
        f.branches.push_back(std::move(b));
    }
    if (f.branches.empty()) return false;
    // §16.2: a stateful proxy answers 100 itself, so the trunk stops retransmitting.
    out.push_back(sip::Send{flow.id, sip::Message::response(m, 100).serialize()});
    log::info("sip: INVITE {} for {} proxied to {} node{}{} (issue 15: registered there)", m.call_id(), did,
              f.branches.size(), f.branches.size() == 1 ? "" : "s", local ? ", this one included" : "");
    shared_->hold_placement(m.call_id());   // a browser may ring longer than Placement::kLinger
    forks_.emplace(m.call_id(), std::move(f));
    return true;
}

void SipRouter::fleet_response(sip::Time now, sip::Message& m, std::vector<sip::Action>& out) {
    const auto ours = m.top_via_branch();
    const auto back = *flow_of(*fleet_, ours);
    const auto status = m.status();
    auto it = m.cseq_method() == "INVITE" ? forks_.find(m.call_id()) : forks_.end();
    m.pop_via();
    if (it != forks_.end()) {
        FleetFork& f = it->second;
        auto b = std::find_if(f.branches.begin(), f.branches.end(), [&](const FleetBranch& x) { return x.via == ours; });
        if (b != f.branches.end()) b->heard = true;
        if (status == 100) return;   // hop by hop (§16.7 step 3); we sent our own
        if (status >= 200 && status < 300) {
            if (!f.answered) {
                f.answered = true;
                // §16.7 step 10: the first 2xx wins; the other branches still ringing are CANCELed.
                for (auto& o : f.branches) {
                    if (o.via == ours || o.final_status != 0) continue;
                    if (auto invite = sip::Message::parse(o.bytes))
                        out.push_back(sip::Send{o.flow, sip::make_cancel(*invite).serialize()});
                }
            }
            if (b != f.branches.end()) b->final_status = status;
            f.done = true;
            f.done_at = now;
        } else if (status >= 300) {
            // §16.7 step 2 / §17.1.1.3: the proxy's client transaction ACKs a branch's failure
            // itself (hop by hop), else the branch resends it until its Timer H.
            if (b != f.branches.end()) {
                if (auto invite = sip::Message::parse(b->bytes))
                    out.push_back(sip::Send{b->flow, sip::make_failure_ack(*invite, m).serialize()});
                b->final_status = status;
            }
            if (f.answered || f.done) return;   // another branch has the call
            const bool all = std::all_of(f.branches.begin(), f.branches.end(),
                                         [](const FleetBranch& x) { return x.final_status != 0; });
            if (!all) return;   // §16.7 step 6: wait for the others
            f.done = true;
            f.done_at = now;
        }
    }
    if (m.via_count() == 0) return;   // it was for us alone (the 200 of our CANCEL)
    out.push_back(sip::Send{back, m.serialize()});
}

void SipRouter::fleet_timer(sip::Time now, std::vector<sip::Action>& out) {
    for (auto it = forks_.begin(); it != forks_.end();) {
        FleetFork& f = it->second;
        if (f.done ? now >= f.done_at + kLinger : now >= f.started + kForkMax) {
            shared_->release_placement(now, it->first);
            it = forks_.erase(it);
            continue;
        }
        if (!f.done && now >= f.started + kBranchWait) {
            for (auto& b : f.branches)
                if (!b.heard && b.final_status == 0) b.final_status = 408;
            if (std::all_of(f.branches.begin(), f.branches.end(), [](const FleetBranch& b) { return b.final_status != 0; })) {
                // Every owner is gone: as when no node holds the user (issue 15: 480).
                if (auto invite = sip::Message::parse(f.invite)) {
                    auto r = sip::Message::response(*invite, 480, {}, sip::new_tag(random_));
                    out.push_back(sip::Send{f.upstream, r.serialize()});
                }
                log::info("sip: INVITE {}: no node it was proxied to answered; 480", it->first);
                f.done = true;
                f.done_at = now;
            }
        }
        ++it;
    }
}

std::optional<sip::Time> SipRouter::fleet_next_wake() const {
    std::optional<sip::Time> t;
    for (const auto& [id, f] : forks_) {
        const bool waiting = std::any_of(f.branches.begin(), f.branches.end(),
                                         [](const FleetBranch& b) { return !b.heard && b.final_status == 0; });
        const auto at = f.done ? f.done_at + kLinger : f.started + (waiting ? kBranchWait : kForkMax);
        if (!t || at < *t) t = at;
    }
    return t;
}

}  // namespace turnbridge::gateway
