// SPDX-License-Identifier: Apache-2.0
// RFC 3261 §17 transactions (with RFC 6026's Accepted state) and CANCEL (§9), stepped on a fake clock.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "samples.hpp"
#include "turnbridge/sip/transaction.hpp"

using namespace turnbridge::sip;
using namespace std::chrono_literals;

namespace {

constexpr TransportId kTrunk = 7;

std::string request(const std::string& method, const std::string& branch, std::uint32_t cseq = 1,
                    const std::string& to_tag = "", const std::string& cseq_method = "") {
    return method + " sip:+15550123@127.0.0.1:5070 SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=" + branch + "\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:gw@127.0.0.1>;tag=fromtag\r\n"
           "To: <sip:+15550123@127.0.0.1>" + (to_tag.empty() ? "" : ";tag=" + to_tag) + "\r\n"
           "Call-ID: call-1@127.0.0.1\r\n"
           "CSeq: " + std::to_string(cseq) + " " + (cseq_method.empty() ? method : cseq_method) + "\r\n"
           "Content-Length: 0\r\n\r\n";
}

Message msg(const std::string& wire) {
    auto m = Message::parse(wire);
    REQUIRE(m);
    return std::move(*m);
}

std::string response_to(const std::string& req, int status, const std::string& to_tag = "callee") {
    return Message::response(msg(req), status, {}, to_tag).serialize();
}

struct Bench {
    TransactionLayer layer;
    Time now = Time{} + 100h;
    std::vector<Action> out;

    std::vector<Action> take() { return std::exchange(out, {}); }
    void receive(const std::string& wire, bool reliable = false) { layer.on_message(now, kTrunk, reliable, msg(wire), out); }
    // Advance to `t` after the start, running every timer on the way, as the net layer would.
    void run_until(Duration d, Time start) {
        const Time end = start + d;
        for (int guard = 0; guard < 1000; ++guard) {
            auto w = layer.next_wake();
            if (!w || *w > end) break;
            now = *w;
            layer.on_timer(now, out);
        }
        now = end;
    }
};

template <class T>
std::vector<const T*> all(const std::vector<Action>& a) {
    std::vector<const T*> v;
    for (const auto& x : a)
        if (auto* p = std::get_if<T>(&x)) v.push_back(p);
    return v;
}

std::vector<std::string> sent(const std::vector<Action>& a) {
    std::vector<std::string> v;
    for (const auto& x : a)
        if (auto* s = std::get_if<Send>(&x)) v.push_back(s->bytes);
    return v;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find("\r\n")); }

// Time offsets (from the start) at which `layer` sent something, stepping timers up to `until`.
std::vector<Duration> send_times(Bench& b, Duration until) {
    std::vector<Duration> times;
    const Time start = b.now;
    b.take();
    for (int guard = 0; guard < 1000; ++guard) {
        auto w = b.layer.next_wake();
        if (!w || *w > start + until) break;
        b.now = *w;
        b.layer.on_timer(b.now, b.out);
        for (std::size_t i = 0; i < sent(b.out).size(); ++i) times.push_back(b.now - start);
        b.take();
    }
    return times;
}

}  // namespace

TEST_CASE("client INVITE over UDP: Timer A doubles from T1, Timer B times out at 64*T1 (RFC 3261 §17.1.1.2)") {
    Bench b;
    const auto inv = request("INVITE", "z9hG4bKa1");
    const auto tx = b.layer.send_request(b.now, kTrunk, false, msg(inv), b.out);
    REQUIRE(sent(b.out).size() == 1);
    const Time start = b.now;
    std::vector<Duration> times;
    std::vector<TransactionTimeout> timeouts;
    for (int guard = 0; guard < 100 && b.layer.next_wake(); ++guard) {
        b.take();
        b.now = *b.layer.next_wake();
        b.layer.on_timer(b.now, b.out);
        for (std::size_t i = 0; i < sent(b.out).size(); ++i) times.push_back(b.now - start);
        for (auto* t : all<TransactionTimeout>(b.out)) timeouts.push_back(*t);
    }
    CHECK(times == std::vector<Duration>{500ms, 1500ms, 3500ms, 7500ms, 15500ms, 31500ms});
    REQUIRE(timeouts.size() == 1);
    CHECK(timeouts[0].tx == tx);
    CHECK(timeouts[0].client);
    CHECK(b.now - start == 32s);
    CHECK(b.layer.size() == 0);
}

