// SPDX-License-Identifier: Apache-2.0
// The transaction layer's dispatch and timers, and the client side (RFC 3261 §17.1, RFC 6026).
// The server side is in transaction_server.cpp.
#include "turnbridge/sip/transaction.hpp"

#include <algorithm>

namespace turnbridge::sip {
namespace {

// RFC 3261 §17.1.1.3 / §9.1: ACK and CANCEL copy these from the INVITE; only the method, the
// CSeq method and (for ACK) the To header differ.
Message copy_for(const Message& invite, std::string_view method) {
    auto r = Message::request(method, invite.request_uri());
    // Matching uses the Via branch, so an unprintable URI (osip's round trip) still cancels.
    auto m = r ? std::move(*r) : std::move(*Message::request(method, "sip:invalid.invalid"));
    m.push_via(invite.top_via_transport(), invite.top_via_sent_by(), invite.top_via_branch());
    m.set_from(invite.from_header());
    m.set_to(invite.to_header());
    m.set_call_id(invite.call_id());
    m.set_cseq(invite.cseq(), method);
    for (const auto& r : invite.routes()) m.add_route(r);
    m.set_max_forwards(70);
    return m;
}

}  // namespace

Message make_cancel(const Message& invite) { return copy_for(invite, "CANCEL"); }

Message make_failure_ack(const Message& invite, const Message& response) {
    auto ack = copy_for(invite, "ACK");
    ack.set_to(response.to_header());
    return ack;
}

std::string TransactionLayer::client_key(const Message& m) {
    // RFC 3261 §17.1.3: the branch of the top Via and the CSeq method.
    return "c|" + m.top_via_branch() + "|" + m.cseq_method();
}

void TransactionLayer::on_message(Time now, TransportId from, bool reliable, Message m, std::vector<Action>& out) {
    if (auto err = m.validate()) {
        // RFC 3261 §8.2.2 / §16.3: answer what we can answer; an ACK or a response is dropped.
        if (m.is_request() && m.method() != "ACK" && m.via_count() > 0) {
            // Only a 400 that is itself well-formed goes out (garbage headers make garbage replies).
            auto bytes = Message::response(m, code(err->code), err->what, "tb-error").serialize();
            auto check = Message::parse(bytes);
            if (check && !check->validate()) out.push_back(Send{from, std::move(bytes)});
        }
        return finish(out);
    }
    if (!m.is_request()) on_response(now, std::move(m), out);
    else if (m.method() == "CANCEL") on_cancel(now, from, reliable, std::move(m), out);
    else if (m.method() == "ACK") {
        if (!on_ack(now, m)) out.push_back(RequestIn{"", from, std::move(m)});  // ACK for a 2xx: the dialog's
    } else on_request(now, from, reliable, std::move(m), out);
    finish(out);
}

std::string TransactionLayer::send_request(Time now, TransportId to, bool reliable, Message request,
                                           std::vector<Action>& out) {
    const auto key = client_key(request);
    Tx t{request.method() == "INVITE" ? Kind::ClientInvite : Kind::ClientNonInvite, State::Calling};
    if (t.kind == Kind::ClientNonInvite) t.state = State::Trying;
    t.transport = to;
    t.reliable = reliable;
    t.request_bytes = request.serialize();
    // Timer B / F: 64*T1 for a final response; Timer A / E: retransmit on UDP from T1.
    t.timeout_at = now + 64 * timers_.t1;
    if (!reliable) {
        t.interval = timers_.t1;
        t.retransmit_at = now + t.interval;
    }
    out.push_back(Send{to, t.request_bytes});
    t.request.emplace(std::move(request));
    arm(key, add(key, std::move(t)));
    finish(out);
    return key;
}

void TransactionLayer::send_stateless(TransportId to, const Message& message, std::vector<Action>& out) {
    out.push_back(Send{to, message.serialize()});
}

bool TransactionLayer::cancel(Time now, const std::string& invite_tx, std::vector<Action>& out) {
    auto it = tx_.find(invite_tx);
    if (it == tx_.end() || it->second.kind != Kind::ClientInvite) return false;
    auto& t = it->second;
    if (t.state == State::Calling) {
        t.cancel_pending = true;  // RFC 3261 §9.1: not before a provisional response
        return true;
    }
    if (t.state != State::Proceeding) return false;
    send_cancel(now, t, out);
    return true;
}

void TransactionLayer::abandon(const std::string& tx) {
    if (auto it = tx_.find(tx); it != tx_.end() && it->second.kind != Kind::ServerInvite &&
                                it->second.kind != Kind::ServerNonInvite)
        drop(it);
}

void TransactionLayer::send_cancel(Time now, Tx& invite, std::vector<Action>& out) {
    invite.cancel_pending = false;
    send_request(now, invite.transport, invite.reliable, make_cancel(*invite.request), out);
}

void TransactionLayer::on_response(Time now, Message m, std::vector<Action>& out) {
    const auto key = client_key(m);
    auto it = tx_.find(key);
    if (it == tx_.end()) {
        out.push_back(ResponseIn{"", std::move(m)});  // §18.1.2: stray responses go to the core
        return;
    }
    auto& t = it->second;
    const int status = m.status();
    const bool live = t.state == State::Calling || t.state == State::Trying || t.state == State::Proceeding;
    if (t.kind == Kind::ClientInvite) {
        if (status < 200 && live) {
            t.state = State::Proceeding;  // §17.1.1.2: Timers A and B stop
            t.retransmit_at = t.timeout_at = Time::max();
            out.push_back(ResponseIn{key, std::move(m)});
            if (t.cancel_pending) send_cancel(now, t, out);
        } else if (status >= 200 && status < 300 && (live || t.state == State::Accepted)) {
            // RFC 6026 §8.4: Accepted absorbs nothing; every 2xx goes to the TU, which ACKs it.
            if (live) {
                t.state = State::Accepted;
                t.retransmit_at = Time::max();
                t.timeout_at = now + 64 * timers_.t1;  // Timer M
            }
            out.push_back(ResponseIn{key, std::move(m)});
        } else if (status >= 300 && live) {
            t.ack_bytes = make_failure_ack(*t.request, m).serialize();
            out.push_back(Send{t.transport, t.ack_bytes});
            t.state = State::Completed;
            t.retransmit_at = Time::max();
            t.timeout_at = now + (t.reliable ? Duration::zero() : Duration(std::chrono::seconds(32)));  // Timer D
            out.push_back(ResponseIn{key, std::move(m)});
        } else if (status >= 300 && t.state == State::Completed) {
            out.push_back(Send{t.transport, t.ack_bytes});  // a retransmitted final: ACK again
        }
        arm(key, t);
        return;
    }
    if (!live) return;  // §17.1.2.2: Completed absorbs retransmissions
    if (status < 200) {
        t.state = State::Proceeding;
    } else {
        t.state = State::Completed;
        t.retransmit_at = Time::max();
        t.timeout_at = now + (t.reliable ? Duration::zero() : timers_.t4);  // Timer K
    }
    arm(key, t);
    out.push_back(ResponseIn{key, std::move(m)});
}

void TransactionLayer::on_timer(Time now, std::vector<Action>& out) {
    // Only the due timers, earliest first: the cost does not grow with the table.
    while (!wakes_.empty() && wakes_.begin()->first <= now) {
        const std::string key = wakes_.begin()->second;
        wakes_.erase(wakes_.begin());
        auto it = tx_.find(key);
        if (it == tx_.end()) continue;
        Tx& t = it->second;
        t.armed = Time::max();
        fire(now, key, t, out);
        if (t.state == State::Terminated) drop(it);
        else arm(key, t);
    }
    finish(out);
}

void TransactionLayer::fire(Time now, const std::string& key, Tx& t, std::vector<Action>& out) {
    const bool client = t.kind == Kind::ClientInvite || t.kind == Kind::ClientNonInvite;
    if (t.timeout_at <= now) {
        // B, F: no final response. H: no ACK for our error. L without ACK: no ACK for our 2xx.
        // D, K, I, J, M and L after an ACK just end the transaction quietly.
        const bool no_answer = t.state == State::Calling || t.state == State::Trying ||
                               (t.state == State::Proceeding && t.kind == Kind::ClientNonInvite) ||
                               (t.kind == Kind::ServerInvite && t.state == State::Completed) ||
                               (t.kind == Kind::ServerInvite && t.state == State::Accepted && !t.acked);
        if (no_answer) out.push_back(TransactionTimeout{key, client});
        t.state = State::Terminated;
        return;
    }
    // Timer A doubles without bound; E, G and the 2xx retransmission cap at T2 (§17.1.2.2,
    // §17.2.1, §13.3.1.4); E in Proceeding fires every T2.
    out.push_back(Send{t.transport, client ? t.request_bytes : t.response_bytes});
    if (t.kind == Kind::ClientInvite) t.interval *= 2;
    else if (t.state == State::Proceeding) t.interval = timers_.t2;
    else t.interval = std::min<Duration>(2 * t.interval, timers_.t2);
    t.retransmit_at = now + t.interval;
}

void TransactionLayer::on_transport_closed(TransportId id, std::vector<std::string>& failed) {
    for (auto it = tx_.begin(); it != tx_.end();) {
        const Tx& t = it->second;
        const bool client = t.kind == Kind::ClientInvite || t.kind == Kind::ClientNonInvite;
        const bool waiting = t.state == State::Calling || t.state == State::Trying || t.state == State::Proceeding;
        if (t.transport != id || !client || !waiting) {
            ++it;
            continue;
        }
        failed.push_back(it->first);
        const auto next = std::next(it);
        drop(it);
        it = next;
    }
}

TransactionLayer::Tx& TransactionLayer::add(const std::string& key, Tx t) {
    if (auto old = tx_.find(key); old != tx_.end()) drop(old);
    auto [it, inserted] = tx_.emplace(key, std::move(t));
    ++per_flow_[it->second.transport];
    if (it->second.kind == Kind::ServerInvite || it->second.kind == Kind::ServerNonInvite) ++servers_;
    return it->second;
}

void TransactionLayer::drop(Table::iterator it) {
    Tx& t = it->second;
    if (t.armed != Time::max()) wakes_.erase({t.armed, it->first});
    if (!t.accepted_key.empty()) {
        if (auto a = accepted_.find(t.accepted_key); a != accepted_.end() && a->second == it->first) accepted_.erase(a);
    }
    if (auto f = per_flow_.find(t.transport); f != per_flow_.end() && --f->second == 0) per_flow_.erase(f);
    if (t.kind == Kind::ServerInvite || t.kind == Kind::ServerNonInvite) --servers_;
    tx_.erase(it);
}

void TransactionLayer::arm(const std::string& key, Tx& t) {
    const Time when = std::min(t.timeout_at, t.retransmit_at);
    if (when == t.armed) return;
    if (t.armed != Time::max()) wakes_.erase({t.armed, key});
    if (when != Time::max()) wakes_.emplace(when, key);
    t.armed = when;
}

void TransactionLayer::finish(std::vector<Action>& out) {
    if (auto w = next_wake()) out.push_back(WakeAt{*w});
}

std::optional<Time> TransactionLayer::next_wake() const {
    if (wakes_.empty()) return std::nullopt;
    return wakes_.begin()->first;
}

const Message* TransactionLayer::request_of(const std::string& tx) const {
    auto it = tx_.find(tx);
    return it != tx_.end() && it->second.request ? &*it->second.request : nullptr;
}

}  // namespace turnbridge::sip
