// SPDX-License-Identifier: Apache-2.0
#pragma once
// One B2BUA call (sans-I/O): the INVITE we answer (the "UAS leg": a browser for outbound calls,
// the trunk for inbound ones) joined to the INVITE(s) we send (the "UAC legs": the trunk, or
// every registered browser of the routed users, forked). Provisional and final responses are
// mapped across, CANCEL and BYE go both ways, and SDP comes from the media side.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/sip/dialog.hpp"
#include "turnbridge/sip/numbers.hpp"
#include "turnbridge/sip/registrar.hpp"
#include "turnbridge/sip/session_timer.hpp"
#include "turnbridge/sip/transaction.hpp"

namespace turnbridge::sip {

struct ReferTarget;   // refer.hpp
struct Replaces;      // refer.hpp

// The media side (src/gateway) turns one leg's SDP into the other's. nullopt = not acceptable (488).
class MediaSdp {
public:
    virtual ~MediaSdp() = default;
    virtual std::optional<std::string> map_offer(bool from_browser, const std::string& sdp) = 0;
    virtual std::optional<std::string> map_answer(bool from_browser, const std::string& sdp) = 0;

    // A mid-call offer from one leg (a re-INVITE or UPDATE) that may be answered without the
    // other leg: a session-timer refresh, the same SDP version (RFC 3264 §8), a new address or
    // codec on the trunk leg. Relay: the other leg must hear of it (hold, resume); with `force`
    // (an UPDATE, which is not relayed) the media side answers whatever changed.
    struct LocalAnswer {
        enum class Kind { Relay, Answered, Refused } kind = Kind::Relay;
        std::string sdp;
    };
    virtual LocalAnswer answer_locally(bool /*from_browser*/, const std::string& /*sdp*/, bool /*force*/) {
        return {};
    }
    // Our current session toward one leg as a new offer, for a request that carried none (an
    // SDP-less re-INVITE, RFC 3261 §14.2); the answer comes to take_answer() (in the ACK).
    virtual std::optional<std::string> current_offer(bool /*to_browser*/) { return std::nullopt; }
    virtual bool take_answer(bool /*from_browser*/, const std::string& /*sdp*/) { return false; }
    // Outbound late offer (`late_offer`, our INVITE had no SDP): the trunk's offer in its 2xx ->
    // {our answer for the ACK, the answer to the browser's offer}; nullopt: not acceptable.
    struct LateAnswers {
        std::string to_trunk, to_browser;
    };
    virtual std::optional<LateAnswers> answer_late_offer(const std::string& /*trunk_offer*/) { return std::nullopt; }
    // Issue 14, a transfer asked by the trunk (call_refer_in.cpp): the browser leg moves to
    // another browser while the trunk leg stays. An offer for the new browser (our session with
    // fresh ICE credentials; the old browser goes on meanwhile), then that browser's answer, which
    // replaces the old browser's ICE, DTLS and codec. false/nullopt: it cannot move.
    virtual std::optional<std::string> new_browser_offer() { return std::nullopt; }
    virtual bool take_new_browser(const std::string& /*answer*/) { return false; }
    // Issue 14, attended transfer (RFC 3891 in a REFER): this call's trunk leg and `other`'s are
    // joined (each party hears the other) and both browser legs are given up. false: cannot.
    virtual bool join_trunk(MediaSdp& /*other*/) { return false; }
};

// Where a leg's messages go and what our Via/Contact say there.
struct LegAddress {
    TransportId transport = 0;
    bool reliable = true;
    LocalAddress local;
};

struct TrunkAccount {
    std::string host;                 // "127.0.0.1:5070", the trunk URI's hostport
    std::string uri_params;           // ";transport=udp", appended to Request-URIs
    std::string username, password;   // answers 401/407 to our INVITE
    std::string caller_id;            // From user toward the trunk; "" = the browser's user
    std::string scheme = "sip";       // "sips" for a sips: trunk (RFC 3261 §19.1)
    SessionTimerConfig timers;        // RFC 4028 on the trunk leg
    bool late_offer = false;          // our INVITE without SDP; the trunk offers in its 2xx
    bool rel100 = true;               // RFC 3262 on the trunk leg; off: 420 to `Require: 100rel`
    // Identity and number format (issue 13): the caller also in P-Asserted-Identity (RFC 3325)
    // or Remote-Party-ID (draft-ietf-sip-privacy-04, what older carriers read); ";user=phone" on
    // number URIs; the "+" policy and tech prefix of numbers we send; the national number plan.
    enum class Identity { From, Pai, Rpid } identity = Identity::From;
    bool user_phone = false;
    std::optional<bool> e164_plus;
    std::string tech_prefix;
    NumberPlan plan;
    // Issue 14, blind transfer (RFC 3515): how a browser's transfer target goes to the trunk in
    // our REFER: <sip:NUMBER@trunk-host> or <tel:+E164> (RFC 3966).
    enum class ReferTo { Sip, Tel } refer_to = ReferTo::Sip;
};

class Call {
public:
    enum class State { Calling, Early, Confirmed, Ended };
    // Issue 14 (RFC 3263 §4.3): where an outbound INVITE goes next when its trunk target fails
    // (see fails_over()); nullopt: no target left, and the browser hears the failure.
    using NextTarget = std::function<std::optional<LegAddress>()>;
    // A UDP target that has not sent even a 100 Trying this long after our INVITE is given up.
    static constexpr Duration kTryingWait = std::chrono::seconds(2);
    // A final status that moves an outbound INVITE to the next target: 503 (also ours for a
    // transport error or Timer B) and 408. Busy, declined, not found and the rest do not: the
    // next target would say the same.
    static bool fails_over(int status) { return status == 503 || status == 408; }