TEST_CASE("client INVITE over a reliable flow: no retransmission, Timer B still runs") {
    Bench b;
    b.layer.send_request(b.now, kTrunk, true, msg(request("INVITE", "z9hG4bKa2")), b.out);
    const Time start = b.now;
    auto times = send_times(b, 40s);
    CHECK(times.empty());
    CHECK(b.now - start == 32s);
    CHECK(b.layer.size() == 0);
}

TEST_CASE("client INVITE: 180 stops retransmission, 486 is ACKed by the transaction (RFC 3261 §17.1.1.3)") {
    Bench b;
    const auto inv = request("INVITE", "z9hG4bKa3");
    const auto tx = b.layer.send_request(b.now, kTrunk, false, msg(inv), b.out);
    b.take();
    b.receive(response_to(inv, 180));
    auto ev = b.take();
    REQUIRE(all<ResponseIn>(ev).size() == 1);
    CHECK(all<ResponseIn>(ev)[0]->tx == tx);
    CHECK(send_times(b, 20s).empty());  // Proceeding: no Timer A, no Timer B

    b.receive(response_to(inv, 486));
    ev = b.take();
    const auto acks = sent(ev);
    REQUIRE(acks.size() == 1);
    auto ack = msg(acks[0]);
    CHECK(ack.method() == "ACK");
    CHECK(ack.request_uri() == "sip:+15550123@127.0.0.1:5070");
    CHECK(ack.top_via_branch() == "z9hG4bKa3");
    CHECK(ack.via_count() == 1);
    CHECK(ack.to_tag() == "callee");
    CHECK(ack.from_tag() == "fromtag");
    CHECK(ack.cseq() == 1);
    CHECK(ack.cseq_method() == "ACK");
    CHECK(ack.call_id() == "call-1@127.0.0.1");
    REQUIRE(all<ResponseIn>(ev).size() == 1);
    CHECK(all<ResponseIn>(ev)[0]->response.status() == 486);

    // A retransmitted 486 is ACKed again but not reported again.
    b.receive(response_to(inv, 486));
    ev = b.take();
    CHECK(sent(ev).size() == 1);
    CHECK(all<ResponseIn>(ev).empty());
    // Timer D: 32 s on UDP.
    const Time start = b.now;
    send_times(b, 60s);
    CHECK(b.now - start == 32s);
    CHECK(b.layer.size() == 0);
}

TEST_CASE("client INVITE: every 2xx reaches the TU, nothing is ACKed by the transaction (RFC 6026 §8.4)") {
    Bench b;
    const auto inv = request("INVITE", "z9hG4bKa4");
    const auto tx = b.layer.send_request(b.now, kTrunk, false, msg(inv), b.out);
    b.take();
    b.receive(response_to(inv, 200));
    auto ev = b.take();
    CHECK(sent(ev).empty());
    REQUIRE(all<ResponseIn>(ev).size() == 1);
    b.receive(response_to(inv, 200));
    ev = b.take();
    REQUIRE(all<ResponseIn>(ev).size() == 1);
    CHECK(all<ResponseIn>(ev)[0]->tx == tx);
    CHECK(all<TransactionTimeout>(ev).empty());
    const Time start = b.now;
    send_times(b, 60s);
    CHECK(b.now - start == 32s);  // Timer M
    CHECK(b.layer.size() == 0);
}

