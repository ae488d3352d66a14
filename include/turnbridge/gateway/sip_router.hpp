// SPDX-License-Identifier: Apache-2.0
#pragma once
// The gateway's signaling brain, without I/O: SIP messages in (with the flow they came on),
// Send actions out. It owns the transaction layer, the registrar, the browsers' digest checks,
// our REGISTERs toward trunks and every sip::Call, and decides what each request is for:
//   from a browser (WebSocket): REGISTER (digest 401, realm = Request-URI host), OPTIONS,
//     INVITE (digest 407, then a Call toward the realm's trunk whose prefix the dialled number
//     has, else its first: trunk_choice.hpp), in-dialog requests;
//   from a trunk (UDP, TCP or TLS; source address in one of the realm's trunks' trunk_allow, or
//     without it one of that trunk's addresses: its IP literal, what its name resolved to,
//     trunk_targets): INVITE to a routed DID (a Call of that trunk forked to the routed
//     users' browser bindings), in-dialog requests.
// A browser INVITE whose trunk host name is still being resolved waits (kResolveWait at most).
// Toward outsiders (issue 11): a UDP source that is no trunk can be forged, so its requests are
// answered statelessly (one final response no larger than the request, never retransmitted; none
// with server.sip_hide_from_strangers), and every source but a trunk's is held to
// server.sip_requests_per_second out-of-dialog requests; a trunk's address gets kTrunkRateFactor
// times as many (its traffic is larger, but its address can be forged too, and one forged
// source must not fill the transaction table). Live calls are bounded per user and per realm
// (gateway.max_calls_per_user, gateway.max_calls).
// GatewayHost (gateway_host.hpp) owns the sockets and the timer and maps TransportIds to them.
#include <array>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/base/auth_throttle.hpp"
#include "turnbridge/config/config.hpp"
#include "turnbridge/gateway/fleet_locations.hpp"
#include "turnbridge/gateway/agent_dial.hpp"
#include "turnbridge/gateway/gateway_shared.hpp"
#include "turnbridge/gateway/trunk_hosts.hpp"
#include "turnbridge/sip/call.hpp"
#include "turnbridge/sip/digest.hpp"
#include "turnbridge/sip/limits.hpp"
#include "turnbridge/sip/registrar.hpp"
#include "turnbridge/sip/registration.hpp"
#include "turnbridge/sip/transaction.hpp"
#include "turnbridge/turn/reflection_guard.hpp"

