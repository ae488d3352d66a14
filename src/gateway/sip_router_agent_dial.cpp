// SPDX-License-Identifier: Apache-2.0
// SipRouter's outbound AI agent calls (issue 17, POST /api/v1/calls): the router places the
// call as if a browser had sent an INVITE, with the same sip::Call toward the realm's trunk (so
// digest 401/407, failover to the next target, 100rel, session timers and the realm's number
// formats all apply), while the "browser" leg is the router itself on the pseudo flow kDialLeg:
// what the Call sends there comes back to on_dial_leg(), which ACKs its final response and
// answers its BYE. Our SDP offer is the agent host's (PCMU; an L16 agent's G.722 first when allowed,
// PCMA too: agent_trunk_codecs) on the call's RTP socket; the agent's
// WebSocket is opened only when the trunk's 200 OK has come (AgentPort::connect_agent), and a
// call still unanswered after gateway.agent_ring_timeout is cancelled (no-answer).
#include <fmt/format.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/agent_port.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/gateway/trunk_choice.hpp"
#include "turnbridge/gateway/trunk_identity.hpp"
#include "turnbridge/sip/placement.hpp"

namespace turnbridge::gateway {
namespace {

// The media side of a dial: our offer is the agent host's; the trunk's answer passes through
// to the router's own leg (whence connect_agent() gets it). Mid-call offers from the trunk (a
// session refresh, RFC 3264 §8) are answered with the same session, never relayed.
class AgentDialMedia final : public sip::MediaSdp {
public:
    explicit AgentDialMedia(std::string offer) : offer_(std::move(offer)) {}
    std::optional<std::string> map_offer(bool, const std::string&) override { return offer_; }
    std::optional<std::string> map_answer(bool, const std::string& sdp) override { return sdp; }
    LocalAnswer answer_locally(bool, const std::string&, bool) override {
        return {LocalAnswer::Kind::Answered, offer_};
    }
    std::optional<std::string> current_offer(bool) override { return offer_; }

private:
    std::string offer_;
};

// RFC 3261 §17.1.1.3: the ACK for a non-2xx final response, in the INVITE's transaction.
sip::Message ack_for_error(const sip::Message& invite, const sip::Message& response) {
    auto m = std::move(*sip::Message::request("ACK", invite.request_uri()));
    m.push_via(invite.top_via_transport(), invite.top_via_sent_by(), invite.top_via_branch());
    m.set_from(invite.from_header());
    m.set_to(response.to_header());
    m.set_call_id(invite.call_id());
    m.set_cseq(invite.cseq(), "ACK");
    m.set_max_forwards(70);
    return m;
}

}  // namespace

void SipRouter::report_dial(const AgentDialLeg& d, DialUpdate::State state, int sip_code, const std::string& call_id,
                            const std::string& end_reason) {
    if (dial_report_) dial_report_(DialUpdate{d.id, state, sip_code, call_id, end_reason});
}

void SipRouter::dial_agent(sip::Time now, const AgentDial& d, std::vector<sip::Action>& out) {
    AgentDialLeg leg;
    leg.id = d.id;
    const auto fail = [&](int code, const std::string& why) {
        log::warn("agent: outbound call {} to {} in realm {} not placed: {}", d.id, d.to, d.realm, why);
        report_dial(leg, DialUpdate::State::Failed, code, "", why);
    };
    const config::Realm* realm = gateway_realm(d.realm);
    if (realm == nullptr) return fail(404, "no gateway realm of that name");
    if (agents_ == nullptr) return fail(503, "no agent host");
    if (realm_at_limit(*realm)) {
        count(sip::Limit::CallsPerRealm);
        return fail(503, "realm call limit (gateway.max_calls)");
    }
    realm = &choose_trunk(*realm, d.to);   // issue 14: the trunk the number's prefix picks (trunk_choice.hpp)
    auto trunk = trunk_leg(*realm);   // logged when it cannot be reached
    if (!trunk) return fail(503, "the trunk cannot be reached");
    const auto& gw = realm->gateway;
    // The INVITE the router plays the browser with: To the number, From the API's caller id.
    leg.local = marked({"TCP", "api.invalid", "<sip:agent@api.invalid;transport=tcp>", {}});
    auto req = sip::Message::request("INVITE", "sip:" + d.to + "@" + realm->name);
    if (!req) return fail(400, "the number makes no SIP URI");
    sip::Message invite = std::move(*req);
    invite.push_via("TCP", "api.invalid", sip::new_branch(random_));
    invite.set_from("<sip:" + d.from + "@" + realm->name + ">;tag=" + sip::new_tag(random_));
    invite.set_to("<sip:" + d.to + "@" + realm->name + ">");
    const std::string key = leg.local.call_id_prefix + sip::new_call_id(random_, "api.invalid");
    invite.set_call_id(key);
    invite.set_cseq(1, "INVITE");
    invite.add_contact(leg.local.contact);
    invite.set_max_forwards(70);
    AgentOpen open{key, d.url, realm->name, d.from, d.to, {}, gw.agent_connect_timeout, gw.agent_playout_frames,
                   d.authorization.value_or(gw.agent_authorization), {}, d.parameters, true,
                   d.format.value_or(gw.agent_media_format), allows_g722(gw)};   // every field: -Wmissing-field-initializers
    auto offer = agents_->offer_agent(open);
    if (!offer) return fail(503, "no RTP socket for the call");
    invite.set_body("application/sdp", *offer);
    // The server transaction the Call answers: the INVITE "arrives" on kDialLeg (reliable, so
    // nothing is retransmitted toward it).
    std::vector<sip::Action> in;
    layer_.on_message(now, kDialLeg, true, invite.clone(), in);
    std::string tx;
    for (auto& a : in)
        if (auto* r = std::get_if<sip::RequestIn>(&a)) tx = r->tx;
    in.clear();
    if (tx.empty()) {
        agents_->close_agent(key, CallSummary{realm->name, key, "agent", true, d.to, now, {}, now, 503, "failed",
                                                          false, {}, open.format, realm->gateway.trunk_name});
        return fail(503, "the call could not start");
    }
    sip::TrunkAccount account;   // by name, as on_browser_invite's
    account.host = trunk->hostport;
    account.uri_params = trunk->uri_params;
    account.username = gw.trunk_username;
    account.password = gw.trunk_password;
    account.caller_id = d.from;
    account.scheme = trunk->scheme;
    account.timers = sip::SessionTimerConfig{gw.session_timers, gw.session_expires, gw.min_se};
    account.rel100 = gw.rel100;
    account = with_identity(gw, invite, std::move(account));
    leg.ring_until = now + std::chrono::seconds(gw.agent_ring_timeout);
    leg.invite.emplace(std::move(invite));
    CallEntry& e = calls_.emplace_back();
    e.trunk_flow = trunk->leg.transport;
    e.media = std::make_unique<AgentDialMedia>(std::move(*offer));
    e.summary.realm = realm->name;
    e.summary.account = "agent";
    e.summary.outbound = true;
    e.summary.remote = d.to;
    e.summary.started = now;
    e.summary.trunk = gw.trunk_name;
    started(e, key);
    const sip::LegAddress browser{kDialLeg, true, leg.local};
    dials_.emplace(key, std::move(leg));
    e.call = std::make_unique<sip::Call>(now, tx, *dials_.at(key).invite, browser, trunk->leg, std::move(account),
                                         *e.media, random_, layer_, in);
    log::event(log::Level::Info, "call.started", {realm->name, "agent", {}, key, {}, {}, d.to, {}, std::nullopt},
               fmt::format("call: agent {} (API call {}) -> {} via {} at {}", d.url.text, d.id, d.to, gw.trunk.uri,
                           trunk->to.to_string()));
    report_dial(dials_.at(key), DialUpdate::State::Dialing, 0, key);
    arm_failover(now, e, *realm, trunk->to);
    process(now, 0, nullptr, in, out);
}

// What the Call sent its "browser" leg: provisional and final responses to our INVITE, a BYE.
void SipRouter::on_dial_leg(sip::Time now, const std::string& bytes, std::vector<sip::Action>& out) {
    auto m = sip::Message::parse(bytes);
    if (!m) return;
    auto it = dials_.find(m->call_id());
    if (it == dials_.end()) return;
    AgentDialLeg& d = it->second;
    const std::string key = it->first;
    std::vector<sip::Action> in;
    if (m->is_request()) {
        // The call ends from the trunk's side or ours: the router's leg agrees (RFC 3261 §15.1.2).
        if (m->method() != "ACK") layer_.on_message(now, kDialLeg, true, sip::Message::response(*m, 200), in);
        return process(now, 0, nullptr, in, out);
    }
    if (m->cseq_method() != "INVITE") return;
    const int status = m->status();
    if (status < 200) {
        if (status >= 180 && !d.ringing) {
            d.ringing = true;
            report_dial(d, DialUpdate::State::Ringing, status, key);
        }
        return;
    }
    if (status >= 300) {   // the Call ended unanswered; end_dial() reports it from reap()
        layer_.on_message(now, kDialLeg, true, ack_for_error(*d.invite, *m), in);
        return process(now, 0, nullptr, in, out);
    }
    // RFC 3261 §13.2.2.4: the ACK for the 2xx, from the dialog it made.
    if (auto dialog = sip::Dialog::from_uac(*d.invite, *m, d.local))
        layer_.on_message(now, kDialLeg, true, dialog->make_ack(d.invite->cseq(), random_), in);
    process(now, 0, nullptr, in, out);
    it = dials_.find(key);   // processing may have ended the call (and erased it)
    if (it == dials_.end() || it->second.answered) return;
    it->second.answered = true;
    report_dial(it->second, DialUpdate::State::Answered, status, key);
    log::info("agent: outbound call {} answered; connecting its agent", key);
    // The trunk answered: only now does the agent hear of the call.
    if (agents_ == nullptr || !agents_->connect_agent(key, m->body()))
        dial_failed(now, key, "the trunk's SDP answer has none of our codecs", out);
}

// The agent refused, timed out or closed (AgentHost::Failed), or the answer was unusable.
void SipRouter::dial_failed(sip::Time now, const std::string& key, const std::string& why, std::vector<sip::Action>& out) {
    if (!dials_.contains(key)) return;
    log::info("agent: call {}: {}", key, why);
    for (auto& e : calls_) {
        if (e.call_id != key || e.call->state() == sip::Call::State::Ended) continue;
        if (e.summary.end_reason.empty()) e.summary.end_reason = "agent: " + why;
        std::vector<sip::Action> in;
        e.call->hang_up(now, layer_, in);
        return process(now, 0, nullptr, in, out);
    }
}

// agent_ring_timeout: an unanswered call is cancelled (the trunk gets CANCEL; no-answer).
void SipRouter::expire_dials(sip::Time now, std::vector<sip::Action>& out) {
    std::vector<std::string> due;
    for (auto& [key, d] : dials_)
        if (!d.answered && !d.timed_out && d.ring_until <= now) {
            d.timed_out = true;
            due.push_back(key);
        }
    for (const auto& key : due) {
        for (auto& e : calls_) {
            if (e.call_id != key || e.call->state() == sip::Call::State::Ended) continue;
            log::info("agent: outbound call {} not answered in time; cancelled", key);
            if (e.summary.end_reason.empty()) e.summary.end_reason = "no-answer";
            std::vector<sip::Action> in;
            e.call->hang_up(now, layer_, in);
            process(now, 0, nullptr, in, out);
            break;
        }
    }
}

// From reap(), once, when a dial's Call has ended: its outcome to the API, its record (written
// by the agent host, like inbound agent calls: user "agent", codecs PCMU/agent).
bool SipRouter::end_dial(sip::Time now, CallEntry& e) {
    auto it = dials_.find(e.call_id);
    if (it == dials_.end()) return false;
    AgentDialLeg d = std::move(it->second);
    dials_.erase(it);
    auto& s = e.summary;
    DialUpdate::State state = DialUpdate::State::Completed;
    if (!s.answered) {
        state = d.timed_out ? DialUpdate::State::NoAnswer : unanswered_state(s.status);
        if (s.end_reason.empty() || s.end_reason == "rejected" || s.end_reason == "cancel" || s.end_reason == "no-answer")
            s.end_reason = std::string(to_string(state));
    }
    log::info("agent: outbound call {} ({}) {}: {} ({})", d.id, e.call_id, to_string(state), s.status, s.end_reason);
    report_dial(d, state, s.status, e.call_id, s.end_reason);
    if (agents_ != nullptr) agents_->close_agent(e.call_id, s);
    (void)now;
    return true;
}

}  // namespace turnbridge::gateway