TEST_CASE("client non-INVITE over UDP: Timer E caps at T2, Timer F at 64*T1, Timer K after the final (RFC 3261 §17.1.2.2)") {
    Bench b;
    const auto reg = request("REGISTER", "z9hG4bKr1");
    b.layer.send_request(b.now, kTrunk, false, msg(reg), b.out);
    auto times = send_times(b, 40s);
    CHECK(times == std::vector<Duration>{500ms, 1500ms, 3500ms, 7500ms, 11500ms, 15500ms, 19500ms, 23500ms, 27500ms,
                                         31500ms});
    CHECK(b.layer.size() == 0);

    SUBCASE("after a 1xx, retransmissions every T2; a final ends them and Timer K runs T4") {
        Bench c;
        c.layer.send_request(c.now, kTrunk, false, msg(reg), c.out);
        c.receive(response_to(reg, 100));
        auto t2 = send_times(c, 9s);
        CHECK(t2 == std::vector<Duration>{500ms, 4500ms, 8500ms});
        c.receive(response_to(reg, 200));
        REQUIRE(all<ResponseIn>(c.take()).size() == 1);
        c.receive(response_to(reg, 200));  // absorbed in Completed
        CHECK(all<ResponseIn>(c.take()).empty());
        const Time start = c.now;
        CHECK(send_times(c, 10s).empty());
        CHECK(c.now - start == 5s);
        CHECK(c.layer.size() == 0);
    }
}

TEST_CASE("server INVITE: 100 at once, retransmissions answered from the transaction (RFC 3261 §17.2.1)") {
    Bench b;
    const auto inv = request("INVITE", "z9hG4bKs1");
    b.receive(inv);
    auto ev = b.take();
    REQUIRE(sent(ev).size() == 1);
    CHECK(first_line(sent(ev)[0]) == "SIP/2.0 100 Trying");
    auto reqs = all<RequestIn>(ev);
    REQUIRE(reqs.size() == 1);
    const auto tx = reqs[0]->tx;
    CHECK(reqs[0]->transport == kTrunk);
    CHECK(reqs[0]->request.method() == "INVITE");

    b.receive(inv);  // retransmission
    ev = b.take();
    CHECK(all<RequestIn>(ev).empty());
    REQUIRE(sent(ev).size() == 1);
    CHECK(first_line(sent(ev)[0]) == "SIP/2.0 100 Trying");

    b.layer.respond(b.now, tx, Message::response(msg(inv), 180, {}, "uas"), b.out);
    b.take();
    b.receive(inv);
    CHECK(first_line(sent(b.take()).at(0)) == "SIP/2.0 180 Ringing");

    SUBCASE("a final error is retransmitted by Timer G until the ACK; Timer I then ends it") {
        b.layer.respond(b.now, tx, Message::response(msg(inv), 486, {}, "uas"), b.out);
        CHECK(first_line(sent(b.take()).at(0)) == "SIP/2.0 486 Busy Here");
        auto g = send_times(b, 8s);
        CHECK(g == std::vector<Duration>{500ms, 1500ms, 3500ms, 7500ms});
        b.receive(request("ACK", "z9hG4bKs1", 1, "uas"));
        ev = b.take();
        CHECK(all<RequestIn>(ev).empty());  // absorbed: the ACK of a non-2xx belongs to the transaction
        const Time start = b.now;
        CHECK(send_times(b, 10s).empty());
        CHECK(b.now - start == 5s);
        CHECK(b.layer.size() == 0);
    }
    SUBCASE("no ACK: Timer H reports a timeout at 64*T1") {
        b.layer.respond(b.now, tx, Message::response(msg(inv), 486, {}, "uas"), b.out);
        const Time start = b.now;
        b.take();
        std::vector<TransactionTimeout> timeouts;
        for (int guard = 0; guard < 100 && b.layer.next_wake(); ++guard) {
            b.now = *b.layer.next_wake();
            b.layer.on_timer(b.now, b.out);
            const auto fired = b.take();
            for (auto* t : all<TransactionTimeout>(fired)) timeouts.push_back(*t);
        }
        REQUIRE(timeouts.size() == 1);
        CHECK_FALSE(timeouts[0].client);
        CHECK(b.now - start == 32s);
    }
    SUBCASE("a 2xx is retransmitted until the ACK, which goes to the TU (RFC 3261 §13.3.1.4)") {
        b.layer.respond(b.now, tx, Message::response(msg(inv), 200, {}, "uas"), b.out);
        auto r = send_times(b, 4s);
        CHECK(r == std::vector<Duration>{500ms, 1500ms, 3500ms});
        b.receive(request("ACK", "z9hG4bKdifferent", 1, "uas"));
        ev = b.take();
        auto acks = all<RequestIn>(ev);
        REQUIRE(acks.size() == 1);
        CHECK(acks[0]->tx.empty());
        CHECK(acks[0]->request.method() == "ACK");
        b.receive(inv);  // Accepted absorbs a late INVITE retransmission
        CHECK(sent(b.take()).empty());
        CHECK(send_times(b, 40s).empty());
        CHECK(b.layer.size() == 0);
    }
}

