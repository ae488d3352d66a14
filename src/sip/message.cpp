// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/message.hpp"

#include <osipparser2/osip_message.h>
#include <osipparser2/osip_parser.h>
#include <osipparser2/osip_port.h>

#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "text.hpp"

namespace turnbridge::sip {
namespace {

// libosip2 fills its header tables once per process; parser_init() itself is not thread-safe.
void ensure_parser() {
    static std::once_flag once;
    std::call_once(once, [] {
        parser_init();
        // Bad input is a value we return; osip's own stderr trace would only duplicate it.
        osip_trace_initialize_func(END_TRACE_LEVEL, [](const char*, int, osip_trace_level_t, const char*, va_list) {});
        for (int l = 0; l < END_TRACE_LEVEL; ++l) osip_trace_disable_level(static_cast<osip_trace_level_t>(l));
    });
}

std::string hex64(std::uint64_t v) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = kHex[v & 0xF];
    return s;
}

// Takes ownership of an osip_malloc'd string.
std::string take(char* s) {
    if (!s) return {};
    std::string out(s);
    osip_free(s);
    return out;
}

std::string str(const char* s) { return s ? std::string(s) : std::string(); }

// A C string osip may keep and free.
char* dup(std::string_view s) {
    auto* p = static_cast<char*>(osip_malloc(s.size() + 1));
    std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
    return p;
}

std::string unquote(std::string s) {
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
    return s;
}

using text::lower;

NameAddr name_addr(osip_from_t* h) {
    NameAddr a;
    a.display = unquote(str(h->displayname));
    if (h->url) {
        char* u = nullptr;
        if (osip_uri_to_str(h->url, &u) == 0) a.uri = take(u);
    }
    for (int i = 0; !osip_list_eol(&h->gen_params, i); ++i) {
        auto* p = static_cast<osip_generic_param_t*>(osip_list_get(&h->gen_params, i));
        a.params.emplace_back(lower(str(p->gname)), str(p->gvalue));
    }
    return a;
}

std::string tag_of(osip_from_t* h) {
    osip_generic_param_t* t = nullptr;
    if (h && osip_from_get_tag(h, &t) == 0 && t && t->gvalue) return t->gvalue;
    return {};
}

osip_via_t* top_via_of(osip_message_t* m) { return static_cast<osip_via_t*>(osip_list_get(&m->vias, 0)); }

template <class H, class ToStr>
std::vector<std::string> list_to_strings(const osip_list_t* list, ToStr to_str) {
    std::vector<std::string> out;
    for (int i = 0; !osip_list_eol(list, i); ++i) {
        char* s = nullptr;
        if (to_str(static_cast<H*>(osip_list_get(list, i)), &s) == 0) out.push_back(take(s));
    }
    return out;
}

}  // namespace

std::string new_branch(const Random& random) { return std::string(kMagicCookie) + hex64(random()); }
std::string new_tag(const Random& random) { return hex64(random()); }
std::string new_call_id(const Random& random, std::string_view host) {
    std::string id = hex64(random());
    id += hex64(random());
    return id + "@" + std::string(host);
}

bool is_valid_uri(std::string_view uri) {
    ensure_parser();
    osip_uri_t* u = nullptr;
    if (uri.empty() || osip_uri_init(&u) != 0) return false;
    const bool ok = osip_uri_parse(u, std::string(uri).c_str()) == 0;
    osip_uri_free(u);
    return ok;
}

std::optional<std::string> NameAddr::param(std::string_view name) const {
    const auto want = lower(name);
    for (const auto& [k, v] : params)
        if (k == want) return v;
    return std::nullopt;
}

Message& Message::operator=(Message&& other) noexcept {
    if (this != &other) {
        if (m_) osip_message_free(m_);
        m_ = std::exchange(other.m_, nullptr);
    }
    return *this;
}

Message::~Message() {
    if (m_) osip_message_free(m_);
}

Message Message::clone() const {
    osip_message_t* c = nullptr;
    osip_message_clone(m_, &c);
    return Message(c);
}

