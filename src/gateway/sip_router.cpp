// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/gateway/trunk_choice.hpp"

#include "turnbridge/config/agent_url.hpp"

#include <algorithm>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/trunk_identity.hpp"

namespace turnbridge::gateway {
namespace {

using namespace std::chrono_literals;

// How long an ended call stays to absorb retransmissions (RFC 3261 §17: 64*T1).
constexpr auto kLinger = 32s;

template <class... F> struct Overloaded : F... { using F::operator()...; };
template <class... F> Overloaded(F...) -> Overloaded<F...>;

struct UriParts {
    std::string user, host;
};

// "sip:user@host:port;params" -> user and host (no port); IPv6 references keep their brackets.
UriParts uri_parts(std::string_view uri) {
    UriParts p;
    if (uri.starts_with("sips:")) uri.remove_prefix(5);
    else if (uri.starts_with("sip:")) uri.remove_prefix(4);
    uri = uri.substr(0, uri.find_first_of(";?>"));
    if (auto at = uri.rfind('@'); at != std::string_view::npos) {
        p.user = std::string(uri.substr(0, at));
        uri.remove_prefix(at + 1);
    }
    if (uri.starts_with('[')) p.host = std::string(uri.substr(0, uri.find(']') + 1));
    else p.host = std::string(uri.substr(0, uri.find(':')));
    return p;
}

class PassThrough final : public sip::MediaSdp {
public:
    std::optional<std::string> map_offer(bool, const std::string& sdp) override { return sdp; }
    std::optional<std::string> map_answer(bool, const std::string& sdp) override { return sdp; }
};

sip::SessionTimerConfig session_timers(const config::Gateway& gw) {
    return {gw.session_timers, gw.session_expires, gw.min_se};
}

void keep_earliest(std::optional<sip::Time>& t, std::optional<sip::Time> other) {
    if (other && (!t || *other < *t)) t = other;
}

}  // namespace

sip::TrunkAccount SipRouter::trunk_account(const config::Gateway& gw, const TrunkLeg& trunk) {
    // By name (TrunkAccount grows; -Wmissing-field-initializers); with_identity() sets the rest.
    sip::TrunkAccount account;
    account.host = trunk.hostport;
    account.uri_params = trunk.uri_params;
    account.username = gw.trunk_username;
    account.password = gw.trunk_password;
    account.caller_id = gw.caller_id;
    account.scheme = trunk.scheme;
    account.timers = session_timers(gw);
    account.late_offer = gw.late_offer;
    account.rel100 = gw.rel100;
    return account;
}

std::unique_ptr<sip::MediaSdp> pass_through_media(const config::Realm&, bool) {
    return std::make_unique<PassThrough>();
}

SipRouter::SipRouter(std::shared_ptr<const config::Config> cfg, const turn::NonceMinter& nonces, SipLocal local,
                     MediaFactory media, TrunkFlow trunk_flow, sip::Random random)
    : cfg_(std::move(cfg)), nonces_(nonces), local_(std::move(local)), media_(std::move(media)),
      trunk_flow_(std::move(trunk_flow)), random_(std::move(random)),
      rate_(turn::ReflectionGuard::with_random_seed(cfg_->sip_requests_per_second, cfg_->sip_requests_burst)),
      trunk_rate_(turn::ReflectionGuard::with_random_seed(0, 1)) {
    own_shared_ = std::make_unique<GatewayShared>(1, cfg_->sip_transactions);
    shared_ = own_shared_.get();
    apply_limits();
}

SipRouter::~SipRouter() = default;

void SipRouter::set_config(std::shared_ptr<const config::Config> cfg) {
    cfg_ = std::move(cfg);
    apply_limits();
}

const config::Realm* SipRouter::gateway_realm(std::string_view name) const {
    auto it = cfg_->realms.find(std::string(name));
    if (it == cfg_->realms.end() || !it->second.gateway.enabled) return nullptr;
    return &it->second;
}

const config::Realm* SipRouter::gateway_trunk(std::string_view realm, std::size_t index) const {
    const auto* r = gateway_realm(realm);
    return r == nullptr ? nullptr : trunk_at(*r, index);
}

TrunkHosts::State SipRouter::trunk_state(const config::Realm& realm) const {
    const auto& host = realm.gateway.trunk.host;
    if (IpAddress::parse(host)) return TrunkHosts::State::Ready;
    return hosts_ == nullptr ? TrunkHosts::State::Unknown : hosts_->state(host);
}

std::vector<IpAddress> SipRouter::trunk_addresses(const config::Realm& realm) const {
    std::vector<IpAddress> out;
    const auto& host = realm.gateway.trunk.host;
    if (auto ip = IpAddress::parse(host)) out.push_back(*ip);
    else if (hosts_ != nullptr) out = hosts_->addresses(host);
    for (const auto& to : realm.gateway.trunk_targets) out.push_back(to.ip);   // issue 14
    return out;
}

sip::LocalAddress SipRouter::trunk_local(config::SipTrunk::Transport t, bool sips, const std::optional<Endpoint>& conn,
                                         std::string_view user) const {
    using T = config::SipTrunk::Transport;
    // Over TLS we are reachable only through the connection we opened (no TLS listener), so
    // Via and Contact name its own address: a trunk sending to it reuses that connection
    // (RFC 3261 §18.2.2 for responses; for requests what proxies do for NATed TCP clients).
    const std::string sent_by = t == T::Tls && conn ? conn->to_string() : local_.sent_by;
    // RFC 3261 §8.1.1.8: a sips Request-URI needs a sips Contact.
    const std::string_view param = sips || t == T::Udp ? "" : t == T::Tcp ? ";transport=tcp" : ";transport=tls";
    return {t == T::Udp ? "UDP" : t == T::Tcp ? "TCP" : "TLS", sent_by,
            fmt::format("<{}:{}@{}{}>", sips ? "sips" : "sip", user, sent_by, param), {}};
}

std::optional<SipRouter::TrunkLeg> SipRouter::trunk_leg(const config::Realm& realm, std::optional<Endpoint> to) {
    using T = config::SipTrunk::Transport;
    const auto& t = realm.gateway.trunk;
    if (!to) to = trunk_endpoint(realm);
    if (!to) {
        const auto why = hosts_ == nullptr ? std::string("not resolved") : hosts_->error(t.host);
        log::warn("realm {}: trunk {}: no address for {} ({})", realm.name, t.uri, t.host,
                  why.empty() ? "not resolved yet" : why);
        return std::nullopt;
    }
    auto flow = trunk_flow_(realm, *to);
    if (!flow) {
        log::warn("realm {}: no {} flow toward trunk {} at {}", realm.name, config::to_string(t.transport), t.uri,
                  to->to_string());
        return std::nullopt;
    }
    const auto literal = IpAddress::parse(t.host);
    const bool v6 = literal && literal->family == Family::V6;
    return TrunkLeg{*to,
                    sip::LegAddress{flow->id, t.transport != T::Udp, marked(trunk_local(t.transport, t.sips, flow->local, "turnbridge"))},
                    t.sips ? "sips" : "sip",
                    fmt::format("{}{}{}:{}", v6 ? "[" : "", t.host, v6 ? "]" : "", t.port),
                    t.sips ? "" : fmt::format(";transport={}", config::to_string(t.transport)),
                    flow->local};
}

void SipRouter::set_shared(GatewayShared* shared, unsigned worker, bool registers) {
    shared_ = shared != nullptr ? shared : own_shared_.get();
    worker_ = worker;
    registers_ = registers;
    apply_limits();
}

void SipRouter::started(CallEntry& e, const std::string& call_id) {
    e.call_id = call_id;
    e.summary.call_id = call_id;
    e.counted_user = e.summary.account;
    shared_->call_started(worker_, e.summary.realm, e.counted_user, call_id);
    log::debug("gateway: worker {}: call {} placed here", worker_, call_id);
}

void SipRouter::start(sip::Time now, std::vector<sip::Action>& out) {
    start_registrations(now, out);
    if (registers_) probe_trunks(now, out);
}

void SipRouter::start_registrations(sip::Time now, std::vector<sip::Action>& out) {
    reregister_at_.reset();
    if (!registers_) return;
    for (const auto& [name, base] : cfg_->realms)
    for (const config::Realm& realm : trunks_of(base)) {   // issue 14: each trunk registers on its own
        const auto& gw = realm.gateway;
        if (!gw.enabled || !gw.register_to_trunk) continue;
        if (std::any_of(registrations_.begin(), registrations_.end(),
                        [&](const auto& r) { return r.realm == realm.name && r.trunk == gw.trunk_name; }))
            continue;
        if (trunk_state(realm) == TrunkHosts::State::Resolving) continue;   // on_trunk_resolved() comes back
        auto trunk = trunk_leg(realm);
        if (!trunk) {   // logged; a name that failed to resolve, no TLS context, no flow: try again later
            if (!reregister_at_) reregister_at_ = now + kReRegister;
            continue;
        }
        sip::RegistrationConfig rc;
        rc.registrar_uri = trunk->scheme + ":" + trunk->hostport + trunk->uri_params;
        const std::string user = gw.trunk_username.empty() ? "turnbridge" : gw.trunk_username;
        rc.aor = trunk->scheme + ":" + user + "@" + trunk->hostport;
        rc.username = gw.trunk_username;
        rc.password = gw.trunk_password;
        rc.local = marked(trunk_local(gw.trunk.transport, gw.trunk.sips, trunk->conn, user));
        auto reg = std::make_unique<sip::Registration>(std::move(rc), random_);
        std::vector<sip::Action> in;
        reg->start(now, trunk->leg.transport, trunk->leg.reliable, layer_, in);
        registrations_.push_back({name, gw.trunk_name, trunk->leg.transport, std::move(reg)});
        process(now, 0, nullptr, in, out);
        log::info("realm {}: registering to trunk {} ({})", name, gw.trunk_name, gw.trunk.uri);
    }
}

void SipRouter::on_message(sip::Time now, std::int64_t unix_now, const SipFlow& flow, std::string_view bytes,
                           std::vector<sip::Action>& out) {
    if (auto m = screen(now, flow, bytes, out)) on_screened(now, unix_now, flow, std::move(*m), out);
}

std::optional<sip::Message> SipRouter::screen(sip::Time now, const SipFlow& flow, std::string_view bytes,
                                              std::vector<sip::Action>& out) {
    // RFC 5626 §3.5.1 keep-alives (CRLF) on a reliable flow: nothing to do.
    if (bytes.find_first_not_of("\r\n") == std::string_view::npos) return std::nullopt;
    // UDP from an address that is no trunk's (issue 11): it may be forged, so it is counted
    // against its source before it costs a parse, and its requests leave no state.
    const bool stranger = !flow.websocket && !flow.reliable && !is_trunk(flow.peer);
    if (stranger && !admit(now, flow.peer)) return std::nullopt;
    auto m = sip::Message::parse(bytes);
    if (!m) {
        log::debug("sip: unreadable message from {} ({}); dropped", flow.peer.to_string(), m.error().what);
        return std::nullopt;
    }
    if (stranger && m->is_request()) {
        answer_stranger(flow, *m, bytes.size(), out);
        return std::nullopt;
    }
    if (!stranger && over_rate(now, flow, *m, out)) return std::nullopt;
    return std::move(*m);
}

void SipRouter::on_screened(sip::Time now, std::int64_t unix_now, const SipFlow& flow, sip::Message m,
                            std::vector<sip::Action>& out) {
    if (fleet_ != nullptr && fleet_forward(now, flow, m, out)) return;   // issue 15
    std::vector<sip::Action> in;
    layer_.on_message(now, flow.id, flow.reliable, std::move(m), in);
    process(now, unix_now, &flow, in, out);
}

void SipRouter::process(sip::Time now, std::int64_t unix_now, const SipFlow* flow, std::vector<sip::Action>& in,
                        std::vector<sip::Action>& out) {
    for (auto& a : in) {
        std::visit(Overloaded{
                       [&](sip::Send& s) {
                           if (s.transport == kHandoverFlow) return on_handover_send(now, s, out);   // issue 17
                           if (s.transport == kDialLeg) return on_dial_leg(now, s.bytes, out);   // issue 17
                           out.push_back(std::move(s));
                       },
                       [](sip::WakeAt&) {},   // next_wake() asks every core instead
                       [&](sip::RequestIn& r) { on_request(now, unix_now, flow, r, out); },
                       [&](sip::ResponseIn& r) {
                           if (r.tx.empty() || on_probe_response(now, r)) return;   // issue 14: OPTIONS
                           if (auto* c = call_owning(r.tx)) {
                               std::vector<sip::Action> more;
                               c->call->on_response(now, r.tx, r.response, layer_, more);
                               process(now, unix_now, flow, more, out);
                               return;
                           }
                           for (auto& reg : registrations_) {
                               std::vector<sip::Action> more;
                               if (reg.registration->on_response(now, r.tx, r.response, layer_, more)) {
                                   if (reg.registration->state() == sip::Registration::State::Registered)
                                       log::info("realm {}: registered to trunk {} for {} s", reg.realm, reg.trunk,
                                                 reg.registration->granted().count());
                                   else if (reg.registration->state() == sip::Registration::State::Failed)
                                       log::warn("realm {}: registration to trunk {} failed ({})", reg.realm,
                                                 reg.trunk, reg.registration->last_status());
                                   process(now, unix_now, flow, more, out);
                                   return;
                               }
                           }
                       },
                       [&](sip::CancelIn& c) {
                           if (auto* e = call_owning(c.invite_tx)) {
                               std::vector<sip::Action> more;
                               e->call->on_cancel(now, c.invite_tx, layer_, more);
                               process(now, unix_now, flow, more, out);
                               return;
                           }
                           if (on_agent_cancel(now, c.invite_tx, out)) return;   // issue 17
                           auto w = std::find_if(waiting_.begin(), waiting_.end(),
                                                 [&](const Waiting& w) { return w.request.tx == c.invite_tx; });
                           if (w == waiting_.end()) return;
                           reply(now, w->request.tx, w->request.request, 487, out);   // RFC 3261 §9.2
                           waiting_.erase(w);
                       },
                       [&](sip::TransactionTimeout& t) {
                           if (auto* e = call_owning(t.tx)) {
                               std::vector<sip::Action> more;
                               e->call->on_timeout(now, t.tx, layer_, more);
                               process(now, unix_now, flow, more, out);
                               return;
                           }
                           if (probes_.erase(t.tx) != 0) return;   // a miss, counted at the next probe
                           for (auto& reg : registrations_)
                               if (reg.registration->on_timeout(now, t.tx)) {
                                   log::warn("realm {}: trunk registration timed out", reg.realm);
                                   return;
                               }
                       },
                   },
                   a);
    }
    in.clear();
    end_joined(now, out);   // issue 14: a joined call ended, so does the one it was joined to
    reap(now);
}

SipRouter::CallEntry* SipRouter::call_owning(const std::string& tx) {
    for (auto& e : calls_)
        if (e.call->owns(tx)) return &e;
    return nullptr;
}

void SipRouter::reply(sip::Time now, const std::string& tx, const sip::Message& request, int status,
                      std::vector<sip::Action>& out, std::string_view reason) {
    auto r = sip::Message::response(request, status, reason, status == 100 ? "" : sip::new_tag(random_));
    if (status == 405 || (status == 200 && request.method() == "OPTIONS"))
        r.add_header("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER");
    std::vector<sip::Action> in;
    layer_.respond(now, tx, std::move(r), in);
    for (auto& a : in)
        if (auto* s = std::get_if<sip::Send>(&a)) out.push_back(std::move(*s));
}

void SipRouter::on_request(sip::Time now, std::int64_t unix_now, const SipFlow* flow, sip::RequestIn& r,
                           std::vector<sip::Action>& out) {
    const auto method = r.request.method();
    // In-dialog requests (and the ACK for a 2xx, which has no transaction) go to their call.
    if (r.tx.empty() || !r.request.to_tag().empty()) {
        if (on_agent_request(now, r, out)) return;   // issue 17
        for (auto& e : calls_) {
            if (!e.call->matches(r.request)) continue;
            if (method == "BYE" && e.summary.end_reason.empty() && flow != nullptr)
                e.summary.end_reason = flow->websocket ? "bye-browser" : "bye-trunk";
            std::vector<sip::Action> more;
            e.call->on_request(now, r.tx, r.request, layer_, more);
            process(now, unix_now, flow, more, out);
            return;
        }
        if (!r.tx.empty()) {
            if (method == "OPTIONS") reply(now, r.tx, r.request, 200, out);
            else reply(now, r.tx, r.request, 481, out);
        }
        return;
    }
    if (flow == nullptr) return;
    if (method == "OPTIONS") return reply(now, r.tx, r.request, 200, out);
    if (method == "BYE") return reply(now, r.tx, r.request, 481, out);
    if (method == "INVITE" && r.request.header("replaces")) return on_replacing_invite(now, *flow, r, out);   // issue 14
    if (flow->websocket) {
        if (method == "REGISTER") return on_register(now, unix_now, *flow, r, out);
        if (method == "INVITE") return on_browser_invite(now, unix_now, *flow, r, out);
    } else {
        if (method == "INVITE") return on_trunk_invite(now, *flow, r, out);
        if (method == "REGISTER") return reply(now, r.tx, r.request, 403, out, "Register over WebSocket");
    }
    reply(now, r.tx, r.request, 405, out);
}

void SipRouter::on_register(sip::Time now, std::int64_t unix_now, const SipFlow& flow, sip::RequestIn& r,
                            std::vector<sip::Action>& out) {
    // The SIP domain names the realm (issue 4): REGISTER sip:example.org.
    const auto domain = uri_parts(r.request.request_uri()).host;
    const config::Realm* realm = gateway_realm(domain);
    if (realm == nullptr) {
        log::debug("sip: REGISTER for {}: no realm with gateway mode of that name", domain);
        return reply(now, r.tx, r.request, cfg_->realms.contains(domain) ? 403 : 404, out, "Unknown realm");
    }
    sip::DigestServer digest(realm->name, nonces_);
    const auto checked = throttled_digest(now, unix_now, *realm, flow, r, false, out);
    if (!checked) return;
    const auto& check = *checked;
    std::vector<sip::Action> in;
    switch (check.verdict) {
        case sip::DigestServer::Verdict::Ok: break;
        case sip::DigestServer::Verdict::Malformed: return reply(now, r.tx, r.request, 400, out, "Bad Authorization");
        case sip::DigestServer::Verdict::Forbidden:
            log::debug("sip: REGISTER {}@{} from {}: unknown user or wrong password", check.username, realm->name,
                       flow.peer.to_string());
            return reply(now, r.tx, r.request, 403, out, "Forbidden");
        default:
            layer_.respond(now, r.tx,
                           digest.challenge(r.request, now, flow.peer, sip::new_tag(random_),
                                            check.verdict == sip::DigestServer::Verdict::Stale),
                           in);
            return process(now, unix_now, &flow, in, out);
    }
    const auto user = std::string(sip::user_of(*realm, check.username));
    auto resp = shared_->with_registrar(
        [&](sip::Registrar& reg) { return reg.on_register(now, flow.id, r.request, user, realm->name, sip::new_tag(random_)); });
    if (resp.status() == 200) {
        // A REGISTER with Expires: 0 (or a contact's expires=0) removes the flow's binding.
        const auto bindings = shared_->with_registrar([&](sip::Registrar& reg) { return reg.lookup(user + "@" + realm->name); });
        const bool bound = std::any_of(bindings.begin(), bindings.end(), [&](const sip::Binding& b) { return b.transport == flow.id; });
        log::info("sip: {}@{} {} from {}", user, realm->name, bound ? "registered" : "unregistered", flow.peer.to_string());
    }
    layer_.respond(now, r.tx, std::move(resp), in);
    process(now, unix_now, &flow, in, out);
}

std::optional<sip::DigestServer::Check> SipRouter::throttled_digest(sip::Time now, std::int64_t unix_now,
                                                                    const config::Realm& realm, const SipFlow& flow,
                                                                    sip::RequestIn& r, bool proxy,
                                                                    std::vector<sip::Action>& out) {
    std::optional<AuthThrottle::Admission> held;
    const auto check = sip::DigestServer(realm.name, nonces_).verify(
        r.request, now, flow.peer,
        [&](std::string_view user) -> std::optional<std::string> {
            // Asked only with a fresh nonce of ours and well-formed credentials: a real guess.
            if (auth_ != nullptr) {
                if (auto a = auth_->admit(now, AuthProtocol::Sip, flow.peer, realm.name, user); a.throttled) {
                    held = a;
                    return std::nullopt;
                }
            }
            return sip::realm_password(realm, user, unix_now);
        },
        proxy);
    if (held) {
        // RFC 3261 §21.5.4: 503 with Retry-After; the password was not checked.
        auto resp = sip::Message::response(r.request, 503, "Too Many Failed Authentications", sip::new_tag(random_));
        resp.add_header("Retry-After", std::to_string(std::max<std::uint32_t>(held->retry_after_s, 1)));
        std::vector<sip::Action> in;
        layer_.respond(now, r.tx, std::move(resp), in);
        for (auto& a : in)
            if (auto* s = std::get_if<sip::Send>(&a)) out.push_back(std::move(*s));
        return std::nullopt;
    }
    if (check.verdict == sip::DigestServer::Verdict::Forbidden && auth_ != nullptr)
        auth_->on_failure(now, AuthProtocol::Sip, flow.peer, realm.name, check.username);
    return check;
}

void SipRouter::on_browser_invite(sip::Time now, std::int64_t unix_now, const SipFlow& flow, sip::RequestIn& r,
                                  std::vector<sip::Action>& out) {
    const auto target = uri_parts(r.request.request_uri());
    const config::Realm* realm = gateway_realm(target.host);
    if (realm == nullptr) return reply(now, r.tx, r.request, cfg_->realms.contains(target.host) ? 403 : 404, out, "Unknown realm");
    sip::DigestServer digest(realm->name, nonces_);
    // RFC 3261 §22.3: a proxy-style 407 for INVITE (JsSIP answers 401 and 407 alike).
    const auto checked = throttled_digest(now, unix_now, *realm, flow, r, true, out);
    if (!checked) return;
    const auto& check = *checked;
    std::vector<sip::Action> in;
    if (check.verdict == sip::DigestServer::Verdict::Malformed)
        return reply(now, r.tx, r.request, 400, out, "Bad Proxy-Authorization");
    if (check.verdict == sip::DigestServer::Verdict::Forbidden) {
        log::debug("sip: INVITE from {}@{} at {}: unknown user or wrong password", check.username, realm->name,
                   flow.peer.to_string());
        return reply(now, r.tx, r.request, 403, out, "Forbidden");
    }
    if (check.verdict != sip::DigestServer::Verdict::Ok) {
        layer_.respond(now, r.tx,
                       digest.challenge(r.request, now, flow.peer, sip::new_tag(random_),
                                        check.verdict == sip::DigestServer::Verdict::Stale, true),
                       in);
        return process(now, unix_now, &flow, in, out);
    }
    // Issue 14: the trunk whose prefix the number has (longest), else the default; from here
    // on `chosen` is the realm as that trunk sees it (its keys in chosen.gateway).
    const config::Realm& chosen = choose_trunk(*realm, target.user);
    const auto& gw = chosen.gateway;
    if (trunk_state(chosen) == TrunkHosts::State::Resolving) {
        // The trunk's host name is being looked up (at startup or after a reload): wait for it
        // (the transaction layer has sent 100 Trying).
        waiting_.push_back({now + kResolveWait, unix_now, flow, std::move(r)});
        return;
    }
    // Bounds on live calls (issue 11). 486 for the user's own limit: the caller's line is busy
    // (RFC 3261 §21.4.24) and trying elsewhere would not help; 503 for the realm's, which is the
    // server out of capacity for now (§21.5.4), like running out of media ports.
    const auto caller = sip::user_of(*realm, check.username);
    if (user_at_limit(*realm, caller)) {
        count(sip::Limit::CallsPerUser);
        return reply(now, r.tx, r.request, 486, out, "Too Many Calls");
    }
    if (realm_at_limit(*realm)) {
        count(sip::Limit::CallsPerRealm);
        return reply(now, r.tx, r.request, 503, out, "Realm Call Limit");
    }
    const auto& agents = realm->gateway.agents;   // realm-wide, whichever trunk the number has
    if (const auto agent = agents.find(std::string(target.user)); agent != agents.end())   // issue 17
        return on_agent_browser_invite(now, flow, r, *realm, std::string(caller), agent->first, agent->second, out);
    auto trunk = to_test_line(*realm, target.user) ? test_line_leg() : trunk_leg(chosen);
    if (!trunk) return reply(now, r.tx, r.request, 503, out);
    const std::string ws_transport = flow.secure ? "WSS" : "WS";
    // Marked (this worker's Call-ID prefix, sip::Placement): a REFER from the trunk makes new
    // INVITEs toward browsers from this address (issue 14), and their answers must come back here.
    sip::LegAddress browser{flow.id, true,
                            marked({ws_transport, local_.ws_host, "<sip:turnbridge@" + local_.ws_host + ";transport=ws>", {}})};
    auto account = with_identity(gw, r.request, trunk_account(gw, *trunk));
    auto media = media_(chosen, true);
    if (!media) return reply(now, r.tx, r.request, 503, out, "No Media Ports");
    CallEntry& e = calls_.emplace_back();
    e.browser_flows = {flow.id};
    e.trunk_flow = trunk->leg.transport;
    e.media = std::move(media);
    e.summary.realm = realm->name;
    e.summary.account = std::string(caller);
    e.summary.outbound = true;
    e.summary.remote = target.user;
    e.summary.started = now;
    const bool test_line = to_test_line(*realm, target.user);
    if (!test_line) e.summary.trunk = gw.trunk_name;
    started(e, r.request.call_id());
    e.call = std::make_unique<sip::Call>(now, r.tx, r.request, browser, trunk->leg, std::move(account), *e.media,
                                         random_, layer_, in);
    arm_attended(e);   // issue 14: a REFER with Replaces may join it to another call of the user
    log::event(log::Level::Info, "call.started", {realm->name, e.summary.account, {}, e.call_id, {}, {}, target.user, {}, std::nullopt},
               fmt::format("call: {}@{} -> {} via {} at {}", e.summary.account, realm->name, target.user,
                           test_line ? "the test line" : fmt::format("trunk {} ({})", gw.trunk_name, gw.trunk.uri),
                           trunk->to.to_string()));
    if (!test_line) {
        arm_failover(now, e, chosen, trunk->to);
        arm_refer(e);   // issue 14: the trunk may move the call to another user, as on inbound calls
    }
    process(now, unix_now, &flow, in, out);
}

const config::Realm* SipRouter::trunk_realm(const IpAddress& peer, const std::string& did) const {
    // The trunk it came from (issue 14: the first of a realm's trunks that may send from that
    // address); its srtp, codecs and number format apply to the call.
    const config::Realm* realm = nullptr;
    for (const auto& [name, base] : cfg_->realms) {
        if (!base.gateway.enabled) continue;
        // Trunks sharing an address or range: the first listed (routes are realm-wide).
        const auto trunks = trunks_of(base);
        const auto from = std::find_if(trunks.begin(), trunks.end(),
                                       [&](const config::Realm& t) { return trunk_allowed(t, peer); });
        if (from == trunks.end()) continue;   // gateway.trunk_allow (issue 14)
        // A realm that routes the DID beats one that does not (which would answer 404).
        if (realm == nullptr || (find_route(from->gateway, did) != nullptr && find_route(realm->gateway, did) == nullptr))
            realm = &*from;
    }
    return realm;
}

void SipRouter::on_trunk_invite(sip::Time now, const SipFlow& flow, sip::RequestIn& r, std::vector<sip::Action>& out) {
    // Only a configured trunk may call in: the source address must be a gateway realm's trunk.
    const auto did = sip::dialled_number(r.request);   // sip:, sips: or tel: (RFC 3966)
    const config::Realm* realm = trunk_realm(flow.peer, did);
    if (realm != nullptr && !listed_trunk(flow.peer) && !fleet_may_call(now, flow)) {   // issue 15
        log::debug("sip: INVITE from {}: a fleet node's address, but no live node's over UDP; refused", flow.peer.to_string());
        count(sip::Limit::FleetRefused);
        realm = nullptr;
    }
    if (realm == nullptr) {
        log::debug("sip: INVITE from {}: not a configured trunk; refused", flow.peer.to_string());
        return reply(now, r.tx, r.request, 403, out);
    }
    const auto* route = find_route(realm->gateway, did);
    if (route == nullptr) return reply(now, r.tx, r.request, 404, out);
    if (realm_at_limit(*realm)) {
        count(sip::Limit::CallsPerRealm);
        return reply(now, r.tx, r.request, 503, out, "Realm Call Limit");
    }
    if (route->size() == 1 && route->front().starts_with(config::kAgentPrefix))   // issue 17
        return on_agent_invite(now, flow, r, *realm, route->front(), did, out);
    std::vector<sip::Binding> bindings;
    bool busy = false;   // a routed user with browsers registered, but at max_calls_per_user
    for (const auto& user : *route) {
        auto b = shared_->with_registrar([&](sip::Registrar& reg) { return reg.lookup(user + "@" + realm->name); });
        if (!b.empty() && user_at_limit(*realm, user)) {
            busy = true;
            continue;
        }
        bindings.insert(bindings.end(), b.begin(), b.end());
    }
    if (bindings.empty() && busy) {
        count(sip::Limit::CallsPerUser);
        return reply(now, r.tx, r.request, 486, out, "Too Many Calls");
    }
    std::vector<sip::Action> in;
    using T = config::SipTrunk::Transport;
    const T transport = flow.secure ? T::Tls : flow.reliable ? T::Tcp : T::Udp;
    const bool sips = r.request.request_uri().starts_with("sips:");
    // Marked: a browser's transfer may have the call place its own INVITE on this leg (issue 14,
    // the fallback), whose answers must come back to this worker.
    sip::LegAddress trunk{flow.id, flow.reliable, marked(trunk_local(transport, sips, flow.local, "turnbridge"))};
    const sip::LocalAddress browser_local =
        marked({"WS", local_.ws_host, "<sip:turnbridge@" + local_.ws_host + ";transport=ws>", {}});
    auto media = bindings.empty() ? nullptr : media_(*realm, false);
    if (!bindings.empty() && !media) return reply(now, r.tx, r.request, 503, out, "No Media Ports");
    if (!media) media = pass_through_media(*realm, false);   // no browser to ring: the Call answers 480
    CallEntry& e = calls_.emplace_back();
    e.trunk_flow = flow.id;
    for (const auto& b : bindings) e.browser_flows.push_back(b.transport);
    e.media = std::move(media);
    e.routed = *route;
    e.summary.realm = realm->name;
    e.summary.outbound = false;
    e.summary.trunk = realm->gateway.trunk_name;   // the trunk it came from (trunk_realm)
    // libosip2's From, not a search for '<': a display name may hold one ("<script>" <sip:...>).
    const auto from = r.request.from();
    e.summary.remote = sip::caller_withheld(r.request) ? "anonymous" : from ? uri_parts(from->uri).user : std::string();
    e.summary.started = now;
    started(e, r.request.call_id());
    sip::TrunkAccount account;
    account.timers = session_timers(realm->gateway);
    account.rel100 = realm->gateway.rel100;
    account = with_identity(realm->gateway, r.request, std::move(account));   // number format, refer_to (issue 14)
    e.call = std::make_unique<sip::Call>(now, r.tx, r.request, trunk, std::move(account), bindings, did, realm->name, browser_local, *e.media,
                                         random_, layer_, in);
    arm_refer(e);   // issue 14: a REFER from the trunk may move the call to another user
    arm_trunk_router(e, realm->name, did);   // issue 14: a browser's transfer fallback goes out as outbound calls do
    arm_attended(e);   // issue 14: once answered, the browser may join it to another call
    log::event(log::Level::Info, "call.started", {realm->name, {}, {}, e.call_id, {}, {}, e.summary.remote, {}, std::nullopt},
               fmt::format("call: trunk {} at {} -> {} ({} registration{})", realm->gateway.trunk_name,
                           flow.peer.to_string(), did, bindings.size(), bindings.size() == 1 ? "" : "s"));
    process(now, 0, &flow, in, out);
}

void SipRouter::on_timer(sip::Time now, std::vector<sip::Action>& out) {
    std::vector<sip::Action> in;
    layer_.on_timer(now, in);
    shared_->with_registrar([&](sip::Registrar& reg) { reg.on_timer(now); });
    for (auto& reg : registrations_) reg.registration->on_timer(now, layer_, in);
    for (auto& e : calls_) e.call->on_timer(now, layer_, in);   // RFC 4028 refreshes and expiry
    process(now, 0, nullptr, in, out);
    expire_waiting(now, out);
    expire_dials(now, out);
    expire_handovers(now, out);
    if (reregister_at_ && *reregister_at_ <= now) start_registrations(now, out);
    if (registers_) probe_trunks(now, out);   // issue 14: one worker probes, every worker reads
    if (fleet_ != nullptr) fleet_timer(now, out);   // issue 15
}

void SipRouter::on_trunk_resolved(sip::Time now, std::vector<sip::Action>& out) {
    if (registers_) probe_trunks(now, out);   // a name's targets known or changed: probe them
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& w : waiting) {
        const auto target = uri_parts(w.request.request.request_uri());
        const config::Realm* realm = gateway_realm(target.host);
        if (realm != nullptr && trunk_state(choose_trunk(*realm, target.user)) == TrunkHosts::State::Resolving) {
            waiting_.push_back(std::move(w));
            continue;
        }
        // Authenticated before it waited; the digest check passes again (same request, nonce in date).
        on_browser_invite(now, w.unix_now, w.flow, w.request, out);
    }
    start_registrations(now, out);
}

