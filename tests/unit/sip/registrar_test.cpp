// SPDX-License-Identifier: Apache-2.0
// The registrar for browsers over WebSocket (RFC 3261 §10.3, RFC 5626 §6, RFC 7118 §5).
#include <doctest/doctest.h>

#include "samples.hpp"
#include "turnbridge/sip/registrar.hpp"

using namespace turnbridge::sip;
using namespace std::chrono_literals;

namespace {

const Time kT0 = Time{} + 100h;
constexpr TransportId kWs1 = 11, kWs2 = 12;

Message reg(const std::string& contact, std::uint32_t cseq = 1, const std::string& call_id = "reg-call-1",
            const std::string& expires_header = "", const std::string& user = "alice") {
    std::string w = "REGISTER sip:example.org SIP/2.0\r\n"
                    "Via: SIP/2.0/WSS h.invalid;branch=z9hG4bK" + std::to_string(cseq) + "\r\n"
                    "To: <sip:" + user + "@example.org>\r\n"
                    "From: <sip:" + user + "@example.org>;tag=f1\r\n"
                    "Call-ID: " + call_id + "\r\n"
                    "CSeq: " + std::to_string(cseq) + " REGISTER\r\n" +
                    (contact.empty() ? "" : "Contact: " + contact + "\r\n") +
                    (expires_header.empty() ? "" : "Expires: " + expires_header + "\r\n") + "Content-Length: 0\r\n\r\n";
    auto m = Message::parse(w);
    REQUIRE(m);
    return std::move(*m);
}

Message wire(const Message& m) { return std::move(*Message::parse(m.serialize())); }

}  // namespace

TEST_CASE("a JsSIP REGISTER binds its contact to its connection and the 200 echoes it (RFC 3261 §10.3 step 8)") {
    Registrar r;
    auto req = Message::parse(samples::kJsSipRegister);
    auto ok = wire(r.on_register(kT0, kWs1, *req, "alice", "example.org", "regtag"));
    CHECK(ok.status() == 200);
    CHECK(ok.to_tag() == "regtag");
    const auto contacts = ok.contacts();
    REQUIRE(contacts.size() == 1);
    CHECK(contacts[0].uri == "sip:kd3b3o1r@3b5kq2ugmd6u.invalid;transport=ws");
    CHECK(contacts[0].param("expires") == "600");
    CHECK(contacts[0].param("+sip.instance") == "\"<urn:uuid:4a9f3e1b-6d8c-4b0a-9e2c-7c2f6b9a1d3e>\"");
    const auto b = r.lookup("alice@example.org");
    REQUIRE(b.size() == 1);
    CHECK(b[0].transport == kWs1);
    CHECK(b[0].expires_at == kT0 + 600s);
    CHECK(r.next_expiry() == kT0 + 600s);

    SUBCASE("the binding expires on the timer") {
        r.on_timer(kT0 + 599s);
        CHECK(r.size() == 1);
        r.on_timer(kT0 + 600s);
        CHECK(r.size() == 0);
        CHECK_FALSE(r.next_expiry());
    }
    SUBCASE("the connection closing removes it (RFC 7118 §5: no other way to reach it)") {
        r.on_transport_closed(kWs2);
        CHECK(r.size() == 1);
        r.on_transport_closed(kWs1);
        CHECK(r.lookup("alice@example.org").empty());
    }
}

TEST_CASE("refresh, query, unregister, and the Call-ID/CSeq rule (RFC 3261 §10.3 steps 6-7)") {
    Registrar r;
    const std::string c = "<sip:a1@h.invalid;transport=ws>";
    CHECK(r.on_register(kT0, kWs1, reg(c + ";expires=300", 1), "alice", "example.org", "t").status() == 200);
    // Refresh with a higher CSeq: still one binding, new expiry.
    CHECK(r.on_register(kT0 + 100s, kWs1, reg(c + ";expires=300", 2), "alice", "example.org", "t").status() == 200);
    REQUIRE(r.size() == 1);
    CHECK(r.lookup("alice@example.org")[0].expires_at == kT0 + 400s);
    // The same Call-ID with an old CSeq is refused and changes nothing.
    auto stale = wire(r.on_register(kT0 + 100s, kWs1, reg(c + ";expires=0", 2), "alice", "example.org", "t"));
    CHECK(stale.status() == 500);
    CHECK(r.size() == 1);
    // A query (no Contact) lists the binding with what is left of it.
    auto q = wire(r.on_register(kT0 + 200s, kWs1, reg("", 3), "alice", "example.org", "t"));
    CHECK(q.status() == 200);
    REQUIRE(q.contacts().size() == 1);
    CHECK(q.contacts()[0].param("expires") == "200");
    // Expires header 0 removes it.
    auto gone = wire(r.on_register(kT0 + 200s, kWs1, reg(c, 4, "reg-call-1", "0"), "alice", "example.org", "t"));
    CHECK(gone.status() == 200);
    CHECK(gone.contacts().empty());
    CHECK(r.size() == 0);
}

