// SPDX-License-Identifier: Apache-2.0
#pragma once
// RFC 3261 §17 transactions, client and server, INVITE and non-INVITE, with RFC 6026's
// Accepted state. Timers run on the `now` the caller passes; retransmissions only on
// unreliable flows (UDP), none on WebSocket/TCP/TLS.
// Cost per message is O(log n) at worst whatever the table holds (issue 11): transactions are
// hashed by key (branch + sent-by + method), due timers sit in an ordered index, an ACK for a 2xx
// finds its INVITE by Call-ID + CSeq in a hash; only timers that are due are visited. The table
// is bounded (`max_server`): a new server transaction beyond it gets a stateless 503.
#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "turnbridge/sip/action.hpp"

namespace turnbridge::sip {

struct TimerConfig {
    Duration t1 = std::chrono::milliseconds(500);   // RFC 3261 §17.1.1.1: RTT estimate
    Duration t2 = std::chrono::seconds(4);          // longest retransmit interval for non-INVITE
    Duration t4 = std::chrono::seconds(5);          // how long a message lives in the network
};

// RFC 3261 §9.1: the CANCEL for a pending INVITE (same Via, Request-URI, Call-ID, From, To, CSeq number).
Message make_cancel(const Message& invite);
// RFC 3261 §17.1.1.3: the ACK of a non-2xx final response to `invite` (its To, with the tag).
Message make_failure_ack(const Message& invite, const Message& response);

class TransactionLayer {
public:
    // RFC 3261 §21.5.4: what a server transaction beyond the bound is answered.
    static constexpr std::size_t kDefaultMaxServer = 8192;
    explicit TransactionLayer(TimerConfig timers = {}, std::size_t max_server = kDefaultMaxServer)
        : timers_(timers), max_server_(max_server) {}
    void set_max_server(std::size_t n) { max_server_ = n; }

    // A message read from a flow. Requests that fail validation get a stateless 400 naming the
    // problem; malformed responses are dropped (RFC 3261 §8.1.3.3).
    void on_message(Time now, TransportId from, bool reliable, Message message, std::vector<Action>& out);

    // Starts a client transaction; `request` carries its top Via with a fresh branch. Returns the
    // transaction's key for matching ResponseIn. ACK for a 2xx is sent with send_stateless().
    std::string send_request(Time now, TransportId to, bool reliable, Message request, std::vector<Action>& out);
    void send_stateless(TransportId to, const Message& message, std::vector<Action>& out);
    // RFC 3261 §9.1: CANCEL a client INVITE; held back until a provisional response arrived.
    // Returns false if the INVITE already has a final response (nothing to cancel).
    bool cancel(Time now, const std::string& invite_tx, std::vector<Action>& out);
    // Forgets a client transaction without a word to its peer: no more retransmissions, and
    // whatever it answers later is a stray (RFC 3263 §4.3: a target that never answered is
    // given up for the next one).
    void abandon(const std::string& tx);

    // The TU's response on a server transaction (status 100-699). Ignored for unknown `tx`.
    void respond(Time now, const std::string& tx, Message response, std::vector<Action>& out);

    void on_timer(Time now, std::vector<Action>& out);
    // The flow `id` closed (a TCP/TLS connection failed or ended): its client transactions
    // still waiting for a final response end, their keys appended to `failed` for the TU
    // (RFC 3261 §17.1.4: a transport error; §8.1.3.1: the TU treats it as 503).
    void on_transport_closed(TransportId id, std::vector<std::string>& failed);
    std::optional<Time> next_wake() const;
    std::size_t size() const { return tx_.size(); }
    // Does any transaction use flow `id`? (A UDP flow in use must not be evicted.)
    bool uses(TransportId id) const { return per_flow_.contains(id); }
    // New server transactions refused with 503 because the table was full.
    std::uint64_t refused() const { return refused_; }
    // The INVITE a server transaction holds (for building responses), or nullptr.
    const Message* request_of(const std::string& tx) const;

private:
    enum class Kind { ClientInvite, ClientNonInvite, ServerInvite, ServerNonInvite };
    enum class State { Calling, Trying, Proceeding, Completed, Confirmed, Accepted, Terminated };
    struct Tx {
        Tx(Kind k, State s) : kind(k), state(s) {}
        Kind kind;
        State state;
        TransportId transport = 0;
        bool reliable = false;
        std::optional<Message> request;
        std::string request_bytes;    // client: what we retransmit
        std::string response_bytes;   // server: the latest response, retransmitted on request retransmissions
        std::string ack_bytes;        // client INVITE: ACK for a non-2xx, resent on each retransmitted final
        Time retransmit_at = Time::max();
        Duration interval{};
        Time timeout_at = Time::max();
        bool cancel_pending = false;
        bool acked = false;           // server INVITE: the ACK for our final response came
        Time armed = Time::max();     // its entry in wakes_ (Time::max(): none)
        std::string accepted_key;     // server INVITE in Accepted: its entry in accepted_
    };
    using Table = std::unordered_map<std::string, Tx>;

    void on_request(Time now, TransportId from, bool reliable, Message m, std::vector<Action>& out);
    void on_response(Time now, Message m, std::vector<Action>& out);
    void on_cancel(Time now, TransportId from, bool reliable, Message m, std::vector<Action>& out);
    bool on_ack(Time now, const Message& m);
    void fire(Time now, const std::string& key, Tx& t, std::vector<Action>& out);
    void send_cancel(Time now, Tx& invite, std::vector<Action>& out);
    void finish(std::vector<Action>& out);   // emit WakeAt
    Tx& add(const std::string& key, Tx t);    // insert (replacing any same key), indexed
    void drop(Table::iterator it);            // erase with its index entries
    void arm(const std::string& key, Tx& t);  // after timeout_at/retransmit_at changed
    static std::string server_key(const Message& m);
    static std::string client_key(const Message& m);

    TimerConfig timers_;
    std::size_t max_server_;
    std::size_t servers_ = 0;
    std::uint64_t refused_ = 0;
    Table tx_;
    std::set<std::pair<Time, std::string>> wakes_;            // (when, key), earliest first
    std::unordered_map<std::string, std::string> accepted_;   // "Call-ID|CSeq" -> Accepted server INVITE
    std::unordered_map<TransportId, std::uint32_t> per_flow_; // transactions per flow
};

}  // namespace turnbridge::sip