    // Browser INVITE (already authenticated) -> trunk INVITE to the To user at the trunk.
    Call(Time now, const std::string& browser_tx, const Message& invite, LegAddress browser, LegAddress trunk,
         TrunkAccount account, MediaSdp& media, Random random, TransactionLayer& layer, std::vector<Action>& out);
    // Trunk INVITE -> one INVITE per binding (RFC 3261 §16.7-style forking by a B2BUA); no
    // bindings -> 480. `realm` names the browsers' domain in our From/To toward them.
    Call(Time now, const std::string& trunk_tx, const Message& invite, LegAddress trunk, TrunkAccount account,
         const std::vector<Binding>& bindings, std::string_view callee, std::string_view realm,
         LocalAddress browser_local, MediaSdp& media, Random random, TransactionLayer& layer, std::vector<Action>& out);

    // Outbound: fail over through `next` (see NextTarget); arms kTryingWait for a UDP target.
    void set_failover(Time now, NextTarget next);
    // Issue 14, an inbound call's transfer fallback: the INVITE to the target goes out as an
    // outbound call's would, through the trunk the router picks for the number (its targets,
    // account and failover) rather than back to where the trunk's INVITE came from.
    struct TrunkRoute {
        LegAddress leg;          // the trunk's first target
        TrunkAccount account;    // host, credentials, caller ID, identity, number format
        NextTarget next;         // its other targets (may be empty)
    };
    using TrunkRouter = std::function<std::optional<TrunkRoute>(std::string_view number)>;
    // Without a router, or when it has no reachable target (nullopt), the fallback goes to the
    // trunk's Contact host over the flow the inbound INVITE came on (the origination address).
    void set_trunk_router(TrunkRouter router) { trunk_router_ = std::move(router); }
    // The flow the call's trunk leg is on now (an inbound call's transfer fallback may move it).
    std::optional<TransportId> trunk_transport() const {
        if (!outbound_) return uas_.address.transport;
        return uac_.empty() ? std::nullopt : std::optional<TransportId>(uac_.front().address.transport);
    }
    // How many targets this call's INVITE went to (1 without failover).
    std::size_t targets_tried() const { return targets_tried_; }

    State state() const { return state_; }
    int final_status() const { return final_status_; }   // what the UAS leg was answered, for logs/CDRs
    bool owns(const std::string& tx) const;              // any transaction of this call
    // The flow of the leg that answered an inbound call's fork (a browser's WebSocket).
    std::optional<TransportId> answered_on() const {
        return winner_ ? std::optional<TransportId>(uac_[*winner_].address.transport) : std::nullopt;
    }
    bool matches(const Message& in_dialog) const;        // an in-dialog request for one of our legs