void SipRouter::expire_waiting(sip::Time now, std::vector<sip::Action>& out) {
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        if (it->until > now) {
            ++it;
            continue;
        }
        const auto target = uri_parts(it->request.request.request_uri());
        const auto& name = target.host;
        const config::Realm* realm = gateway_realm(name);
        log::warn("realm {}: trunk {} not resolved within {} s; call refused (503)", name,
                  realm ? choose_trunk(*realm, target.user).gateway.trunk.uri : std::string("?"), kResolveWait.count());
        reply(now, it->request.tx, it->request.request, 503, out);
        it = waiting_.erase(it);
    }
}

void SipRouter::on_flow_closed(sip::Time now, sip::TransportId id, std::vector<sip::Action>& out) {
    shared_->with_registrar([&](sip::Registrar& reg) { reg.on_transport_closed(id); });
    std::erase_if(waiting_, [id](const Waiting& w) { return w.flow.id == id; });
    agent_flow_closed(now, id, out);   // issue 17: browsers' agent calls on it
    {
        // RFC 3261 §8.1.3.1: a request whose connection failed (a TCP/TLS trunk down, a TLS
        // handshake refused) is answered as by a 503 now, not after Timer B.
        std::vector<std::string> failed;
        std::vector<sip::Action> in;
        layer_.on_transport_closed(id, failed);
        for (const auto& tx : failed) {
            if (auto* e = call_owning(tx)) e->call->on_transport_error(now, tx, layer_, in);
        }
        process(now, 0, nullptr, in, out);
        // Our registrations over that connection: the trunk can no longer reach us through it.
        const auto before = registrations_.size();
        std::erase_if(registrations_, [&](const TrunkRegistration& r) {
            if (r.flow != id) return false;
            log::warn("realm {}: the connection to the trunk closed; registering again in {} s", r.realm,
                      kReRegister.count());
            return true;
        });
        if (registrations_.size() != before && !reregister_at_) reregister_at_ = now + kReRegister;
    }
    // A call whose every browser connection is gone cannot go on: BYE/CANCEL the trunk leg
    // (what is addressed to the closed WebSocket is dropped by the host).
    std::vector<sip::Action> in;
    for (auto& e : calls_) {
        auto& flows = e.browser_flows;
        if (std::erase(flows, id) == 0 || !flows.empty() || e.call->state() == sip::Call::State::Ended) continue;
        log::info("call: the browser's connection closed; hanging up");
        if (e.summary.end_reason.empty()) e.summary.end_reason = "browser-gone";
        e.call->hang_up(now, layer_, in);
    }
    process(now, 0, nullptr, in, out);
}

