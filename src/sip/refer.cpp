// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/refer.hpp"

#include <osipparser2/osip_message.h>
#include <osipparser2/osip_parser.h>

#include "text.hpp"
#include "turnbridge/base/percent.hpp"

namespace turnbridge::sip {
namespace {

constexpr std::size_t kMaxReferTo = 1024;   // longer than any target a browser or carrier sends

bool valid_token_text(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (c <= ' ' || c == '<' || c == '>' || c == '"' || c >= 0x7f) return false;
    return true;
}

}  // namespace

std::optional<Replaces> parse_replaces(std::string_view value) {
    // RFC 3891 §6.1: Replaces = callid *(SEMI replaces-param); to-tag and from-tag are required.
    const auto semi = value.find(';');
    Replaces r;
    r.call_id = std::string(text::trim(value.substr(0, semi)));
    if (!valid_token_text(r.call_id) || semi == std::string_view::npos) return std::nullopt;
    std::string_view rest = value.substr(semi + 1);
    while (!rest.empty()) {
        const auto next = rest.find(';');
        const auto param = text::trim(rest.substr(0, next));
        const auto eq = param.find('=');
        const auto name = text::lower(text::trim(param.substr(0, eq)));
        const auto val = eq == std::string_view::npos ? std::string_view() : text::trim(param.substr(eq + 1));
        if (name == "to-tag") r.to_tag = std::string(val);
        else if (name == "from-tag") r.from_tag = std::string(val);
        else if (name == "early-only") r.early_only = true;
        rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
    }
    if (!valid_token_text(r.to_tag) || !valid_token_text(r.from_tag)) return std::nullopt;
    return r;
}

std::optional<ReferTarget> parse_refer_to(std::string_view value) {
    value = text::trim(value);
    if (value.empty() || value.size() > kMaxReferTo) return std::nullopt;
    // RFC 3261 §20.10: a URI with ',', ';' or '?' must be in <>; a bare one ends at ';'
    // (header parameters follow, RFC 3515 §2.1).
    std::string_view uri;
    if (const auto lt = value.find('<'); lt != std::string_view::npos) {
        const auto gt = value.find('>', lt);
        if (gt == std::string_view::npos) return std::nullopt;
        uri = value.substr(lt + 1, gt - lt - 1);
    } else {
        uri = value.substr(0, value.find(';'));
    }
    uri = text::trim(uri);
    const auto colon = uri.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    ReferTarget t;
    t.scheme = text::lower(uri.substr(0, colon));
    std::string_view rest = uri.substr(colon + 1);
    std::string_view headers;
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        headers = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    if (t.scheme == "tel") {
        // RFC 3966 §3: tel:NUMBER;params; no headers part.
        if (!headers.empty()) return std::nullopt;
        auto n = percent_decode(rest.substr(0, rest.find(';')), false);
        if (!n || n->empty()) return std::nullopt;
        t.user = std::move(*n);
    } else if (t.scheme == "sip" || t.scheme == "sips") {
        const auto at = rest.find('@');
        if (at == std::string_view::npos || at == 0) return std::nullopt;
        const auto userinfo = rest.substr(0, at);   // user[;user-params][:password]
        auto u = percent_decode(userinfo.substr(0, userinfo.find_first_of(":;")), false);
        if (!u || u->empty()) return std::nullopt;
        t.user = std::move(*u);
        std::string_view hostport = rest.substr(at + 1);
        hostport = hostport.substr(0, hostport.find(';'));
        // "[v6]:port" or "host:port"
        if (!hostport.empty() && hostport.front() == '[') hostport = hostport.substr(0, hostport.find(']') + 1);
        else hostport = hostport.substr(0, hostport.find(':'));
        if (hostport.empty()) return std::nullopt;
        t.host = text::lower(hostport);
    } else {
        return std::nullopt;
    }
    for (unsigned char c : t.user)
        if (c < ' ' || c == 0x7f) return std::nullopt;
    // RFC 3261 §19.1.1 headers: hname=hvalue&...; only Replaces means anything to us (RFC 3891 §6.1).
    while (!headers.empty()) {
        const auto amp = headers.find('&');
        const auto h = headers.substr(0, amp);
        const auto eq = h.find('=');
        if (eq == std::string_view::npos) return std::nullopt;
        if (text::iequal(h.substr(0, eq), "replaces")) {
            auto v = percent_decode(h.substr(eq + 1), false);
            if (!v) return std::nullopt;
            t.replaces = parse_replaces(*v);
            if (!t.replaces) return std::nullopt;
        }
        headers = amp == std::string_view::npos ? std::string_view() : headers.substr(amp + 1);
    }
    return t;
}

std::optional<ReferTarget> refer_target(const Message& refer) {
    // RFC 3515 §2.4.1: exactly one Refer-To, else 400.
    if (refer.header_count("refer-to") + refer.header_count("r") != 1) return std::nullopt;
    auto v = refer.header("refer-to");
    if (!v) v = refer.header("r");
    if (!v) return std::nullopt;
    return parse_refer_to(*v);
}

std::string sipfrag(int status, std::string_view reason) {
    std::string r(reason);
    if (r.empty()) {
        const char* phrase = osip_message_get_reason(status);
        r = phrase ? phrase : "Unknown";
    }
    return "SIP/2.0 " + std::to_string(status) + " " + r + "\r\n";
}

std::optional<int> sipfrag_status(std::string_view body) {
    constexpr std::string_view kPrefix = "SIP/2.0 ";
    if (body.size() < kPrefix.size() + 3 || !text::iequal(body.substr(0, kPrefix.size()), kPrefix)) return std::nullopt;
    int status = 0;
    for (std::size_t i = kPrefix.size(); i < kPrefix.size() + 3; ++i) {
        if (body[i] < '0' || body[i] > '9') return std::nullopt;
        status = status * 10 + (body[i] - '0');
    }
    if (status < 100 || status > 699) return std::nullopt;
    if (body.size() > kPrefix.size() + 3 && body[kPrefix.size() + 3] != ' ' && body[kPrefix.size() + 3] != '\r')
        return std::nullopt;
    return status;
}

void make_refer_notify(Message& notify, int status, std::uint32_t id, std::string_view reason) {
    // RFC 3515 §2.4.4-2.4.5 (and RFC 6665 §4.2.2): the implicit subscription ends with the final status.
    notify.add_header("Event", id ? "refer;id=" + std::to_string(id) : std::string("refer"));
    notify.add_header("Subscription-State", status < 200 ? "active;expires=60" : "terminated;reason=noresource");
    notify.set_body("message/sipfrag;version=2.0", sipfrag(status, reason));
}

}  // namespace turnbridge::sip
