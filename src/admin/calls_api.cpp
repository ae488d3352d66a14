// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/admin/calls_api.hpp"

#include <algorithm>
#include <array>

#include "turnbridge/admin/json.hpp"
#include "turnbridge/base/json_reader.hpp"
#include "turnbridge/config/agent_url.hpp"

namespace turnbridge::admin {
namespace {

constexpr std::array<std::string_view, 4> kFields = {"realm", "to", "from", "agent"};

}  // namespace

bool valid_api_number(std::string_view n) {
    if (n.starts_with('+')) n.remove_prefix(1);
    if (n.empty() || n.size() > 32) return false;
    for (char c : n)
        if (!(c >= '0' && c <= '9') && c != '*' && c != '#') return false;
    return true;
}

std::string outbound_call_json(const OutboundCall& c) {
    JsonWriter j;
    j.begin_object();
    j.key("id").value(c.id);
    j.key("realm").value(c.realm);
    j.key("to").value(c.to);
    j.key("from").value(c.from);
    j.key("agent").value(c.agent);
    j.key("media_format").value(c.media_format);
    j.key("status").value(c.status);
    j.key("sip_code").value(static_cast<std::int64_t>(c.sip_code));
    j.key("call_id").value(c.call_id);
    j.key("end_reason").value(c.end_reason);
    j.key("created").value(iso8601_utc(c.created_ms));
    j.end_object();
    return j.take() + "\n";
}

Response place_call(const Request& req, Backend& backend) {
    const auto body = parse_json(req.body, JsonLimits{4, 16 * 1024});
    if (!body || !body->is_object()) return json_error(400, "expected a JSON object {realm, to, from, agent}");
    for (const auto& m : body->members)
        if (std::find(kFields.begin(), kFields.end(), m.key) == kFields.end() && m.key != "media_format")
            return json_error(400, "unknown field; expected realm, to, from, agent and media_format", m.key);
    PlaceCall p;
    std::string* into[] = {&p.realm, &p.to, &p.from, &p.agent};
    for (std::size_t i = 0; i < kFields.size(); ++i) {
        const auto v = body->text(kFields[i]);
        if (!v || v->empty()) return json_error(400, "missing, empty or not a string", kFields[i]);
        *into[i] = std::string(*v);
    }
    if (!valid_api_number(p.to)) return json_error(400, "expected a number: an optional +, then digits, * or #", "to");
    if (!valid_api_number(p.from)) return json_error(400, "expected a number: an optional +, then digits, * or #", "from");
    // Optional (issue 17): the agent's audio, mu-law 8 kHz or L16 16 kHz; absent: the agent's own.
    if (body->find("media_format") != nullptr) {
        const auto f = body->text("media_format");
        if (!f || !config::parse_agent_media_format(*f)) return json_error(400, R"(expected "mulaw" or "l16")", "media_format");
        p.media_format = std::string(*f);
    }
    Placed placed = backend.place_call(p);
    if (placed.status != 202) return json_error(placed.status, placed.error, placed.field);
    Response r;
    r.status = 202;
    r.content_type = "application/json";
    r.body = outbound_call_json(placed.call);
    r.headers.push_back({"Location", std::string(kCallsPrefix) + placed.call.id});
    return r;
}

Response outbound_call(std::string_view id, Backend& backend) {
    const auto c = backend.outbound_call(id);
    if (!c) return json_error(404, "no such outbound call (only the last ones are kept)");
    Response r;
    r.content_type = "application/json";
    r.body = outbound_call_json(*c);
    return r;
}

}  // namespace turnbridge::admin