    void on_response(Time now, const std::string& tx, const Message& r, TransactionLayer& layer, std::vector<Action>& out);
    void on_timeout(Time now, const std::string& tx, TransactionLayer& layer, std::vector<Action>& out);
    // The flow of a request we sent is gone (TransactionLayer::on_transport_closed): an INVITE
    // leg ends as by 503 (RFC 3261 §8.1.3.1), anything else as by a timeout.
    void on_transport_error(Time now, const std::string& tx, TransactionLayer& layer, std::vector<Action>& out);
    void on_cancel(Time now, const std::string& invite_tx, TransactionLayer& layer, std::vector<Action>& out);
    // An in-dialog request (BYE, ACK, re-INVITE, INFO...) for one of our legs; `tx` empty for ACK.
    void on_request(Time now, const std::string& tx, const Message& r, TransactionLayer& layer, std::vector<Action>& out);
    // Hang up from our side (shutdown, quota): CANCEL or BYE every leg, 487/480 to an unanswered UAS leg.
    void hang_up(Time now, TransactionLayer& layer, std::vector<Action>& out);
    // RFC 4028 on the trunk leg: our refresh when due, the end of the call when a refresh never came.
    void on_timer(Time now, TransactionLayer& layer, std::vector<Action>& out);
    std::optional<Time> next_wake() const;
    // Why the call ended when the call itself decided it ("session-expired"), else "".
    const std::string& end_reason() const { return end_reason_; }
    const SessionTimer& session_timer() const { return timer_; }
    // Issue 14 (call_transfer.cpp): a transfer is in progress (a REFER relayed to the trunk, or
    // our own call to the target after the trunk refused it). One at a time: another REFER gets 491.
    bool transferring() const { return transfer_.has_value(); }
    // A transfer's REFER relayed to the trunk and our fallback call both give up after this long.
    static constexpr Duration kTransferWait = std::chrono::seconds(32);
    // Statuses of the trunk's answer to our REFER after which we call the target ourselves:
    // it does not do REFER (405, 501, 420), will not (403), or did not answer (408, 503).
    static bool transfer_falls_back(int status) {
        return status == 403 || status == 405 || status == 408 || status == 420 || status == 501 || status == 503;
    }

    // Issue 14, a REFER from the trunk, inbound or outbound call (call_refer_in.cpp, RFC 3515 with
    // us as the referee): the realm's user it names rings on every browser of theirs, and the one
    // that answers takes the browser leg over (MediaSdp::new_browser_offer); the old browser gets a
    // BYE and the trunk NOTIFYs 100, 180 and the outcome. `lookup` names the user and their
    // bindings; nullopt: no user or routed number of this realm (403). Without it: 403.
    struct ReferredUser {
        std::string user;
        std::vector<Binding> bindings;
    };
    using ReferLookup = std::function<std::optional<ReferredUser>(const ReferTarget&)>;
    void set_refer_lookup(ReferLookup lookup) { refer_lookup_ = std::move(lookup); }
    // The user whose browser took the call over by the trunk's last transfer ("" none).
    const std::string& taken_over_by() const { return taken_over_by_; }
    // The trunk's transfer NOTIFYs not relayed to the browser: a repeated status, or past
    // kTransferNotifies provisional ones in one transfer (a NOTIFY storm; sip::Limit::NotifyDropped).
    static constexpr std::size_t kTransferNotifies = 8;
    std::uint64_t notifies_dropped() const { return notifies_dropped_; }
    // RFC 3262 §4: each new reliable provisional from the trunk costs a PRACK transaction; past
    // kMaxPracks in one call they are dropped unacknowledged (sip::Limit::ReliableDropped).
    static constexpr std::size_t kMaxPracks = 16;
    std::uint64_t reliable_dropped() const { return reliable_dropped_; }
    // RFC 3891 §3: an INVITE with Replaces naming this call's trunk dialog (the trunk moves the
    // call to a new dialog): answered here with the trunk's new session, the old trunk dialog
    // BYEd; the browser leg is untouched. false: the dialog is not ours or not confirmed.
    bool replaces_trunk_dialog(const Message& invite) const;
    void replace_trunk_dialog(Time now, const std::string& tx, const Message& invite, LegAddress trunk,
                              TransactionLayer& layer, std::vector<Action>& out);