namespace turnbridge::gateway {

class AgentPort;   // agent_port.hpp (issue 17)

// The seam toward the media side (gateway::CallMedia): one MediaSdp per call. `outbound` is
// true for a browser->trunk call. nullptr: no media for it now (the call gets 503).
using MediaFactory = std::function<std::unique_ptr<sip::MediaSdp>(const config::Realm& realm, bool outbound)>;

// What signaling knows of a call when it ends, for its call record and logs.
struct CallSummary {
    std::string realm;
    std::string call_id;      // of the INVITE that made it (the `call` of its log events)
    std::string account;      // the browser user ("" if an inbound call was never answered)
    bool outbound = true;
    std::string remote;       // the number called, or the caller's number
    sip::Time started{};      // the INVITE
    std::optional<sip::Time> answered;
    sip::Time ended{};
    int status = 0;           // final status of the call's INVITE
    std::string end_reason;   // bye-browser, bye-trunk, bye-caller, cancel, browser-gone, media: <why>, shutdown, rejected,
                              // handover failed: <status>|no answer, transferred
    bool agent = false;       // a browser's call to an AI agent (issue 17): its trunk leg is the agent
    // Codecs signaling knows for a call whose media is not the gateway's (issue 17: a hand-over
    // to a number, joined by the agent host's relay): "PCMU/PCMU", relay/trunk; else "".
    std::string codecs;
    config::AgentMediaFormat agent_format = config::AgentMediaFormat::Mulaw;   // ... and its format
    // The trunk the call went through or came from (config::Gateway::trunk_name, issue 14:
    // "default" for the single-trunk form); "" when it has none (the test line, a browser's call
    // to an agent).
    std::string trunk;
};

// Until the media side is wired in: SDP passes through unchanged (signaling only).
std::unique_ptr<sip::MediaSdp> pass_through_media(const config::Realm& realm, bool outbound);

// What the router knows about a flow when a message arrives on it.
struct SipFlow {
    sip::TransportId id = 0;
    bool websocket = false;   // a browser's WS/WSS connection; else a trunk-side flow
    bool secure = false;      // WSS or TLS
    bool reliable = true;     // false for UDP (RFC 3261 §17 retransmissions)
    IpAddress peer;           // the remote address, for digest nonces and trunk matching
    std::optional<Endpoint> local;   // our end of a TLS connection toward a trunk (its Via/Contact)
};

// A flow toward a trunk, as the host made it.
struct TrunkFlowInfo {
    sip::TransportId id = 0;
    std::optional<Endpoint> local;   // TLS: our end of the connection (we listen for no TLS)
};

// Where our requests toward trunks leave from.
struct SipLocal {
    std::string sent_by;      // "127.0.0.1:5060": the sip_listen address
    std::string ws_host;      // Via sent-by / Contact host toward browsers
};

class SipRouter {
public:
    // `trunk_flow` gives the flow toward `to`, an address of the realm's trunk, over the trunk's
    // transport (nullopt: cannot reach it, logged by the host).
    using TrunkFlow = std::function<std::optional<TrunkFlowInfo>(const config::Realm& realm, const Endpoint& to)>;
    // How long a browser INVITE waits for its trunk's host name before 503.
    static constexpr std::chrono::seconds kResolveWait{5};
    // After the connection of a TCP/TLS trunk registration closed, or the trunk could not be
    // reached to register: register again this much later.
    static constexpr std::chrono::seconds kReRegister{10};
    // A trunk's address may send this many times server.sip_requests_per_second (and burst):
    // 200/s by default, so that 32 s of Timer J (RFC 3261 §17.2.2) hold at most 6,400
    // transactions, under server.sip_transactions' 8,192.
    static constexpr std::uint32_t kTrunkRateFactor = 10;

    SipRouter(std::shared_ptr<const config::Config> cfg, const turn::NonceMinter& nonces, SipLocal local,
              MediaFactory media, TrunkFlow trunk_flow, sip::Random random);
    ~SipRouter();