Result<Message> Message::parse(std::string_view bytes) {
    ensure_parser();
    if (bytes.empty()) return Error{Status::BadRequest, "empty message"};
    osip_message_t* m = nullptr;
    if (osip_message_init(&m) != 0) return Error{Status::ServerInternalError, "out of memory"};
    Message msg(m);
    if (osip_message_parse(m, bytes.data(), bytes.size()) != 0) return Error{Status::BadRequest, "unparsable message"};
    if (MSG_IS_REQUEST(m) && (!m->sip_method || !m->req_uri)) return Error{Status::BadRequest, "bad request line"};
    return msg;
}

Result<Message> Message::request(std::string_view method, std::string_view request_uri) {
    ensure_parser();
    osip_message_t* m = nullptr;
    if (osip_message_init(&m) != 0) return Error{Status::ServerInternalError, "out of memory"};
    Message msg(m);
    osip_uri_t* uri = nullptr;
    osip_uri_init(&uri);
    const std::string u(request_uri);
    if (osip_uri_parse(uri, u.c_str()) != 0) {
        osip_uri_free(uri);
        return Error{Status::BadRequest, "bad Request-URI"};
    }
    osip_message_set_method(m, dup(method));
    osip_message_set_version(m, dup("SIP/2.0"));
    osip_message_set_uri(m, uri);
    return msg;
}

Message Message::response(const Message& request, int status, std::string_view reason, std::string_view to_tag) {
    ensure_parser();
    osip_message_t* m = nullptr;
    osip_message_init(&m);
    Message msg(m);
    const osip_message_t* r = request.m_;
    osip_message_set_version(m, dup("SIP/2.0"));
    osip_message_set_status_code(m, status);
    const char* phrase = osip_message_get_reason(status);
    osip_message_set_reason_phrase(m, dup(!reason.empty() ? reason : phrase ? phrase : "Unknown"));
    if (r == nullptr) return msg;   // a copy libosip2 could not make (clone() of what it cannot write)
    for (int i = 0; !osip_list_eol(&r->vias, i); ++i) {
        osip_via_t* v = nullptr;
        if (osip_via_clone(static_cast<osip_via_t*>(osip_list_get(&r->vias, i)), &v) == 0) osip_list_add(&m->vias, v, -1);
    }
    if (r->from) osip_from_clone(r->from, &m->from);
    if (r->to) osip_to_clone(r->to, &m->to);
    if (r->call_id) osip_call_id_clone(r->call_id, &m->call_id);
    if (r->cseq) osip_cseq_clone(r->cseq, &m->cseq);
    if (status > 100 && !to_tag.empty() && m->to && tag_of(m->to).empty()) osip_to_set_tag(m->to, dup(to_tag));
    // §12.1.1: a dialog-creating response carries the request's Record-Route values (a proxy on
    // the path, e.g. another fleet node, stays on the dialog's path for the caller too).
    if (status > 100 && status < 300)
        for (int i = 0; !osip_list_eol(&r->record_routes, i); ++i) {
            osip_record_route_t* rr = nullptr;
            if (osip_record_route_clone(static_cast<osip_record_route_t*>(osip_list_get(&r->record_routes, i)), &rr) == 0)
                osip_list_add(&m->record_routes, rr, -1);
        }
    return msg;
}

std::string Message::serialize() const {
    char* out = nullptr;
    std::size_t len = 0;
    if (osip_message_to_str(m_, &out, &len) != 0 || !out) return {};
    std::string s(out, len);
    osip_free(out);
    // osip pads the Content-Length value with spaces; legal (SWS), but peers and logs read better without.
    if (auto at = s.find("\r\nContent-Length: "); at != std::string::npos) {
        const auto digits = at + 18;
        const auto first = s.find_first_not_of(' ', digits);
        if (first != std::string::npos && first > digits) s.erase(digits, first - digits);
    }
    return s;
}