    // Issue 14, attended transfer (call_attended.cpp): the browser REFERs this call with a
    // Refer-To whose Replaces (RFC 3891) names the browser dialog of another call of the same
    // user. `join` (the router) finds that call, joins the two trunk legs' media and releases the
    // other call's browser leg; it returns 0, or why not: 481 (no such call of the user) and
    // 503 (it cannot be joined) go to the browser as 202 + NOTIFY 481/503, others (491) as the
    // REFER's answer. Joined: this call answers 202, NOTIFYs 100 and 200 (RFC 3515 §2.4.5) and
    // BYEs its browser leg: the two trunk parties talk, each call going on with its trunk leg
    // alone ("joined"). Without `join`: 501.
    using AttendedJoin = std::function<int(Time, const Replaces&, TransactionLayer&, std::vector<Action>&)>;
    void set_attended_join(AttendedJoin join) { attended_ = std::move(join); }
    // Does `r` name this call's browser dialog? Tags in either order: RFC 3891 §3 has to-tag for
    // the dialog's end at the recipient (ours), but JsSIP writes them as its INVITE had them.
    bool has_browser_dialog(const Replaces& r) const;
    // Answered, both legs' dialogs confirmed, no transfer, re-INVITE or join under way.
    bool joinable() const;
    // The other call of an attended transfer: BYE to its browser, its trunk leg stays, joined.
    void release_browser(Time now, TransactionLayer& layer, std::vector<Action>& out);
    // The browser legs are gone and the trunk leg is joined to another call's: a BYE from the
    // browser ends nothing, mid-call offers from the trunk are answered here.
    bool joined() const { return joined_; }

private:
    struct Leg {
        LegAddress address;
        std::string invite_tx;               // the INVITE transaction on this leg
        std::optional<Message> invite;       // UAC legs: the INVITE we sent
        std::optional<Dialog> dialog;
        int final = 0;                       // final status of the INVITE on this leg
        bool auth_tried = false;
        bool timer_retried = false;          // a 422 answered once (RFC 4028 §7.3)
        bool answer_in_ack = false;          // our 2xx to its SDP-less re-INVITE held the offer
        std::optional<Time> trying_by;       // failover: a UDP target must answer something by then
    };
    // Issue 14: the INVITE of uac_[i] again toward the next target, if `status` fails over and
    // one is left; false: the failure stands.
    bool try_next_target(Time now, std::size_t i, int status, TransactionLayer& layer, std::vector<Action>& out);
    void check_trying(Time now, TransactionLayer& layer, std::vector<Action>& out);
    void send_uac_invite(Time now, Leg& leg, Message invite, TransactionLayer& layer, std::vector<Action>& out);
    // The leg's INVITE again as a new client transaction (same dialog identifiers, our Via at
    // `local` with a new branch, the next CSeq): 401/407, 422 and failover retries.
    Message reissue_invite(const Leg& leg, const LocalAddress& local);
    // RFC 3261 §22.2: the leg's INVITE again with credentials for the 401/407 `r`, once per leg
    // and only with an account; false when it was not sent.
    bool retry_with_credentials(Time now, Leg& leg, const Message& r, TransactionLayer& layer, std::vector<Action>& out,
                                const TrunkAccount* account = nullptr);
    void answer_uas(Time now, int status, std::string_view sdp, TransactionLayer& layer, std::vector<Action>& out);
    void uac_final(Time now, std::size_t i, const Message& r, TransactionLayer& layer, std::vector<Action>& out);
    void bye(Time now, Leg& leg, TransactionLayer& layer, std::vector<Action>& out);
    void end_other_side(Time now, bool from_uas, TransactionLayer& layer, std::vector<Action>& out);
    Leg* uac_by_tx(const std::string& tx, std::size_t* index = nullptr);
    void relay_reinvite(Time now, const std::string& tx, const Message& r, bool from_uas, TransactionLayer& layer,
                        std::vector<Action>& out);
    void reinvite_answered(Time now, const Message& r, TransactionLayer& layer, std::vector<Action>& out);
    bool is_browser(const Leg& leg) const { return (&leg == &uas_) == outbound_; }
    Leg* browser_leg() { return outbound_ ? &uas_ : (winner_ ? &uac_[*winner_] : nullptr); }
    // "sip:NUMBER@trunk-host[;user=phone]" for a number as the trunk wants it (issue 13 formats).
    // `account`: another trunk's (an inbound fallback's TrunkRoute); none: this call's.
    std::string trunk_dialled(std::string_view number, const TrunkAccount* account = nullptr) const;
    // An inbound call's account has no host: `fallback_host` (the trunk's Contact) then.
    std::string trunk_uri(const std::string& dialled, std::string_view fallback_host = {},
                          const TrunkAccount* account = nullptr) const;
    // Issue 14, transfer (call_transfer.cpp).
    void on_refer(Time now, const std::string& tx, const Message& r, Leg& leg, TransactionLayer& layer,
                  std::vector<Action>& out);
    void on_notify(Time now, const std::string& tx, const Message& r, Leg& leg, TransactionLayer& layer,
                   std::vector<Action>& out);
    // A response or failure for one of the transfer's requests; false: not one of them.
    bool transfer_response(Time now, const std::string& tx, const Message& r, TransactionLayer& layer,
                           std::vector<Action>& out);
    bool transfer_failed(Time now, const std::string& tx, int status, TransactionLayer& layer, std::vector<Action>& out);
    void refer_answered(Time now, const Message& r, TransactionLayer& layer, std::vector<Action>& out);
    void start_fallback(Time now, TransactionLayer& layer, std::vector<Action>& out);
    void fallback_response(Time now, const Message& r, TransactionLayer& layer, std::vector<Action>& out);
    // The fallback call to the trunk's next target (issue 14); false: none left (or no failover).
    bool fallback_next_target(Time now, Leg& leg, TransactionLayer& layer, std::vector<Action>& out);
    void notify_browser(Time now, int status, TransactionLayer& layer, std::vector<Action>& out);
    void answer_refer(Time now, int status, TransactionLayer& layer, std::vector<Action>& out);
    // The call ends or the transfer timed out: the REFER answered, a pending fallback CANCELled.
    void drop_transfer(Time now, TransactionLayer& layer, std::vector<Action>& out);
    std::optional<Time> next_wake_untransferred() const;
    Leg* trunk_leg();
    // A re-INVITE or UPDATE answered here, without the other leg (see MediaSdp::answer_locally).
    bool answer_in_dialog(Time now, const std::string& tx, const Message& r, Leg& leg, TransactionLayer& layer,
                          std::vector<Action>& out);
    void respond_in_dialog(Time now, const std::string& tx, const Message& r, Leg& leg, int status,
                           std::string_view sdp, TransactionLayer& layer, std::vector<Action>& out);
    void send_refresh(Time now, TransactionLayer& layer, std::vector<Action>& out);
    void refresh_answered(Time now, const Message& r, TransactionLayer& layer, std::vector<Action>& out);
    void add_trunk_headers(Message& m, bool refresh) const;
    // RFC 3262: PRACK a reliable provisional from the trunk (outbound); answer the trunk's PRACK
    // (inbound); retransmit our reliable provisional until it comes.
    enum class Reliability { Unreliable, New, Repeated };
    Reliability reliability(const Leg& leg, const Message& r) const;
    void send_prack(Time now, Leg& leg, const Message& r, const std::string& sdp, TransactionLayer& layer,
                    std::vector<Action>& out);
    void on_prack(Time now, const std::string& tx, const Message& r, Leg& leg, TransactionLayer& layer,
                  std::vector<Action>& out);