TEST_CASE("a CANCEL for a pending INVITE gets 200 and tells the TU; an unknown one gets 481 (RFC 3261 §9.2)") {
    Bench b;
    const auto inv = request("INVITE", "z9hG4bKc1");
    b.receive(inv);
    const auto tx = all<RequestIn>(b.take()).at(0)->tx;
    b.receive(request("CANCEL", "z9hG4bKc1"));
    auto ev = b.take();
    REQUIRE(sent(ev).size() == 1);
    auto ok = msg(sent(ev)[0]);
    CHECK(ok.status() == 200);
    CHECK(ok.cseq_method() == "CANCEL");
    auto cancels = all<CancelIn>(ev);
    REQUIRE(cancels.size() == 1);
    CHECK(cancels[0]->invite_tx == tx);
    CHECK(all<RequestIn>(ev).empty());

    b.receive(request("CANCEL", "z9hG4bKnomatch"));
    ev = b.take();
    CHECK(first_line(sent(ev).at(0)) == "SIP/2.0 481 Call/Transaction Does Not Exist");
    CHECK(all<CancelIn>(ev).empty());
}

TEST_CASE("a client CANCEL waits for a provisional response (RFC 3261 §9.1)") {
    Bench b;
    const auto inv = request("INVITE", "z9hG4bKc2");
    const auto tx = b.layer.send_request(b.now, kTrunk, true, msg(inv), b.out);
    b.take();
    CHECK(b.layer.cancel(b.now, tx, b.out));
    CHECK(sent(b.take()).empty());
    b.receive(response_to(inv, 183));
    auto ev = b.take();
    REQUIRE(sent(ev).size() == 1);
    auto cancel = msg(sent(ev)[0]);
    CHECK(cancel.method() == "CANCEL");
    CHECK(cancel.top_via_branch() == "z9hG4bKc2");
    CHECK(cancel.cseq() == 1);
    CHECK(cancel.cseq_method() == "CANCEL");
    CHECK(cancel.call_id() == "call-1@127.0.0.1");
    CHECK(cancel.to_tag().empty());
    b.receive(response_to(inv, 487));
    ev = b.take();
    CHECK(all<ResponseIn>(ev).at(0)->response.status() == 487);
    CHECK_FALSE(b.layer.cancel(b.now, tx, b.out));  // already final
}

TEST_CASE("server non-INVITE: silent until the TU answers, then the answer is repeated (RFC 3261 §17.2.2)") {
    Bench b;
    const auto bye = request("BYE", "z9hG4bKb1", 2, "uas");
    b.receive(bye);
    const auto tx = all<RequestIn>(b.take()).at(0)->tx;
    b.receive(bye);
    CHECK(b.take().size() <= 1);  // at most a WakeAt; no Send, no RequestIn
    b.layer.respond(b.now, tx, Message::response(msg(bye), 200), b.out);
    CHECK(first_line(sent(b.take()).at(0)) == "SIP/2.0 200 OK");
    b.receive(bye);
    CHECK(first_line(sent(b.take()).at(0)) == "SIP/2.0 200 OK");
    const Time start = b.now;
    send_times(b, 60s);
    CHECK(b.now - start == 32s);  // Timer J
    CHECK(b.layer.size() == 0);
}

