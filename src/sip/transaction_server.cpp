// SPDX-License-Identifier: Apache-2.0
// Server transactions (RFC 3261 §17.2, RFC 6026 Accepted state) and CANCEL (§9.2).
#include "turnbridge/sip/transaction.hpp"

namespace turnbridge::sip {

std::string TransactionLayer::server_key(const Message& m) {
    // RFC 3261 §17.2.3: branch, sent-by and method, with ACK matching its INVITE. Requests
    // without the magic cookie (RFC 2543 peers) fall back to the dialog-ish identifiers.
    std::string method = m.is_request() ? m.method() : m.cseq_method();
    if (method == "ACK") method = "INVITE";
    const auto branch = m.top_via_branch();
    if (branch.rfind(kMagicCookie, 0) == 0) return "s|" + branch + "|" + m.top_via_sent_by() + "|" + method;
    return "s2543|" + m.call_id() + "|" + std::to_string(m.cseq()) + "|" + m.from_tag() + "|" + m.top_via_sent_by() + "|" +
           method;
}

void TransactionLayer::on_request(Time now, TransportId from, bool reliable, Message m, std::vector<Action>& out) {
    const auto key = server_key(m);
    if (auto it = tx_.find(key); it != tx_.end()) {
        // A retransmission: §17.2.1 / §17.2.2 resend the latest response, if any; Accepted absorbs.
        auto& t = it->second;
        if (!t.response_bytes.empty() && (t.state == State::Proceeding || t.state == State::Completed))
            out.push_back(Send{t.transport, t.response_bytes});
        return;
    }
    if (servers_ >= max_server_) {
        // Bounded table (issue 11): no state for it; RFC 3261 §21.5.4 says try again later.
        ++refused_;
        auto busy = Message::response(m, 503, "Too Many Transactions", "tb-busy");
        busy.add_header("Retry-After", "5");
        out.push_back(Send{from, busy.serialize()});
        return;
    }
    Tx t{m.method() == "INVITE" ? Kind::ServerInvite : Kind::ServerNonInvite, State::Trying};
    t.transport = from;
    t.reliable = reliable;
    // A non-INVITE request the TU never answers must not hold its entry for ever: it ends
    // quietly after 64*T1, when the client's Timer F has given up on it anyway (§17.1.2.2).
    if (t.kind == Kind::ServerNonInvite) t.timeout_at = now + 64 * timers_.t1;
    if (t.kind == Kind::ServerInvite) {
        // §17.2.1: 100 Trying at once rather than after 200 ms: the B2BUA answers only after the trunk does.
        t.state = State::Proceeding;
        t.response_bytes = Message::response(m, 100).serialize();
        out.push_back(Send{from, t.response_bytes});
        t.request.emplace(m.clone());
    }
    arm(key, add(key, std::move(t)));
    out.push_back(RequestIn{key, from, std::move(m)});
}

void TransactionLayer::on_cancel(Time now, TransportId from, bool reliable, Message m, std::vector<Action>& out) {
    const auto key = server_key(m);
    if (auto it = tx_.find(key); it != tx_.end()) {
        if (!it->second.response_bytes.empty()) out.push_back(Send{it->second.transport, it->second.response_bytes});
        return;
    }
    // §9.2: the CANCEL matches the INVITE whose transaction has the same branch and sent-by.
    const auto invite_key = key.substr(0, key.size() - 6) + "INVITE";
    auto invite = tx_.find(invite_key);
    const bool found = invite != tx_.end() && invite->second.kind == Kind::ServerInvite;
    const bool pending = found && invite->second.state == State::Proceeding;
    const std::string to_tag = found ? invite->second.request->to_tag() : "tb-none";
    if (servers_ >= max_server_) {
        ++refused_;
        out.push_back(Send{from, Message::response(m, 503, "Too Many Transactions", to_tag).serialize()});
        return;
    }
    Tx t{Kind::ServerNonInvite, State::Trying};
    t.transport = from;
    t.reliable = reliable;
    add(key, std::move(t));  // may rehash: `invite` is not used past here
    respond(now, key, Message::response(m, found ? 200 : 481, {}, to_tag), out);
    if (pending) out.push_back(CancelIn{invite_key});
}

bool TransactionLayer::on_ack(Time now, const Message& m) {
    if (auto it = tx_.find(server_key(m)); it != tx_.end() && it->second.kind == Kind::ServerInvite) {
        auto& t = it->second;
        if (t.state == State::Completed) {
            // §17.2.1: Confirmed; Timer I absorbs further ACKs, zero on reliable flows.
            t.state = State::Confirmed;
            t.acked = true;
            t.retransmit_at = Time::max();
            t.timeout_at = now + (t.reliable ? Duration::zero() : timers_.t4);
            arm(it->first, t);
        }
        if (t.state == State::Completed || t.state == State::Confirmed) return true;
    }
    // An ACK for a 2xx has its own branch: find the Accepted INVITE by Call-ID and CSeq
    // number (hashed) so its 2xx retransmissions stop (§13.3.1.4); the TU still gets the ACK.
    if (auto a = accepted_.find(m.call_id() + "|" + std::to_string(m.cseq())); a != accepted_.end()) {
        if (auto it = tx_.find(a->second); it != tx_.end() && it->second.state == State::Accepted) {
            it->second.acked = true;
            it->second.retransmit_at = Time::max();
            arm(it->first, it->second);
        }
    }
    return false;
}

void TransactionLayer::respond(Time now, const std::string& tx, Message response, std::vector<Action>& out) {
    auto it = tx_.find(tx);
    if (it == tx_.end()) return finish(out);
    auto& t = it->second;
    const int status = response.status();
    const bool open = t.state == State::Trying || t.state == State::Proceeding;
    if (!open) return finish(out);  // a final response was already sent
    t.response_bytes = response.serialize();
    out.push_back(Send{t.transport, t.response_bytes});
    if (status < 200) {
        t.state = State::Proceeding;
    } else if (t.kind == Kind::ServerNonInvite) {
        t.state = State::Completed;
        t.timeout_at = now + (t.reliable ? Duration::zero() : 64 * timers_.t1);  // Timer J
    } else {
        // 2xx: Accepted (RFC 6026 §7.1), Timer L; the UAS core's 2xx retransmission lives here too.
        // 3xx-6xx: Completed, Timer H for the ACK, Timer G retransmits on UDP.
        t.state = status < 300 ? State::Accepted : State::Completed;
        t.timeout_at = now + 64 * timers_.t1;
        if (!t.reliable) {
            t.interval = timers_.t1;
            t.retransmit_at = now + t.interval;
        }
        if (t.state == State::Accepted && t.request) {
            t.accepted_key = t.request->call_id() + "|" + std::to_string(t.request->cseq());
            accepted_.insert_or_assign(t.accepted_key, tx);
        }
    }
    arm(tx, t);
    finish(out);
}

}  // namespace turnbridge::sip
