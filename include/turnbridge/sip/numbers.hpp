// SPDX-License-Identifier: Apache-2.0
#pragma once
// Telephone numbers as carriers spell them (issue 13): the same DID arrives as "+15551234567",
// "15551234567", "5551234567" or "tel:+1-555-123-4567", and a trunk wants ours in one form.
// Pure string work, shared by the router (inbound DIDs, caller_ids) and sip::Call (what we send).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "turnbridge/sip/message.hpp"

namespace turnbridge::sip {

// How a trunk's national numbers become E.164 (ITU-T E.164): a number of exactly
// `national_digits` digits without "+" is national, and `national_prefix` (the country code,
// "1" for NANP) goes in front of it. An empty national_prefix: no national numbers.
struct NumberPlan {
    std::string national_prefix;
    std::uint32_t national_digits = 10;
};

// The digits of a telephone number with an optional leading "+", visual separators dropped
// (RFC 3966 §5.1.1: - . ( ) and spaces): "+1 (555) 123-4567" -> "+15551234567"; nullopt when
// it is not a number (letters, '*', '#', an empty string).
std::optional<std::string> phone_digits(std::string_view number);

// E.164 digits without "+" per `plan`: "+15551234567", "15551234567" and (national_prefix "1")
// "5551234567" all give "15551234567". Without a plan a number without "+" is taken as already
// international; with one, a number that is neither national nor prefix+national is nullopt.
std::optional<std::string> e164_of(std::string_view number, const NumberPlan& plan);

// Two spellings of the same number (e164_of equal), or the very same string (a SIP user name).
bool same_number(std::string_view a, std::string_view b, const NumberPlan& plan);

// A number we send to the trunk: e164_plus true = "+E164" (when e164_of knows it, else as
// given); false = without a leading "+"; nullopt = as given.
std::string format_number(std::string_view number, std::optional<bool> e164_plus, const NumberPlan& plan);

// RFC 3261 §19.1.1 user=phone: a user part that is a telephone-subscriber ("+" and digits).
bool is_phone_user(std::string_view user);

// The user part of "sip:U@h;p", "sips:U@h" or the number of "tel:N;p" (RFC 3966); "" if none.
std::string uri_user(std::string_view uri);

// The number an inbound INVITE dials: the Request-URI's user, else the To URI's (a trunk that
// puts the DID only in To, or a Request-URI without a user part).
std::string dialled_number(const Message& invite);

// RFC 3323/3325: the caller withheld their identity: From user "anonymous" or host
// anonymous.invalid, or Privacy asks for id, user or header.
bool caller_withheld(const Message& invite);

// RFC 3323 §4.1.1.3: how we name a withheld caller.
inline constexpr std::string_view kAnonymousFrom = R"("Anonymous" <sip:anonymous@anonymous.invalid>)";

}  // namespace turnbridge::sip