TEST_CASE("Contact: * with Expires: 0 removes every binding; with another Expires it is a 400") {
    Registrar r;
    r.on_register(kT0, kWs1, reg("<sip:a1@h.invalid;transport=ws>", 1, "c1"), "alice", "example.org", "t");
    r.on_register(kT0, kWs2, reg("<sip:a2@h.invalid;transport=ws>", 1, "c2"), "alice", "example.org", "t");
    CHECK(r.lookup("alice@example.org").size() == 2);  // two browsers: an inbound call forks to both
    CHECK(r.on_register(kT0, kWs1, reg("*", 2, "c1", "5"), "alice", "example.org", "t").status() == 400);
    CHECK(r.size() == 2);
    CHECK(r.on_register(kT0, kWs1, reg("*", 3, "c1", "0"), "alice", "example.org", "t").status() == 200);
    CHECK(r.size() == 0);
}

TEST_CASE("expires below the minimum gets 423 with Min-Expires; above the maximum is cut (RFC 3261 §10.3 step 7)") {
    Registrar r;
    auto brief = wire(r.on_register(kT0, kWs1, reg("<sip:a@h.invalid>;expires=30"), "alice", "example.org", "t"));
    CHECK(brief.status() == 423);
    CHECK(brief.header("Min-Expires") == "60");
    CHECK(r.size() == 0);
    auto ok = wire(r.on_register(kT0, kWs1, reg("<sip:a@h.invalid>", 1, "c", "999999"), "alice", "example.org", "t"));
    CHECK(ok.contacts().at(0).param("expires") == "3600");
    auto dflt = wire(r.on_register(kT0, kWs1, reg("<sip:b@h.invalid>", 1, "d"), "alice", "example.org", "t"));
    CHECK(r.lookup("alice@example.org").at(1).expires_at == kT0 + 600s);  // no expires anywhere: the default
    CHECK(dflt.status() == 200);
}

TEST_CASE("only the authenticated user may register an AOR (RFC 3261 §10.3 step 4)") {
    Registrar r;
    auto m = wire(r.on_register(kT0, kWs1, reg("<sip:a@h.invalid>", 1, "c", "", "bob"), "alice", "example.org", "t"));
    CHECK(m.status() == 403);
    CHECK(r.size() == 0);
}

TEST_CASE("one AOR keeps at most max_bindings_per_aor bindings, dropping the one closest to expiry") {
    RegistrarConfig cfg;
    cfg.max_bindings_per_aor = 2;
    Registrar r(cfg);
    r.on_register(kT0, 1, reg("<sip:a@h.invalid>;expires=100", 1, "c1"), "alice", "example.org", "t");
    r.on_register(kT0, 2, reg("<sip:b@h.invalid>;expires=200", 1, "c2"), "alice", "example.org", "t");
    r.on_register(kT0, 3, reg("<sip:c@h.invalid>;expires=300", 1, "c3"), "alice", "example.org", "t");
    const auto b = r.lookup("alice@example.org");
    REQUIRE(b.size() == 2);
    CHECK(b[0].contact == "sip:b@h.invalid");
    CHECK(b[1].contact == "sip:c@h.invalid");
}

TEST_CASE("the registrar is bounded in total: a new binding beyond it gets 503, a refresh still works (issue 11)") {
    Registrar r;
    r.set_limits(10, 2);
    CHECK(r.on_register(kT0, kWs1, reg("<sip:a@h1.invalid;transport=ws>", 1, "c1"), "alice", "example.org", "t").status() == 200);
    CHECK(r.on_register(kT0, kWs1, reg("<sip:b@h2.invalid;transport=ws>", 1, "c2", "", "bob"), "bob", "example.org", "t").status() == 200);
    CHECK(r.size() == 2);
    auto full = r.on_register(kT0, kWs2, reg("<sip:c@h3.invalid;transport=ws>", 1, "c3", "", "carol"), "carol", "example.org", "t");
    CHECK(full.status() == 503);
    CHECK(r.refused() == 1);
    CHECK(r.lookup("carol@example.org").empty());
    CHECK(r.on_register(kT0 + 1s, kWs1, reg("<sip:a@h1.invalid;transport=ws>", 2, "c1"), "alice", "example.org", "t").status() == 200);
    CHECK(r.size() == 2);
    CHECK(r.next_expiry() == kT0 + 600s);   // bob's, the earliest
}

TEST_CASE("next_expiry is never later than the earliest binding; a stale early one is put right by on_timer") {
    Registrar r;
    CHECK(r.on_register(kT0, kWs1, reg("<sip:a@h1.invalid;transport=ws>", 1, "c1"), "alice", "example.org", "t").status() == 200);
    CHECK(r.on_register(kT0 + 10s, kWs1, reg("<sip:b@h2.invalid;transport=ws>", 1, "c2", "", "bob"), "bob", "example.org", "t").status() == 200);
    CHECK(r.next_expiry() == kT0 + 600s);
    // alice leaves: the earliest is bob's now, but the registrar may still say alice's time ...
    CHECK(r.on_register(kT0 + 20s, kWs1, reg("<sip:a@h1.invalid;transport=ws>;expires=0", 2, "c1"), "alice", "example.org", "t").status() == 200);
    CHECK(r.size() == 1);
    REQUIRE(r.next_expiry());
    CHECK(*r.next_expiry() <= kT0 + 610s);
    // ... until the timer at that time looks, finds nothing due and tells the true one.
    r.on_timer(*r.next_expiry());
    CHECK(r.size() == 1);
    CHECK(r.next_expiry() == kT0 + 610s);
    r.on_timer(kT0 + 610s);
    CHECK(r.size() == 0);
    CHECK_FALSE(r.next_expiry());
}