void SipRouter::stop(sip::Time now, std::vector<sip::Action>& out) {
    stop_agents(now, out);
    std::vector<sip::Action> in;
    for (auto& e : calls_)
        if (e.call->state() != sip::Call::State::Ended) {
            if (e.summary.end_reason.empty()) e.summary.end_reason = "shutdown";
            e.call->hang_up(now, layer_, in);
        }
    for (auto& reg : registrations_)
        if (reg.registration->state() == sip::Registration::State::Registered) reg.registration->stop(now, layer_, in);
    process(now, 0, nullptr, in, out);
}

void SipRouter::hang_up(sip::Time now, const sip::MediaSdp* media, const std::string& why,
                        std::vector<sip::Action>& out) {
    if (hang_up_agent(now, media, why, out)) return;   // issue 17: a browser's agent call
    for (auto& e : calls_) {
        if (e.media.get() != media || e.call->state() == sip::Call::State::Ended) continue;
        if (e.summary.end_reason.empty()) e.summary.end_reason = "media: " + why;
        std::vector<sip::Action> in;
        e.call->hang_up(now, layer_, in);
        process(now, 0, nullptr, in, out);
        return;
    }
}

void SipRouter::note_answer(CallEntry& e, sip::Time now) {
    e.summary.answered = now;
    if (e.summary.outbound) return;
    // Inbound: the browser user whose registration answered the fork.
    const auto flow = e.call->answered_on();
    for (const auto& user : e.routed)
        for (const auto& b : shared_->with_registrar([&](sip::Registrar& reg) { return reg.lookup(user + "@" + e.summary.realm); }))
            if (flow && b.transport == *flow) e.summary.account = user;
    if (e.summary.account.empty() && e.routed.size() == 1) e.summary.account = e.routed.front();
    if (e.counted_user.empty() && !e.summary.account.empty() && !e.call_id.empty()) {
        e.counted_user = e.summary.account;
        shared_->add_user(worker_, e.summary.realm, e.counted_user);
    }
}

