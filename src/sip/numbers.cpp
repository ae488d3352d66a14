// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/numbers.hpp"

#include <algorithm>

namespace turnbridge::sip {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

}  // namespace

std::optional<std::string> phone_digits(std::string_view number) {
    std::string out;
    if (number.starts_with('+')) {
        out.push_back('+');
        number.remove_prefix(1);
    }
    for (char c : number) {
        if (is_digit(c)) out.push_back(c);
        else if (std::string_view("-.() ").find(c) == std::string_view::npos) return std::nullopt;
    }
    // E.164 allows at most 15 digits; 32 leaves room for a tech prefix or an extension.
    if (out.empty() || out == "+" || out.size() > 32) return std::nullopt;
    return out;
}

std::optional<std::string> e164_of(std::string_view number, const NumberPlan& plan) {
    auto digits = phone_digits(number);
    if (!digits) return std::nullopt;
    if (digits->front() == '+') return digits->substr(1);
    if (plan.national_prefix.empty()) return digits;
    if (digits->size() == plan.national_digits) return plan.national_prefix + *digits;
    if (digits->size() == plan.national_prefix.size() + plan.national_digits && digits->starts_with(plan.national_prefix))
        return digits;
    return std::nullopt;   // a short code or an extension: no E.164 form
}

bool same_number(std::string_view a, std::string_view b, const NumberPlan& plan) {
    if (a == b) return true;
    const auto x = e164_of(a, plan);
    return x && x == e164_of(b, plan);
}

std::string format_number(std::string_view number, std::optional<bool> e164_plus, const NumberPlan& plan) {
    if (!e164_plus) return std::string(number);
    if (*e164_plus) {
        if (auto e = e164_of(number, plan)) return "+" + *e;
        return std::string(number);
    }
    return std::string(number.starts_with('+') ? number.substr(1) : number);
}

bool is_phone_user(std::string_view user) {
    if (user.starts_with('+')) user.remove_prefix(1);
    return !user.empty() && std::all_of(user.begin(), user.end(), is_digit);
}

std::string uri_user(std::string_view uri) {
    const auto colon = uri.find(':');
    if (colon == std::string_view::npos) return {};
    const auto scheme = uri.substr(0, colon);
    uri.remove_prefix(colon + 1);
    if (iequals(scheme, "tel")) return std::string(uri.substr(0, uri.find_first_of(";?>")));
    if (!iequals(scheme, "sip") && !iequals(scheme, "sips")) return {};
    uri = uri.substr(0, uri.find_first_of("?>"));
    const auto at = uri.rfind('@');
    if (at == std::string_view::npos) return {};
    // RFC 3261 §19.1.1: a user may carry its own parameters ("+1555;isub=1"): the number only.
    return std::string(uri.substr(0, std::min(at, uri.find(';'))));
}

std::string dialled_number(const Message& invite) {
    auto user = uri_user(invite.request_uri());
    if (user.empty())
        if (const auto to = invite.to()) user = uri_user(to->uri);
    return user;
}

bool caller_withheld(const Message& invite) {
    if (const auto from = invite.from()) {
        if (iequals(uri_user(from->uri), "anonymous")) return true;
        const auto at = from->uri.rfind('@');
        if (at != std::string::npos && iequals(std::string_view(from->uri).substr(at + 1, 17), "anonymous.invalid"))
            return true;
    }
    // RFC 3323 §4.2: Privacy: id (RFC 3325 §9.3), user or header, ';'-separated.
    for (int i = 0; i < 8; ++i) {
        const auto v = invite.header("privacy", i);
        if (!v) break;
        std::string_view rest = *v;
        while (!rest.empty()) {
            auto token = rest.substr(0, rest.find(';'));
            rest.remove_prefix(std::min(rest.size(), token.size() + 1));
            while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
            while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
            if (iequals(token, "id") || iequals(token, "user") || iequals(token, "header")) return true;
        }
    }
    return false;
}

}  // namespace turnbridge::sip