std::optional<Error> Message::validate() const {
    if (osip_list_size(&m_->vias) <= 0) return Error{Status::BadRequest, "missing Via"};
    // RFC 3261 §20.42: "SIP/2.0/transport sent-by"; osip accepts more, which we would echo back.
    for (int i = 0; !osip_list_eol(&m_->vias, i); ++i) {
        const auto* via = static_cast<const osip_via_t*>(osip_list_get(&m_->vias, i));
        if (!via->version || std::strcmp(via->version, "2.0") != 0 || !via->protocol || !via->host || !*via->host)
            return Error{Status::BadRequest, "bad Via"};
    }
    if (!m_->from || !m_->from->url) return Error{Status::BadRequest, "missing From"};
    if (!m_->to || !m_->to->url) return Error{Status::BadRequest, "missing To"};
    if (!m_->call_id) return Error{Status::BadRequest, "missing Call-ID"};
    if (!m_->cseq || !m_->cseq->number || !m_->cseq->method) return Error{Status::BadRequest, "missing CSeq"};
    char* end = nullptr;
    const unsigned long n = std::strtoul(m_->cseq->number, &end, 10);
    if (*end != '\0' || n > 0x7FFFFFFFul) return Error{Status::BadRequest, "bad CSeq number"};  // §8.1.1.5: < 2^31
    if (is_request() && std::strcmp(m_->cseq->method, m_->sip_method) != 0)
        return Error{Status::BadRequest, "CSeq method differs from request method"};  // §8.1.1.5
    if (auto mf = max_forwards(); is_request() && mf && *mf < 0) return Error{Status::BadRequest, "bad Max-Forwards"};
    return std::nullopt;
}

bool Message::is_request() const { return MSG_IS_REQUEST(m_); }
std::string Message::method() const { return is_request() ? str(m_->sip_method) : std::string(); }
int Message::status() const { return m_->status_code; }
std::string Message::reason() const { return str(m_->reason_phrase); }

std::string Message::request_uri() const {
    char* s = nullptr;
    if (!m_->req_uri || osip_uri_to_str(m_->req_uri, &s) != 0) return {};
    return take(s);
}

void Message::set_request_uri(std::string_view uri) {
    osip_uri_t* u = nullptr;
    osip_uri_init(&u);
    const std::string s(uri);
    if (osip_uri_parse(u, s.c_str()) != 0) {
        osip_uri_free(u);
        return;
    }
    if (m_->req_uri) osip_uri_free(m_->req_uri);
    m_->req_uri = u;
    osip_message_force_update(m_);
}

std::size_t Message::via_count() const { return static_cast<std::size_t>(std::max(0, osip_list_size(&m_->vias))); }

std::string Message::top_via() const {
    char* s = nullptr;
    auto* v = top_via_of(m_);
    if (!v || osip_via_to_str(v, &s) != 0) return {};
    return take(s);
}

std::string Message::top_via_branch() const {
    auto* v = top_via_of(m_);
    osip_generic_param_t* p = nullptr;
    if (!v || osip_via_param_get_byname(v, const_cast<char*>("branch"), &p) != 0 || !p) return {};
    return str(p->gvalue);
}

std::string Message::top_via_sent_by() const {
    auto* v = top_via_of(m_);
    if (!v) return {};
    std::string s = str(v->host);
    if (s.find(':') != std::string::npos && s.front() != '[') s = "[" + s + "]";  // IPv6 reference
    if (v->port) s += ":" + str(v->port);
    return s;
}

std::string Message::top_via_transport() const {
    auto* v = top_via_of(m_);
    return v ? str(v->protocol) : std::string();
}

void Message::push_via(std::string_view transport, std::string_view sent_by, std::string_view branch) {
    std::string value = "SIP/2.0/" + std::string(transport) + " " + std::string(sent_by) + ";branch=" + std::string(branch);
    osip_via_t* v = nullptr;
    osip_via_init(&v);
    if (osip_via_parse(v, value.c_str()) != 0) {
        osip_via_free(v);
        return;
    }
    osip_list_add(&m_->vias, v, 0);
    osip_message_force_update(m_);
}

void Message::pop_via() {
    if (auto* v = top_via_of(m_)) {
        osip_list_remove(&m_->vias, 0);
        osip_via_free(v);
        osip_message_force_update(m_);
    }
}

std::string Message::call_id() const {
    char* s = nullptr;
    if (!m_->call_id || osip_call_id_to_str(m_->call_id, &s) != 0) return {};
    return take(s);
}

