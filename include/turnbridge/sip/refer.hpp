// SPDX-License-Identifier: Apache-2.0
#pragma once
// The pieces of call transfer that are pure text (issue 14): the Refer-To of a REFER (RFC 3515
// §2.1) with an optional Replaces (RFC 3891 §6.1) in its headers part, and the NOTIFYs that
// report a REFER's progress as message/sipfrag (RFC 3515 §2.4.4, RFC 3420).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "turnbridge/sip/message.hpp"

namespace turnbridge::sip {

// RFC 3891 §6.1: "call-id;to-tag=X;from-tag=Y[;early-only]", the dialog a new INVITE replaces.
struct Replaces {
    std::string call_id, to_tag, from_tag;
    bool early_only = false;
};
std::optional<Replaces> parse_replaces(std::string_view value);

// A Refer-To value taken apart: "<sip:+15551234@example.org?Replaces=...>", "<tel:+1-555-1234>",
// or a bare URI without parameters (RFC 3261 §20.10 rules for name-addr vs addr-spec).
struct ReferTarget {
    std::string scheme;   // "sip", "sips" or "tel"
    std::string user;     // the user part or the tel: number, %-escapes decoded
    std::string host;     // "" for tel:; the host without port, lower-case
    std::optional<Replaces> replaces;   // the URI's ?Replaces= header (attended transfer)
};
// nullopt: no URI, another scheme, no user, bad escapes, or a Replaces that does not parse.
std::optional<ReferTarget> parse_refer_to(std::string_view value);
// The Refer-To of a REFER: exactly one (RFC 3515 §2.4.1), long or compact ("r") form.
std::optional<ReferTarget> refer_target(const Message& refer);

// The status line of a message/sipfrag body: "SIP/2.0 200 OK\r\n" (RFC 3515 §2.4.5).
std::string sipfrag(int status, std::string_view reason = {});
// The status of a sipfrag body ("SIP/2.0 180 Ringing..."); nullopt when it is none.
std::optional<int> sipfrag_status(std::string_view body);
// Turns a new in-dialog NOTIFY into the report of a REFER: Event: refer, Subscription-State
// active (a provisional) or terminated;reason=noresource (a final status), the sipfrag body.
// `id`: the CSeq of the REFER it reports (RFC 3515 §2.4.6); 0 for none.
void make_refer_notify(Message& notify, int status, std::uint32_t id = 0, std::string_view reason = {});

}  // namespace turnbridge::sip