    void set_config(std::shared_ptr<const config::Config> cfg);
    // The built-in test line (test_line.hpp) of realms with gateway.test_numbers: its SIP address
    // and the UDP flow toward it. Without it those numbers go to the trunk like any other.
    using TestLineFlow = std::function<std::optional<sip::TransportId>(const Endpoint& to)>;
    void set_test_line(Endpoint at, TestLineFlow flow) {
        test_line_ = at;
        test_line_flow_ = std::move(flow);
    }
    // AI agent calls (issue 17, sip_router_agents.cpp): a DID routed to "agent:ws://..." is
    // answered once `agents` has the agent's WebSocket up. Without it such DIDs get 503.
    void set_agents(AgentPort* agents) { agents_ = agents; }
    void agent_answered(sip::Time now, const std::string& key, const std::string& answer_sdp, std::vector<sip::Action>& out);
    void agent_failed(sip::Time now, const std::string& key, const std::string& why, std::vector<sip::Action>& out);
    // The agent asked to hand its caller over ({"event":"transfer","to":"bob"}, agent_transfer.cpp).
    void agent_transfer(sip::Time now, const std::string& key, const std::string& to, std::vector<sip::Action>& out);
    // The hand-over's caller leg inside the router: the flow its sip::Call's trunk side uses. No
    // host flow has this id; what is sent on it is answered by on_handover_send().
    static constexpr sip::TransportId kHandoverFlow = ~sip::TransportId{0};
    std::size_t agent_calls() const { return agent_calls_.size(); }
    // Agents' transfers since start (for /metrics), in this order: user and number (hand-overs
    // begun), ignored (no such user or number, no trunk, no media ports, not answered yet),
    // failed (begun, but nobody took it: refused, busy, not answered in agent_ring_timeout).
    enum Transfer : std::size_t { kTransferUser, kTransferNumber, kTransferIgnored, kTransferFailed };
    const std::array<std::uint64_t, 4>& agent_transfers() const { return transfers_; }
    // Fleet mode (issue 15, fleet_proxy.cpp): a trunk INVITE for users with no binding here but
    // with bindings on other live nodes is proxied to those nodes (UDP, RFC 3261 §16, forking:
    // the first 2xx wins, the other branches are CANCELed); no live owner: 480 as before. With
    // bindings both here and on other nodes, this node is one more branch of the fork: the INVITE
    // is proxied to our own `sent_by` too, where it rings the local browsers as a peer's would.
    // `sent_by`: our SIP address for Via and Record-Route; `flow`: a UDP flow toward an address.
    using FleetFlow = std::function<std::optional<sip::TransportId>(const Endpoint& to)>;
    void set_fleet(const FleetLocations* fleet, std::string sent_by, FleetFlow flow) {
        fleet_ = fleet;
        fleet_sent_by_ = std::move(sent_by);
        fleet_flow_ = std::move(flow);
        fleet_self_.node.clear();
        if (auto ep = Endpoint::parse(fleet_sent_by_)) fleet_self_.sip = *ep;
    }
    // Forks in flight (for /metrics and tests).
    std::size_t fleet_forks() const { return forks_.size(); }
    // Outbound agent calls (POST /api/v1/calls, sip_router_agent_dial.cpp): `d.to` is called
    // through the realm's trunk like a browser's call (same sip::Call: digest, failover, 100rel,
    // session timers, number formats), its "browser" leg played by the router itself, and the
    // agent is connected only once the trunk answered 200 OK. Progress goes to on_dial_update.
    void dial_agent(sip::Time now, const AgentDial& d, std::vector<sip::Action>& out);
    void on_dial_update(std::function<void(const DialUpdate&)> f) { dial_report_ = std::move(f); }
    std::size_t agent_dials() const { return dials_.size(); }
    // Where trunk host names are resolved; without it only IP literal trunks are reachable.
    void set_trunk_hosts(const TrunkHosts* hosts) { hosts_ = hosts; }
    // security.auth_failures_per_minute for browsers' digest credentials; null: none.
    void set_auth_throttle(AuthThrottle* auth) { auth_ = auth; }
    // A trunk host name was looked up: waiting INVITEs and registrations go on.
    void on_trunk_resolved(sip::Time now, std::vector<sip::Action>& out);
    // Starts REGISTERs toward trunks of realms with `register = true`.
    void start(sip::Time now, std::vector<sip::Action>& out);
    // Bytes of one SIP message from `flow`; unreadable bytes are dropped (logged).
    void on_message(sip::Time now, std::int64_t unix_now, const SipFlow& flow, std::string_view bytes,
                    std::vector<sip::Action>& out);
    // on_message in two steps, for a message that may be handled by another worker (issue 12):
    // screen() on the worker it reached (keep-alives, UDP strangers, the per-source rate limits,
    // the parse) gives the message to handle, or nullopt (handled: answers are in `out`);
    // on_screened() on the worker that owns its Call-ID handles it.
    std::optional<sip::Message> screen(sip::Time now, const SipFlow& flow, std::string_view bytes,
                                       std::vector<sip::Action>& out);
    void on_screened(sip::Time now, std::int64_t unix_now, const SipFlow& flow, sip::Message m,
                     std::vector<sip::Action>& out);
    // Issue 14, attended transfer joins two calls of one user on one worker: the user an initial
    // INVITE is for, "user@realm", so that the placement puts it where that user's live call is
    // (GatewayShared::route). A browser's: its From user at the Request-URI's domain; a trunk's:
    // the first user its DID is routed to. "" when none. Only a preference: nothing is checked.
    std::string placement_user(const SipFlow& flow, const sip::Message& invite) const;
    // Shares the registrar, live-call counts and placement with the other workers' routers
    // (GatewayShared), as worker `worker`; before start(). Without it the router has its own.
    // `registers`: this router sends our REGISTERs toward trunks (worker 0 only).
    void set_shared(GatewayShared* shared, unsigned worker, bool registers);
    void on_timer(sip::Time now, std::vector<sip::Action>& out);
    void on_flow_closed(sip::Time now, sip::TransportId id, std::vector<sip::Action>& out);
    // Hangs up every call and unregisters (shutdown).
    void stop(sip::Time now, std::vector<sip::Action>& out);
    std::optional<sip::Time> next_wake() const;