    bool outbound_;           // UAS leg is the browser
    MediaSdp& media_;
    Random random_;
    TrunkAccount account_;
    State state_ = State::Calling;
    int final_status_ = 0;
    Leg uas_;
    std::optional<Message> uas_invite_;
    std::string uas_tag_;
    std::vector<Leg> uac_;
    std::optional<std::size_t> winner_;
    bool provisional_sent_ = false;
    std::vector<std::string> other_tx_;   // BYEs and re-INVITEs we sent, so owns() knows them
    // A re-INVITE (hold, resume, codec change) relayed from one leg to the other (RFC 3261 §14).
    struct ReInvite {
        bool from_uas = false;          // which leg sent it to us
        std::string in_tx, out_tx;
        std::optional<Message> in;      // the request we answer
        std::uint32_t out_cseq = 0;
    };
    std::optional<ReInvite> reinvite_;
    SessionTimer timer_;
    bool trunk_allows_update_ = false;   // its Allow listed UPDATE: our refreshes are UPDATEs
    std::string refresh_tx_;             // our refresh in flight
    std::uint32_t refresh_cseq_ = 0;
    bool refresh_is_invite_ = false;
    std::string end_reason_;
    // RFC 3262 on the trunk leg. Inbound: the trunk asked for reliable provisionals (Require or
    // Supported: 100rel); ours is retransmitted at T1, doubling, until its PRACK, for 64*T1.
    bool uas_reliable_ = false;
    std::uint32_t rseq_ = 0;                 // the RSeq of our last reliable provisional
    struct Unacked {
        Message response;
        Time next, give_up;
        Duration interval;
    };
    std::optional<Unacked> unacked_;
    std::optional<std::uint32_t> trunk_rseq_;   // outbound: the trunk's last RSeq we PRACKed
    // Outbound late offer: the trunk offered in a reliable 18x and our answer went in the PRACK
    // (RFC 3262 §5); the browser's answer, sent with that 18x, is the one its 200 gets too.
    std::optional<std::string> early_answer_;
    NextTarget next_target_;
    TrunkRouter trunk_router_;
    std::size_t targets_tried_ = 1;
    std::string domain_;   // the realm: the browsers' domain, a transfer target's allowed host
    // Issue 14: the one transfer in progress. The browser's REFER is answered once the trunk
    // answered ours (202 also when we fall back); NOTIFYs report progress to the browser.
    struct Transfer {
        std::string in_tx;                 // the browser's REFER (answered when refer_answered)
        std::optional<Message> in;
        bool answered = false;
        std::string out_tx;                // our REFER to the trunk
        std::string number;                // the target, for the fallback call
        std::optional<Leg> fallback;       // our own call to the target, until it answers
        std::optional<TrunkRoute> route;   // inbound: the trunk it goes through (TrunkRouter)
        bool notified_ringing = false;
        Time give_up;
        int last_relayed = 0;              // the last trunk NOTIFY status the browser heard
        std::size_t relayed = 0;           // how many (kTransferNotifies)
    };
    std::optional<Transfer> transfer_;
    std::uint64_t notifies_dropped_ = 0;
    std::size_t pracks_sent_ = 0;
    mutable std::uint64_t reliable_dropped_ = 0;
    // Issue 14, the trunk's REFER in progress (call_refer_in.cpp): the forks ringing the named
    // user's browsers are uac_ legs from `first_fork` on; the one that answers becomes winner_.
    struct Takeover {
        std::uint32_t refer_cseq = 0;   // the trunk's REFER, named in our NOTIFYs' Event id
        std::string user;
        std::size_t first_fork = 0;
        bool notified_ringing = false;
        Time give_up;
    };
    std::optional<Takeover> takeover_;
    ReferLookup refer_lookup_;
    std::string taken_over_by_;
    void on_trunk_refer(Time now, const std::string& tx, const Message& r, TransactionLayer& layer,
                        std::vector<Action>& out);
    bool takeover_response(Time now, const std::string& tx, const Message& r, TransactionLayer& layer,
                           std::vector<Action>& out);
    bool takeover_failed(Time now, const std::string& tx, int status, TransactionLayer& layer, std::vector<Action>& out);
    void takeover_answered(Time now, std::size_t i, const Message& r, TransactionLayer& layer, std::vector<Action>& out);
    void end_takeover(Time now, int status, TransactionLayer& layer, std::vector<Action>& out);
    void drop_takeover(Time now, TransactionLayer& layer, std::vector<Action>& out);   // the call ends
    void notify_trunk(Time now, int status, TransactionLayer& layer, std::vector<Action>& out);
    // Issue 14, attended transfer (call_attended.cpp).
    AttendedJoin attended_;
    bool joined_ = false;
    void on_attended_refer(Time now, const std::string& tx, const Message& r, Leg& leg, const Replaces& replaces,
                           TransactionLayer& layer, std::vector<Action>& out);
    const Leg* browser_leg_const() const { return outbound_ ? &uas_ : (winner_ ? &uac_[*winner_] : nullptr); }
};

}  // namespace turnbridge::sip