void Message::set_call_id(std::string_view value) {
    if (m_->call_id) osip_call_id_free(m_->call_id), m_->call_id = nullptr;
    osip_message_set_call_id(m_, std::string(value).c_str());
}

std::uint32_t Message::cseq() const {
    if (!m_->cseq || !m_->cseq->number) return 0;
    return static_cast<std::uint32_t>(std::strtoul(m_->cseq->number, nullptr, 10));
}

std::string Message::cseq_method() const { return m_->cseq ? str(m_->cseq->method) : std::string(); }

void Message::set_cseq(std::uint32_t number, std::string_view method) {
    if (m_->cseq) osip_cseq_free(m_->cseq), m_->cseq = nullptr;
    osip_message_set_cseq(m_, (std::to_string(number) + " " + std::string(method)).c_str());
}

std::optional<NameAddr> Message::from() const {
    if (!m_->from) return std::nullopt;
    return name_addr(m_->from);
}

std::optional<NameAddr> Message::to() const {
    if (!m_->to) return std::nullopt;
    return name_addr(m_->to);
}

std::string Message::from_tag() const { return tag_of(m_->from); }
std::string Message::to_tag() const { return tag_of(m_->to); }

std::string Message::from_header() const {
    char* s = nullptr;
    if (!m_->from || osip_from_to_str(m_->from, &s) != 0) return {};
    return take(s);
}

std::string Message::to_header() const {
    char* s = nullptr;
    if (!m_->to || osip_to_to_str(m_->to, &s) != 0) return {};
    return take(s);
}

void Message::set_from(std::string_view value) {
    if (m_->from) osip_from_free(m_->from), m_->from = nullptr;
    osip_message_set_from(m_, std::string(value).c_str());
}

void Message::set_to(std::string_view value) {
    if (m_->to) osip_to_free(m_->to), m_->to = nullptr;
    osip_message_set_to(m_, std::string(value).c_str());
}

void Message::set_to_tag(std::string_view tag) {
    if (!m_->to) return;
    osip_generic_param_t* t = nullptr;
    if (osip_to_get_tag(m_->to, &t) == 0 && t) {
        osip_free(t->gvalue);
        t->gvalue = dup(tag);
    } else {
        osip_to_set_tag(m_->to, dup(tag));
    }
    osip_message_force_update(m_);
}

std::vector<NameAddr> Message::contacts() const {
    std::vector<NameAddr> out;
    for (int i = 0; !osip_list_eol(&m_->contacts, i); ++i) {
        auto* c = static_cast<osip_contact_t*>(osip_list_get(&m_->contacts, i));
        // RFC 3261 §10.2.2: "Contact: *" (osip keeps the star as the display name, no URI).
        if (!c->url && c->displayname && std::strcmp(c->displayname, "*") == 0) {
            out.push_back(NameAddr{"", "*", {}});
            continue;
        }
        out.push_back(name_addr(c));
    }
    return out;
}

void Message::add_contact(std::string_view value) { osip_message_set_contact(m_, std::string(value).c_str()); }

std::vector<std::string> Message::record_routes() const {
    return list_to_strings<osip_record_route_t>(&m_->record_routes, osip_record_route_to_str);
}

std::vector<std::string> Message::routes() const { return list_to_strings<osip_route_t>(&m_->routes, osip_route_to_str); }

void Message::add_record_route(std::string_view value) {
    osip_message_set_record_route(m_, std::string(value).c_str());
}

void Message::pop_route() {
    if (auto* r = static_cast<osip_route_t*>(osip_list_get(&m_->routes, 0))) {
        osip_list_remove(&m_->routes, 0);
        osip_route_free(r);
        osip_message_force_update(m_);
    }
}

void Message::add_route(std::string_view value) { osip_message_set_route(m_, std::string(value).c_str()); }

std::optional<std::string> Message::header(std::string_view name, int pos) const {
    // libosip2's parser files Allow in its own list, not among the other headers.
    if (lower(name) == "allow") {
        osip_allow_t* a = nullptr;
        if (osip_message_get_allow(m_, pos, &a) < 0 || !a) return std::nullopt;
        return str(a->value);
    }
    osip_header_t* h = nullptr;
    if (osip_message_header_get_byname(m_, lower(name).c_str(), pos, &h) < 0 || !h) return std::nullopt;
    return str(h->hvalue);
}

