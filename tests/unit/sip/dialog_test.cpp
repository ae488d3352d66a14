// SPDX-License-Identifier: Apache-2.0
// Dialogs (RFC 3261 §12, §13.2.2.4, §14, §15).
#include <doctest/doctest.h>

#include "samples.hpp"
#include "turnbridge/sip/dialog.hpp"

using namespace turnbridge::sip;

namespace {

Message msg(const std::string& wire) {
    auto m = Message::parse(wire);
    REQUIRE(m);
    return std::move(*m);
}

Random counter(std::uint64_t start = 0x100) {
    return [n = start]() mutable { return n++; };
}

const LocalAddress kTrunkSide{"UDP", "127.0.0.1:5062", "<sip:turnbridge@127.0.0.1:5062>"};
const LocalAddress kBrowserSide{"WSS", "gw.example.org", "<sip:turnbridge@gw.example.org;transport=ws>"};

// The INVITE turnbridge sends to the trunk.
Message trunk_invite() {
    auto rnd = counter();
    auto m = std::move(*Message::request("INVITE", "sip:+15550123@127.0.0.1:5070"));
    m.push_via("UDP", "127.0.0.1:5062", new_branch(rnd));
    m.set_from("<sip:alice@example.org>;tag=gwtag");
    m.set_to("<sip:+15550123@127.0.0.1>");
    m.set_call_id("b2b-1@127.0.0.1");
    m.set_cseq(20, "INVITE");
    m.add_contact(kTrunkSide.contact);
    return m;
}

// The trunk's answer, through two record-routing proxies.
Message trunk_response(const Message& invite, int status, const std::string& rr1 = "<sip:p1.trunk;lr>",
                       const std::string& rr2 = "<sip:p2.trunk;lr>") {
    auto r = Message::response(invite, status, {}, "trunktag");
    r.add_contact("<sip:+15550123@10.0.0.5:5080>");
    r.add_record_route(rr2);  // as the UAC receives it: the proxy nearest the UAS on top
    r.add_record_route(rr1);
    return msg(r.serialize());
}

}  // namespace

TEST_CASE("a UAC dialog from 180 then 200: route set reversed, target from Contact, ACK per §13.2.2.4") {
    const auto inv = trunk_invite();
    CHECK_FALSE(Dialog::from_uac(inv, msg(Message::response(inv, 100).serialize()), kTrunkSide));  // no To tag
    auto d = Dialog::from_uac(inv, trunk_response(inv, 180), kTrunkSide);
    REQUIRE(d);
    CHECK(d->state() == Dialog::State::Early);
    CHECK(d->is_uac());
    CHECK(d->remote_tag() == "trunktag");
    CHECK(d->remote_target() == "sip:+15550123@10.0.0.5:5080");
    CHECK(d->route_set() == std::vector<std::string>{"<sip:p1.trunk;lr>", "<sip:p2.trunk;lr>"});

    const auto ok = trunk_response(inv, 200);
    CHECK(d->matches(ok));
    d->on_response(ok);
    CHECK(d->state() == Dialog::State::Confirmed);

    auto rnd = counter(0x200);
    auto ack = msg(d->make_ack(inv.cseq(), rnd).serialize());
    CHECK(ack.method() == "ACK");
    CHECK(ack.request_uri() == "sip:+15550123@10.0.0.5:5080");
    CHECK(ack.routes() == std::vector<std::string>{"<sip:p1.trunk;lr>", "<sip:p2.trunk;lr>"});
    CHECK(ack.cseq() == 20);
    CHECK(ack.cseq_method() == "ACK");
    CHECK(ack.top_via_branch() != inv.top_via_branch());
    CHECK(ack.top_via_branch().rfind("z9hG4bK", 0) == 0);
    CHECK(ack.from_tag() == "gwtag");
    CHECK(ack.to_tag() == "trunktag");
    CHECK(ack.call_id() == "b2b-1@127.0.0.1");

    auto bye = msg(d->make_request("BYE", rnd).serialize());
    CHECK(bye.cseq() == 21);
    CHECK(bye.cseq_method() == "BYE");
    CHECK(bye.request_uri() == "sip:+15550123@10.0.0.5:5080");
    CHECK(d->state() == Dialog::State::Terminated);  // §15.1.1
}

TEST_CASE("a UAS dialog with a browser: BYE goes to the browser's Contact with swapped tags (RFC 3261 §12.1.1)") {
    const auto inv = msg(samples::jssip_invite());
    auto made = Dialog::from_uas(inv, "uastag", kBrowserSide);
    REQUIRE(made);
    auto& d = *made;
    CHECK(d.state() == Dialog::State::Early);
    CHECK(d.remote_target() == "sip:kd3b3o1r@3b5kq2ugmd6u.invalid;transport=ws;ob");
    d.on_final_sent(200);
    CHECK(d.state() == Dialog::State::Confirmed);
    auto rnd = counter();
    auto bye = msg(d.make_request("BYE", rnd).serialize());
    CHECK(bye.request_uri() == "sip:kd3b3o1r@3b5kq2ugmd6u.invalid;transport=ws;ob");
    CHECK(bye.from_tag() == "uastag");
    CHECK(bye.from()->uri == "sip:+15550123@example.org");
    CHECK(bye.to_tag() == "8fk2ra1dtq");
    CHECK(bye.top_via_transport() == "WSS");
    CHECK(bye.cseq() == 1);  // our own CSeq space starts fresh
    CHECK(bye.routes().empty());
}