TEST_CASE("an invalid request gets a stateless 400 naming the problem; an unanswerable one is dropped") {
    Bench b;
    b.receive(request("BYE", "z9hG4bKv1", 2, "", "INVITE"));
    auto ev = b.take();
    REQUIRE(sent(ev).size() == 1);
    CHECK(first_line(sent(ev)[0]) == "SIP/2.0 400 CSeq method differs from request method");
    CHECK(all<RequestIn>(ev).empty());
    CHECK(b.layer.size() == 0);

    std::string no_via = request("BYE", "z9hG4bKv2");
    no_via.erase(no_via.find("Via:"), no_via.find("\r\n", no_via.find("Via:")) + 2 - no_via.find("Via:"));
    b.receive(no_via);
    CHECK(b.take().empty());
}

TEST_CASE("a response matching no transaction goes to the TU untagged (RFC 3261 §18.1.2)") {
    Bench b;
    b.receive(response_to(request("INVITE", "z9hG4bKgone"), 200));
    auto ev = b.take();
    REQUIRE(all<ResponseIn>(ev).size() == 1);
    CHECK(all<ResponseIn>(ev)[0]->tx.empty());
}

TEST_CASE("make_cancel copies the INVITE's identifiers (RFC 3261 §9.1)") {
    auto invite = msg(samples::jssip_invite());
    auto c = make_cancel(invite);
    auto back = msg(c.serialize());
    CHECK(back.method() == "CANCEL");
    CHECK(back.request_uri() == invite.request_uri());
    CHECK(back.top_via_branch() == invite.top_via_branch());
    CHECK(back.from_tag() == invite.from_tag());
    CHECK(back.call_id() == invite.call_id());
    CHECK(back.cseq() == invite.cseq());
    CHECK(back.body().empty());
}

TEST_CASE("the server transaction table is bounded: beyond it a new request gets a stateless 503 and leaves no state") {
    TransactionLayer layer({}, 16);
    Time now = Time{} + 100h;
    std::vector<Action> out;
    for (int i = 0; i < 16; ++i) layer.on_message(now, kTrunk, false, msg(request("INVITE", "z9hG4bKfill" + std::to_string(i))), out);
    CHECK(layer.size() == 16);
    out.clear();
    layer.on_message(now, kTrunk, false, msg(request("OPTIONS", "z9hG4bKover")), out);
    CHECK(all<RequestIn>(out).empty());
    REQUIRE(sent(out).size() == 1);
    CHECK(first_line(sent(out)[0]) == "SIP/2.0 503 Too Many Transactions");
    CHECK(layer.size() == 16);
    CHECK(layer.refused() == 1);
    // Client transactions (ours, bounded by the calls that make them) are not refused.
    layer.send_request(now, kTrunk, false, msg(request("INVITE", "z9hG4bKours")), out);
    CHECK(layer.size() == 17);
}

TEST_CASE("a timer visits only the transactions that are due, however many are live (issue 11)") {
    Bench b;
    // 5,000 server INVITEs over UDP, each answered 486: Timer G retransmits from T1.
    for (int i = 0; i < 5000; ++i) {
        const auto inv = request("INVITE", "z9hG4bKmany" + std::to_string(i), 1, "", "");
        b.receive(inv);
        const auto tx = all<RequestIn>(b.take()).at(0)->tx;
        b.layer.respond(b.now, tx, Message::response(msg(inv), 486, {}, "uas"), b.out);
        b.take();
        if (i == 0) b.now += 100ms;   // the first one is due 100 ms before the others
    }
    REQUIRE(b.layer.next_wake());
    const Time first = *b.layer.next_wake();
    b.layer.on_timer(first, b.out);
    CHECK(sent(b.take()).size() == 1);   // one retransmission: the first INVITE's
    CHECK(b.layer.next_wake() == first + 100ms);
    CHECK(b.layer.uses(kTrunk));
}

TEST_CASE("a non-INVITE request the TU never answers is forgotten after 64*T1") {
    Bench b;
    b.receive(request("INFO", "z9hG4bKinfo", 2, "uas"));
    REQUIRE(all<RequestIn>(b.take()).size() == 1);
    CHECK(b.layer.size() == 1);
    send_times(b, 40s);
    CHECK(b.layer.size() == 0);
    CHECK_FALSE(b.layer.uses(kTrunk));
}
