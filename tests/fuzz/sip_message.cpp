// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: SIP bytes through the parser, every accessor, the transaction layer, digest
// verification, the registrar and a dialog, as one message from a browser or a trunk would go.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "turnbridge/sip/dialog.hpp"
#include "turnbridge/sip/digest.hpp"
#include "turnbridge/sip/registrar.hpp"
#include "turnbridge/sip/transaction.hpp"

using namespace turnbridge;
using namespace turnbridge::sip;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    (void)parse_digest(bytes);
    auto m = Message::parse(bytes);
    if (!m) return 0;
    const auto invalid = m->validate();
    (void)m->method(), (void)m->request_uri(), (void)m->top_via(), (void)m->top_via_sent_by();
    (void)m->from(), (void)m->to(), (void)m->contacts(), (void)m->routes(), (void)m->record_routes();
    (void)m->body(), (void)m->content_type(), (void)m->max_forwards(), (void)m->header("Expires");
    for (auto h : {AuthHeader::WwwAuthenticate, AuthHeader::ProxyAuthenticate, AuthHeader::Authorization,
                   AuthHeader::ProxyAuthorization})
        for (const auto& v : m->auth_headers(h)) (void)parse_digest(v);
    (void)m->serialize();

    const Time now = Time{} + std::chrono::hours(1000);
    std::uint64_t n = 0;
    const Random random = [&n] { return ++n; };
    // libosip2 reads some garbage it cannot write back readably; only inputs that survive their
    // own round trip are held to "everything we send parses".
    const auto round_trip = Message::parse(m->serialize());
    const bool clean = round_trip && !round_trip->validate() == !invalid;
    if (!invalid && m->is_request()) {
        auto r = Message::parse(Message::response(*m, 486, {}, "fz").serialize());
        if (clean && (!r || r->call_id() != m->call_id() || r->cseq() != m->cseq())) __builtin_trap();
        if (m->method() == "INVITE") {
            (void)make_cancel(*m).serialize();
            auto d = Dialog::from_uas(*m, "fz", LocalAddress{"WS", "gw.invalid", "<sip:gw@gw.invalid;transport=ws>"});
            if (d) (void)d->make_request("BYE", random).serialize();
        }
        if (m->method() == "REGISTER") {
            Registrar reg;
            (void)reg.on_register(now, 1, *m, "alice", "example.org", "fz").serialize();
        }
        static const turn::NonceMinter nonces(std::array<std::uint8_t, 32>{9}, std::chrono::seconds(600));
        DigestServer digest("example.org", nonces);
        (void)digest.verify(*m, now, IpAddress::v4(127, 0, 0, 1), [](std::string_view) { return std::string("pw"); });
    }
    if (!invalid && !m->is_request()) (void)answer_challenge(*m, "INVITE", "sip:x@y", "u", "p", random);
    // Twice through a transaction layer: the second copy is a retransmission.
    TransactionLayer layer;
    std::vector<Action> out;
    layer.on_message(now, 1, false, m->clone(), out);
    layer.on_message(now, 1, false, std::move(*m), out);
    layer.on_timer(now + std::chrono::seconds(40), out);
    for (const auto& a : out)
        if (auto* s = std::get_if<Send>(&a); clean && s && !Message::parse(s->bytes)) __builtin_trap();  // we send only SIP
    return 0;
}
