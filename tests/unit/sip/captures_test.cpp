// SPDX-License-Identifier: Apache-2.0
// Real JsSIP 3.10.1 messages (tests/unit/sip/captures, see its README) through every SIP core:
// a third party's bytes, digest answers and dialog behaviour rather than our own.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "turnbridge/sip/dialog.hpp"
#include "turnbridge/sip/digest.hpp"
#include "turnbridge/sip/registrar.hpp"
#include "turnbridge/sip/transaction.hpp"

using namespace turnbridge::sip;
using namespace std::chrono_literals;

namespace {

const std::filesystem::path kDir = std::filesystem::path(TURNBRIDGE_FIXTURES_DIR) / ".." / "unit" / "sip" / "captures";

std::string read(const std::string& name) {
    std::ifstream f(kDir / name, std::ios::binary);
    REQUIRE(f);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

Message capture(const std::string& name) {
    auto m = Message::parse(read(name));
    REQUIRE(m);
    return std::move(*m);
}

const Time kT0 = Time{} + 100h;

}  // namespace

TEST_CASE("every JsSIP message parses, validates and survives a round trip") {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(kDir)) {
        if (e.path().extension() != ".sip") continue;
        CAPTURE(e.path().filename().string());
        auto m = capture(e.path().filename().string());
        CHECK_FALSE(m.validate());
        CHECK(m.top_via_transport() == "WSS");
        auto again = Message::parse(m.serialize());
        REQUIRE(again);
        CHECK(again->call_id() == m.call_id());
        CHECK(again->cseq() == m.cseq());
        CHECK(again->top_via_branch() == m.top_via_branch());
        CHECK(again->body() == m.body());
        ++n;
    }
    CHECK(n == 10);
}

TEST_CASE("JsSIP's digest answers match our digest computation (RFC 2617 §3.2.2)") {
    for (const auto* name : {"02-REGISTER.sip", "10-REGISTER.sip"}) {
        CAPTURE(name);
        auto m = capture(name);
        const auto headers = m.auth_headers(AuthHeader::Authorization);
        REQUIRE(headers.size() == 1);
        auto p = parse_digest(headers[0]);  // as osip re-serialized it
        REQUIRE(p);
        auto& c = *p;
        CHECK(c["username"] == "alice");
        CHECK(digest_response({DigestAlgorithm::Md5, c["username"], c["realm"], "wonderland", m.method(), c["uri"],
                               c["nonce"], c["qop"], c["nc"], c["cnonce"]}) == c["response"]);
        CHECK(digest_response({DigestAlgorithm::Md5, c["username"], c["realm"], "not-it", m.method(), c["uri"],
                               c["nonce"], c["qop"], c["nc"], c["cnonce"]}) != c["response"]);
    }
}

TEST_CASE("JsSIP registers and unregisters its outbound binding by +sip.instance (RFC 5626 §6)") {
    Registrar r;
    auto ok = r.on_register(kT0, 1, capture("02-REGISTER.sip"), "alice", "example.org", "t");
    CHECK(ok.status() == 200);
    const auto b = r.lookup("alice@example.org");
    REQUIRE(b.size() == 1);
    CHECK(b[0].instance == "\"<urn:uuid:eff5858c-ebd1-4918-aca6-db2e50e5d268>\"");
    CHECK(b[0].expires_at == kT0 + 600s);
    CHECK(r.on_register(kT0 + 1s, 1, capture("10-REGISTER.sip"), "alice", "example.org", "t").status() == 200);
    CHECK(r.size() == 0);
}

TEST_CASE("JsSIP's CANCEL matches its INVITE's server transaction (RFC 3261 §9.2)") {
    TransactionLayer layer;
    std::vector<Action> out;
    layer.on_message(kT0, 1, true, capture("07-INVITE.sip"), out);
    std::string invite_tx;
    for (auto& a : out)
        if (auto* r = std::get_if<RequestIn>(&a)) invite_tx = r->tx;
    REQUIRE_FALSE(invite_tx.empty());
    out.clear();
    layer.on_message(kT0, 1, true, capture("08-CANCEL.sip"), out);
    bool cancelled = false, ok_sent = false;
    for (auto& a : out) {
        if (auto* c = std::get_if<CancelIn>(&a)) cancelled = c->invite_tx == invite_tx;
        if (auto* s = std::get_if<Send>(&a)) ok_sent = s->bytes.rfind("SIP/2.0 200 OK\r\n", 0) == 0;
    }
    CHECK(cancelled);
    CHECK(ok_sent);
}

TEST_CASE("JsSIP's ACK and BYE belong to the dialog its INVITE made (RFC 3261 §12.2.2)") {
    auto invite = capture("04-INVITE.sip");
    auto made = Dialog::from_uas(invite, "uas1", LocalAddress{"WSS", "gw.example.org", "<sip:gw@gw.example.org;transport=ws>"});
    REQUIRE(made);
    auto& d = *made;
    d.on_final_sent(200);
    auto ack = capture("05-ACK.sip");
    auto bye = capture("06-BYE.sip");
    CHECK(d.matches(ack));
    CHECK_FALSE(d.on_request(ack));
    CHECK(d.matches(bye));
    CHECK_FALSE(d.on_request(bye));
    CHECK(d.state() == Dialog::State::Terminated);
    CHECK_FALSE(d.matches(capture("07-INVITE.sip")));
}