void SipRouter::reap(sip::Time now) {
    for (auto it = calls_.begin(); it != calls_.end();) {
        if (!it->summary.answered && (it->call->state() == sip::Call::State::Confirmed ||
                                      (it->call->state() == sip::Call::State::Ended && it->call->final_status() / 100 == 2)))
            note_answer(*it, now);
        if (it->call->state() == sip::Call::State::Ended) {
            if (!it->ended_at) {
                it->ended_at = now;
                auto& s = it->summary;
                s.ended = now;
                s.status = it->call->final_status();
                if (s.end_reason.empty()) s.end_reason = it->call->end_reason();
                if (!it->call->taken_over_by().empty()) s.account = it->call->taken_over_by();   // issue 14
                if (s.end_reason == "session-expired")
                    log::warn("call: the trunk's session expired (RFC 4028: no refresh came or ours failed); hung up both ways");
                if (s.end_reason.empty()) s.end_reason = s.answered ? "bye" : s.status == 487 ? "cancel" : "rejected";
                log::info("call ended ({}, {})", s.status, s.end_reason);
                if (!it->call_id.empty()) shared_->call_ended(now, worker_, s.realm, it->counted_user, it->call_id);
                if (!it->reported && end_dial(now, *it)) it->reported = true;   // issue 17: its agent writes the record
                if (ended_ && !it->reported) {
                    it->reported = true;
                    ended_(s, it->media.get());
                }
            } else if (*it->ended_at + kLinger <= now) {
                counts_[static_cast<std::size_t>(sip::Limit::NotifyDropped)] += it->call->notifies_dropped();
                counts_[static_cast<std::size_t>(sip::Limit::ReliableDropped)] += it->call->reliable_dropped();
                it = calls_.erase(it);
                continue;
            }
        }
        ++it;
    }
}

std::optional<sip::Time> SipRouter::next_wake() const {
    std::optional<sip::Time> t = layer_.next_wake();
    keep_earliest(t, fleet_next_wake());
    keep_earliest(t, shared_->with_registrar([](sip::Registrar& reg) { return reg.next_expiry(); }));
    for (const auto& reg : registrations_) keep_earliest(t, reg.registration->next_wake());
    for (const auto& e : calls_)
        if (e.ended_at) keep_earliest(t, *e.ended_at + kLinger);
        else keep_earliest(t, e.call->next_wake());
    for (const auto& w : waiting_) keep_earliest(t, w.until);
    for (const auto& [key, d] : dials_)
        if (!d.answered && !d.timed_out) keep_earliest(t, d.ring_until);
    for (const auto& [key, a] : agent_calls_)
        if (a.handover_invite && !a.handover_acked) keep_earliest(t, a.handover_until);
    keep_earliest(t, reregister_at_);
    for (const auto& [realm, at] : next_probe_) keep_earliest(t, at);
    return t;
}

}  // namespace turnbridge::gateway