    // Ends the call that owns `media` (its media failed); `why` goes to the call record.
    void hang_up(sip::Time now, const sip::MediaSdp* media, const std::string& why, std::vector<sip::Action>& out);
    // Called once per call when it ends, with its media (still owned by the router).
    void on_call_ended(std::function<void(const CallSummary&, sip::MediaSdp* media)> f) { ended_ = std::move(f); }

    std::size_t calls() const { return calls_.size(); }
    std::size_t bindings() const { return shared_->with_registrar([](sip::Registrar& r) { return r.size(); }); }
    std::size_t transactions() const { return layer_.size(); }
    // Does a transaction, a call or a trunk registration use flow `id`? (The host keeps it.)
    bool uses_flow(sip::TransportId id) const;
    // Is `ip` an address of a gateway realm's trunk?
    bool is_trunk(const IpAddress& ip) const;
    // How often each bound bit (the host adds its flow table's counts).
    sip::LimitCounts limits() const;
    // The trunk targets' OPTIONS health (issue 14), shared by every worker.
    std::vector<TargetHealth> trunk_health() const {
        return shared_->with_health([](TrunkHealth& h) { return h.targets(); });
    }

private:
    struct CallEntry {
        std::unique_ptr<sip::MediaSdp> media;
        std::unique_ptr<sip::Call> call;
        std::optional<sip::Time> ended_at;   // kept a while for retransmissions, then dropped
        std::vector<sip::TransportId> browser_flows;   // WebSockets of its browser leg(s)
        sip::TransportId trunk_flow = 0;                // its trunk leg's flow
        CallSummary summary;
        std::vector<std::string> routed;   // inbound: the users the DID rings
        bool reported = false;
        std::string call_id;        // of the INVITE that made it (its placement, GatewayShared)
        std::string counted_user;   // the user its live count is held for ("" none yet)
        std::string agent_key;      // issue 17: a hand-over from this agent call's caller
        // Issue 14, attended transfer: the call whose trunk leg this one's is joined to (both
        // browser legs gone; a std::list element, cleared on both sides when either ends).
        CallEntry* joined = nullptr;
    };
    struct TrunkRegistration {
        std::string realm;
        std::string trunk;   // its name (issue 14: each trunk with `register` registers)
        sip::TransportId flow = 0;
        std::unique_ptr<sip::Registration> registration;
    };