TEST_CASE("in-dialog requests: matching, CSeq order, target refresh, glare (RFC 3261 §12.2.2, §14)") {
    const auto inv = msg(samples::jssip_invite());
    auto made = Dialog::from_uas(inv, "uastag", kBrowserSide);
    REQUIRE(made);
    auto& d = *made;
    d.on_final_sent(200);
    auto in_dialog = [&](const std::string& method, int cseq, const std::string& contact = "") {
        std::string w = method + " sip:turnbridge@gw.example.org;transport=ws SIP/2.0\r\n"
                        "Via: SIP/2.0/WSS 3b5kq2ugmd6u.invalid;branch=z9hG4bK" + std::to_string(cseq) + "\r\n"
                        "From: <sip:alice@example.org>;tag=8fk2ra1dtq\r\n"
                        "To: <sip:+15550123@example.org>;tag=uastag\r\n"
                        "Call-ID: mvh2l0g3kcq1fo9tbhm5\r\n"
                        "CSeq: " + std::to_string(cseq) + " " + method + "\r\n" +
                        (contact.empty() ? "" : "Contact: " + contact + "\r\n") + "Content-Length: 0\r\n\r\n";
        return msg(w);
    };
    auto reinvite = in_dialog("INVITE", 6216, "<sip:new@3b5kq2ugmd6u.invalid;transport=ws>");
    CHECK(d.matches(reinvite));
    CHECK_FALSE(d.on_request(reinvite));
    CHECK(d.remote_target() == "sip:new@3b5kq2ugmd6u.invalid;transport=ws");

    SUBCASE("a second INVITE while our answer is pending gets 500 (§14.2)") {
        auto e = d.on_request(in_dialog("INVITE", 6217));
        REQUIRE(e);
        CHECK(e->code == Status::ServerInternalError);
    }
    SUBCASE("an old CSeq gets 500 (§12.2.2)") {
        d.on_final_sent(200);
        auto e = d.on_request(in_dialog("INFO", 6216));
        REQUIRE(e);
        CHECK(e->what == "CSeq out of order");
    }
    SUBCASE("their re-INVITE while ours is pending gets 491 (§14.2)") {
        d.on_final_sent(200);
        auto rnd = counter();
        auto ours = d.make_request("INVITE", rnd);
        CHECK(ours.contacts().at(0).uri == "sip:turnbridge@gw.example.org;transport=ws");
        auto e = d.on_request(in_dialog("INVITE", 6218));
        REQUIRE(e);
        CHECK(e->code == Status::RequestPending);
        // Our re-INVITE is refused with 488: the dialog survives (§14.1).
        auto refused = Message::response(ours, 488, {}, "x");
        d.on_response(msg(refused.serialize()));
        CHECK(d.state() == Dialog::State::Confirmed);
        CHECK_FALSE(d.on_request(in_dialog("INVITE", 6219)));
    }
    SUBCASE("BYE ends the dialog") {
        CHECK_FALSE(d.on_request(in_dialog("BYE", 6220)));
        CHECK(d.state() == Dialog::State::Terminated);
    }
    SUBCASE("a request with another tag is not ours") {
        auto other = in_dialog("BYE", 6221);
        other.set_to("<sip:+15550123@example.org>;tag=someoneelse");
        CHECK_FALSE(d.matches(other));
    }
}

TEST_CASE("a 481 to an in-dialog request ends the dialog (RFC 3261 §12.2.1.2)") {
    const auto inv = trunk_invite();
    auto d = Dialog::from_uac(inv, trunk_response(inv, 200), kTrunkSide);
    REQUIRE(d);
    CHECK(d->state() == Dialog::State::Confirmed);
    auto rnd = counter();
    auto info = d->make_request("INFO", rnd);
    d->on_response(msg(Message::response(info, 481, {}, "trunktag").serialize()));
    CHECK(d->state() == Dialog::State::Terminated);
}

TEST_CASE("a strict-routing first hop becomes the Request-URI, the target goes last (RFC 3261 §12.2.1.1)") {
    const auto inv = trunk_invite();
    auto d = Dialog::from_uac(inv, trunk_response(inv, 200, "<sip:p1.trunk>", "<sip:p2.trunk;lr>"), kTrunkSide);
    REQUIRE(d);
    auto rnd = counter();
    auto bye = msg(d->make_request("BYE", rnd).serialize());
    CHECK(bye.request_uri() == "sip:p1.trunk");
    CHECK(bye.routes() == std::vector<std::string>{"<sip:p2.trunk;lr>", "<sip:+15550123@10.0.0.5:5080>"});
}

TEST_CASE("an early dialog ends with an error to the initial INVITE") {
    const auto inv = trunk_invite();
    auto d = Dialog::from_uac(inv, trunk_response(inv, 183), kTrunkSide);
    REQUIRE(d);
    d->on_response(trunk_response(inv, 486));
    CHECK(d->state() == Dialog::State::Terminated);
}

TEST_CASE("an INVITE without a usable Contact makes no dialog: 400 (RFC 3261 §8.1.1.8; found by fuzzing)") {
    auto wire = samples::jssip_invite();
    wire.replace(wire.find("Contact:"), 8, "Cont^ct:");
    auto made = Dialog::from_uas(msg(wire), "t", kBrowserSide);
    REQUIRE_FALSE(made);
    CHECK(made.error().code == Status::BadRequest);
    CHECK(made.error().what == "missing or bad Contact");
}