std::size_t Message::header_count(std::string_view name) const {
    std::size_t n = 0;
    osip_header_t* h = nullptr;
    const auto lname = lower(name);
    for (int pos = 0; (pos = osip_message_header_get_byname(m_, lname.c_str(), pos, &h)) >= 0; ++pos) ++n;
    return n;
}

void Message::add_header(std::string_view name, std::string_view value) {
    osip_message_set_header(m_, std::string(name).c_str(), std::string(value).c_str());
}

void Message::remove_header(std::string_view name) {
    const auto want = lower(name);
    for (int pos = 0; osip_header_t* h = static_cast<osip_header_t*>(osip_list_get(&m_->headers, pos));) {
        if (h->hname != nullptr && lower(h->hname) == want) {
            osip_list_remove(&m_->headers, pos);
            osip_header_free(h);
        } else {
            ++pos;
        }
    }
}

bool Message::has_option_tag(std::string_view name, std::string_view option) const {
    for (int pos = 0; auto v = header(name, pos); ++pos) {
        std::string_view rest(*v);
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            auto tag = rest.substr(0, comma);
            while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
            while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
            if (lower(tag) == lower(option)) return true;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return false;
}

std::vector<std::string> Message::auth_headers(AuthHeader which) const {
    switch (which) {
    case AuthHeader::WwwAuthenticate:
        return list_to_strings<osip_www_authenticate_t>(&m_->www_authenticates, osip_www_authenticate_to_str);
    case AuthHeader::ProxyAuthenticate:
        return list_to_strings<osip_proxy_authenticate_t>(&m_->proxy_authenticates, osip_www_authenticate_to_str);
    case AuthHeader::Authorization:
        return list_to_strings<osip_authorization_t>(&m_->authorizations, osip_authorization_to_str);
    case AuthHeader::ProxyAuthorization:
        return list_to_strings<osip_proxy_authorization_t>(&m_->proxy_authorizations, osip_authorization_to_str);
    }
    return {};
}

void Message::add_auth_header(AuthHeader which, std::string_view value) {
    const std::string v(value);
    switch (which) {
    case AuthHeader::WwwAuthenticate: osip_message_set_www_authenticate(m_, v.c_str()); break;
    case AuthHeader::ProxyAuthenticate: osip_message_set_proxy_authenticate(m_, v.c_str()); break;
    case AuthHeader::Authorization: osip_message_set_authorization(m_, v.c_str()); break;
    case AuthHeader::ProxyAuthorization: osip_message_set_proxy_authorization(m_, v.c_str()); break;
    }
}

void Message::set_max_forwards(int hops) { add_header("Max-Forwards", std::to_string(hops)); }

std::optional<int> Message::max_forwards() const {
    auto v = header("max-forwards");
    if (!v) return std::nullopt;
    char* end = nullptr;
    const long n = std::strtol(v->c_str(), &end, 10);
    if (v->empty() || *end != '\0' || n < 0 || n > 255) return -1;
    return static_cast<int>(n);
}

std::string Message::body() const {
    osip_body_t* b = nullptr;
    if (osip_message_get_body(m_, 0, &b) < 0 || !b || !b->body) return {};
    return std::string(b->body, b->length);
}

std::string Message::content_type() const {
    if (!m_->content_type || !m_->content_type->type) return {};
    return str(m_->content_type->type) + "/" + str(m_->content_type->subtype);
}

void Message::set_body(std::string_view content_type, std::string_view body) {
    if (m_->content_type) osip_content_type_free(m_->content_type), m_->content_type = nullptr;
    // The message's body is replaced: osip_message_set_body appends one more (a parsed INVITE
    // re-sent with another offer kept its first body, which body() and the peer then read).
    osip_list_special_free(&m_->bodies, [](void* b) { osip_body_free(static_cast<osip_body_t*>(b)); });
    osip_message_set_content_type(m_, std::string(content_type).c_str());
    osip_message_set_body(m_, body.data(), body.size());
}

}  // namespace turnbridge::sip