    void apply_limits();
    bool admit(sip::Time now, const IpAddress& source);
    void answer_stranger(const SipFlow& flow, const sip::Message& request, std::size_t request_size,
                         std::vector<sip::Action>& out);
    bool over_rate(sip::Time now, const SipFlow& flow, const sip::Message& m, std::vector<sip::Action>& out);
    // Live calls of `realm` and of `user` in it.
    std::pair<std::uint32_t, std::uint32_t> live_calls(const config::Realm& realm, std::string_view user) const;
    bool user_at_limit(const config::Realm& realm, std::string_view user) const;
    bool realm_at_limit(const config::Realm& realm) const;
    void count(sip::Limit l) { ++counts_[static_cast<std::size_t>(l)]; }
    void process(sip::Time now, std::int64_t unix_now, const SipFlow* flow, std::vector<sip::Action>& in,
                 std::vector<sip::Action>& out);
    void on_request(sip::Time now, std::int64_t unix_now, const SipFlow* flow, sip::RequestIn& r,
                    std::vector<sip::Action>& out);
    void on_register(sip::Time now, std::int64_t unix_now, const SipFlow& flow, sip::RequestIn& r,
                     std::vector<sip::Action>& out);
    void on_browser_invite(sip::Time now, std::int64_t unix_now, const SipFlow& flow, sip::RequestIn& r,
                           std::vector<sip::Action>& out);
    void on_trunk_invite(sip::Time now, const SipFlow& flow, sip::RequestIn& r, std::vector<sip::Action>& out);
    // The digest check of a browser's REGISTER or INVITE (`proxy`: Proxy-Authorization) under
    // the failed-authentication throttle. nullopt: the source was over it and has been answered
    // 503 without a password check.
    std::optional<sip::DigestServer::Check> throttled_digest(sip::Time now, std::int64_t unix_now,
                                                             const config::Realm& realm, const SipFlow& flow,
                                                             sip::RequestIn& r, bool proxy,
                                                             std::vector<sip::Action>& out);
    void reply(sip::Time now, const std::string& tx, const sip::Message& request, int status,
               std::vector<sip::Action>& out, std::string_view reason = {});
    const config::Realm* gateway_realm(std::string_view name) const;
    // Trunk `index` of gateway realm `realm` (trunk_choice.hpp), or nullptr.
    const config::Realm* gateway_trunk(std::string_view realm, std::size_t index) const;
    TrunkHosts::State trunk_state(const config::Realm& realm) const;
    std::vector<IpAddress> trunk_addresses(const config::Realm& realm) const;
    // In the functions below `realm` is one trunk of a realm (trunk_choice.hpp).
    // The realm's trunk targets in the order one call tries them (issue 14, trunk_targets.hpp),
    // and the first of them.
    std::vector<Endpoint> trunk_targets(const config::Realm& realm) const;
    // Every target of the realm's trunk (of our family when it has such), unordered.
    std::vector<TrunkTarget> usable_targets(const config::Realm& realm) const;
    std::vector<TrunkTarget> uri_targets(const config::Realm& realm) const;   // the URI's alone
    // OPTIONS health checks (issue 14, trunk_health.hpp): the trunks' probes that are due.
    void probe_trunks(sip::Time now, std::vector<sip::Action>& out);
    void probe_trunk(sip::Time now, const config::Realm& trunk, std::vector<sip::Action>& in);
    bool on_probe_response(sip::Time now, const sip::ResponseIn& r);
    struct Probe {
        std::string realm;
        std::string trunk;
        Endpoint to;
    };
    using TrunkKey = std::pair<std::string, std::string>;   // realm, trunk name
    std::map<std::string, Probe> probes_;            // tx -> the probe in flight (one per target)
    std::map<TrunkKey, sip::Time> next_probe_;       // trunk -> its next round
    std::optional<Endpoint> trunk_endpoint(const config::Realm& realm) const;
    // May `ip` send INVITEs as the realm's trunk? (gateway.trunk_allow, else its addresses)
    bool trunk_allowed(const config::Realm& realm, const IpAddress& ip) const;
    bool trunk_listed(const config::Realm& realm, const IpAddress& ip) const;   // as above, fleet nodes aside
    bool listed_trunk(const IpAddress& ip) const;   // is_trunk(), fleet nodes aside
    sip::LocalAddress trunk_local(config::SipTrunk::Transport t, bool sips, const std::optional<Endpoint>& conn,
                                  std::string_view user) const;
    // The realm's trunk flow and our address on it; nullopt (logged) if it cannot be reached.
    struct TrunkLeg {
        Endpoint to;
        sip::LegAddress leg;
        std::string scheme;       // "sip" or "sips"
        std::string hostport;     // the trunk URI's host and port, for Request-URIs
        std::string uri_params;   // ";transport=udp"
        std::optional<Endpoint> conn;   // TLS: our end of the connection
    };
    std::optional<TrunkLeg> trunk_leg(const config::Realm& realm, std::optional<Endpoint> to = std::nullopt);
    // A call to `dialled` in `realm` goes to the test line (sip_router_test_line.cpp).
    bool to_test_line(const config::Realm& realm, std::string_view dialled) const;
    std::optional<TrunkLeg> test_line_leg();
    void start_registrations(sip::Time now, std::vector<sip::Action>& out);
    void expire_waiting(sip::Time now, std::vector<sip::Action>& out);
    CallEntry* call_owning(const std::string& tx);
    void reap(sip::Time now);
    void note_answer(CallEntry& e, sip::Time now);
    // Issue 14 (sip_router_refer.cpp): an inbound call learns who a REFER from its trunk may
    // name; an INVITE with Replaces moves the trunk dialog it names, or gets 481.
    void arm_refer(CallEntry& e);
    void on_replacing_invite(sip::Time now, const SipFlow& flow, sip::RequestIn& r, std::vector<sip::Action>& out);
    // Issue 14, attended transfer (sip_router_attended.cpp): a browser's REFER with Replaces on
    // call `e` joins it to the user's other call that the Replaces names (0), or the status
    // refusing it; a joined call that ended hangs up the other.
    void arm_attended(CallEntry& e);
    int join_calls(sip::Time now, CallEntry& a, const sip::Replaces& replaces, std::vector<sip::Action>& out);
    void end_joined(sip::Time now, std::vector<sip::Action>& out);
    // Gives an outbound call the realm's other targets to fail over to (issue 14).
    void arm_failover(sip::Time now, CallEntry& e, const config::Realm& realm, const Endpoint& first);
    // The trunk's targets after `first`, one per call (empty function: none).
    sip::Call::NextTarget next_targets(CallEntry& e, const config::Realm& realm, const Endpoint& first);
    // An outbound call's account at `trunk` (credentials, caller ID, timers); with_identity() the rest.
    static sip::TrunkAccount trunk_account(const config::Gateway& gw, const TrunkLeg& trunk);
    // Issue 14: an inbound call's transfer fallback goes out through the trunk the number picks.
    void arm_trunk_router(CallEntry& e, const std::string& realm, const std::string& did);

    std::shared_ptr<const config::Config> cfg_;
    const turn::NonceMinter& nonces_;
    SipLocal local_;
    MediaFactory media_;
    TrunkFlow trunk_flow_;
    sip::Random random_;
    sip::TransactionLayer layer_;
    std::unique_ptr<GatewayShared> own_shared_;   // when no set_shared()
    GatewayShared* shared_ = nullptr;
    unsigned worker_ = 0;
    bool registers_ = true;
    // A new call is counted live (process-wide) and its placement kept.
    void started(CallEntry& e, const std::string& call_id);
    sip::LocalAddress marked(sip::LocalAddress a) const {
        a.call_id_prefix = sip::Placement::mark(worker_);
        return a;
    }
    std::list<CallEntry> calls_;
    // Issue 17: trunk calls answered by an AI agent, by Call-ID (sip_router_agents.cpp).
    struct AgentCall {
        std::string tx;               // the INVITE's server transaction
        std::optional<sip::Message> invite;   // moved in from the RequestIn
        sip::TransportId flow = 0;
        bool reliable = false;
        sip::LocalAddress local;
        std::string to_tag;
        std::string answer_sdp;
        std::optional<sip::Dialog> dialog;   // once answered
        CallSummary summary;
        // A browser's call to an agent (sip_router_agent_browser.cpp): its media (Opus from the
        // browser transcoded to the PCMU RTP the agent host takes) and the user counted live.
        std::unique_ptr<sip::MediaSdp> media;
        std::string counted_user;
        // Handed over to a browser user (agent_transfer.cpp): the INVITE our own sip::Call took
        // for it (its offer names the agent host's RTP socket, which now relays).
        std::optional<sip::Message> handover_invite;
        bool handover_acked = false;
        sip::Time handover_until{};   // agent_ring_timeout: not taken by then, the caller is hung up
    };
    std::array<std::uint64_t, 4> transfers_{};
    std::map<std::string, AgentCall> agent_calls_;
    AgentPort* agents_ = nullptr;
    void on_agent_invite(sip::Time now, const SipFlow& flow, sip::RequestIn& r, const config::Realm& realm,
                         const std::string& target, const std::string& did, std::vector<sip::Action>& out);
    void on_agent_browser_invite(sip::Time now, const SipFlow& flow, sip::RequestIn& r, const config::Realm& realm,
                                 const std::string& caller, const std::string& name, const config::AgentEntry& agent,
                                 std::vector<sip::Action>& out);
    // A browser agent call whose media failed or whose WebSocket closed; false: none.
    bool hang_up_agent(sip::Time now, const sip::MediaSdp* media, const std::string& why, std::vector<sip::Action>& out);
    void agent_flow_closed(sip::Time now, sip::TransportId id, std::vector<sip::Action>& out);
    void on_handover_send(sip::Time now, sip::Send& s, std::vector<sip::Action>& out);
    // `to`: another To for it (a number through the trunk); "" keeps the caller's.
    std::string handover_invite(sip::Time now, AgentCall& a, const std::string& relay, const std::string& to = {});
    void agent_transfer_to_trunk(sip::Time now, AgentCall& a, const config::Realm& realm, const std::string& number,
                                 std::vector<sip::Action>& out);
    void expire_handovers(sip::Time now, std::vector<sip::Action>& out);
    void hang_up_handover(sip::Time now, const std::string& key, const std::string& why, std::vector<sip::Action>& out);
    bool on_agent_request(sip::Time now, sip::RequestIn& r, std::vector<sip::Action>& out);   // in-dialog
    bool on_agent_cancel(sip::Time now, const std::string& invite_tx, std::vector<sip::Action>& out);
    void agent_respond(sip::Time now, const std::string& tx, sip::Message response, std::vector<sip::Action>& out);
    // `reason`: a Reason header value (RFC 3326), "" for none.
    void agent_bye(sip::Time now, AgentCall& a, std::vector<sip::Action>& out, const std::string& reason = {});
    void end_agent(sip::Time now, std::string key, std::string reason);   // `key` by value: erased here
    void stop_agents(sip::Time now, std::vector<sip::Action>& out);
    // Outbound agent calls by the Call-ID of the INVITE the router plays the browser with.
    // kDialLeg is that leg's flow: what the Call sends there comes back to on_dial_leg().
    static constexpr sip::TransportId kDialLeg = ~sip::TransportId{1};   // not kHandoverFlow
    struct AgentDialLeg {
        std::string id;                        // the API's call id
        std::optional<sip::Message> invite;    // the INVITE we play the browser with
        sip::LocalAddress local;               // that leg's (never sent anywhere)
        sip::Time ring_until{};                // agent_ring_timeout: then CANCEL
        bool answered = false, timed_out = false, ringing = false;
    };
    std::map<std::string, AgentDialLeg> dials_;
    std::function<void(const DialUpdate&)> dial_report_;
    void report_dial(const AgentDialLeg& d, DialUpdate::State state, int sip_code, const std::string& call_id,
                     const std::string& end_reason = {});
    void on_dial_leg(sip::Time now, const std::string& bytes, std::vector<sip::Action>& out);
    void dial_failed(sip::Time now, const std::string& key, const std::string& why, std::vector<sip::Action>& out);
    bool end_dial(sip::Time now, CallEntry& e);   // false: not an agent dial
    void expire_dials(sip::Time now, std::vector<sip::Action>& out);
    std::vector<TrunkRegistration> registrations_;
    std::function<void(const CallSummary&, sip::MediaSdp*)> ended_;
    std::optional<sip::Time> reregister_at_;
    const TrunkHosts* hosts_ = nullptr;
    std::optional<Endpoint> test_line_;
    TestLineFlow test_line_flow_;
    AuthThrottle* auth_ = nullptr;
    // Browser INVITEs (authenticated) waiting for their trunk's host name.
    struct Waiting {
        sip::Time until;
        std::int64_t unix_now = 0;
        SipFlow flow;
        sip::RequestIn request;
    };
    std::vector<Waiting> waiting_;
    turn::ReflectionGuard rate_;         // server.sip_requests_per_second per source IP
    turn::ReflectionGuard trunk_rate_;   // ... times kTrunkRateFactor, for trunks' addresses
    sip::LimitCounts counts_{};

    // Fleet proxying (fleet_proxy.cpp). One fork per proxied INVITE, by Call-ID.
    struct FleetBranch {
        Endpoint to;
        sip::TransportId flow = 0;
        std::string via;          // our Via branch toward it
        std::string bytes;        // the INVITE as forwarded (retransmitted as is; CANCEL built from it)
        int final_status = 0;     // 0 while none; 408 when it never answered in time
        bool heard = false;       // any response
    };
    struct FleetFork {
        sip::TransportId upstream = 0;   // the trunk's flow
        std::string invite;              // the trunk's INVITE, for our own 100 and 480
        std::vector<FleetBranch> branches;
        sip::Time started{}, done_at{};
        bool answered = false, done = false;
    };
    const FleetLocations* fleet_ = nullptr;
    std::string fleet_sent_by_;
    FleetFlow fleet_flow_;
    FleetPeer fleet_self_;   // this node as a branch of its own fork (its sent_by)
    std::map<std::string, FleetFork> forks_;
    bool fleet_peer(const IpAddress& ip) const;
    bool fleet_node(const IpAddress& ip) const;   // another node's address or ours
    // A new call from a node's address (no trunk's): only from a node alive now (its heartbeat
    // within 3 s), over UDP (how nodes proxy). Any node's address is trusted in dialogs (a node
    // may miss heartbeats while its calls go on), but a dead node's address may be someone's now.
    bool fleet_may_call(sip::Time now, const SipFlow& flow) const;
    // Our own address (fleet mode only): the branch of a fork we proxied to ourselves is trusted
    // like a peer's INVITE (a packet from outside cannot carry a local source address: the kernel
    // drops it as martian).
    bool fleet_self(const IpAddress& ip) const { return fleet_ != nullptr && fleet_self_.sip.port != 0 && fleet_self_.sip.ip == ip; }
    // A request we sent to ourselves: from our address, our fleet Via on top (a trunk on the
    // same address never carries our branch).
    bool fleet_looped(const SipFlow& flow, const sip::Message& m) const;
    // Before the transaction layer: a message the proxy handles (true) or not (false).
    bool fleet_forward(sip::Time now, const SipFlow& flow, sip::Message& m, std::vector<sip::Action>& out);
    bool fleet_fork(sip::Time now, const SipFlow& flow, const sip::Message& m, std::vector<sip::Action>& out);
    void fleet_response(sip::Time now, sip::Message& m, std::vector<sip::Action>& out);
    void fleet_timer(sip::Time now, std::vector<sip::Action>& out);
    std::optional<sip::Time> fleet_next_wake() const;
    // The trunk (of a realm, trunk_choice.hpp) a trunk INVITE for `did` from `peer` belongs to
    // (gateway.trunk_allow), or null.
    const config::Realm* trunk_realm(const IpAddress& peer, const std::string& did) const;
};

}  // namespace turnbridge::gateway
