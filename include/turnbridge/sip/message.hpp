// SPDX-License-Identifier: Apache-2.0
#pragma once
// A SIP message: a thin owner of libosip2's osip_message_t (parser and builder), with the
// accessors transactions, dialogs and the registrar need. Values are copied out as strings so
// callers never hold pointers into osip's lists.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "turnbridge/sip/types.hpp"

struct osip_message;

namespace turnbridge::sip {

// RFC 3261 §8.1.1.7: every branch we mint starts with the magic cookie.
inline constexpr std::string_view kMagicCookie = "z9hG4bK";

std::string new_branch(const Random& random);   // "z9hG4bK" + 16 hex digits
std::string new_tag(const Random& random);      // 16 hex digits (§19.3: at least 32 bits)
std::string new_call_id(const Random& random, std::string_view host);
// Would libosip2 accept this as a Request-URI? (Contacts become targets: RFC 3261 §12.1.)
bool is_valid_uri(std::string_view uri);

// A name-addr header value (From, To, Contact, Route...) taken apart.
struct NameAddr {
    std::string display;
    std::string uri;                                        // "sip:alice@example.org;transport=ws"
    std::vector<std::pair<std::string, std::string>> params;  // header params, names lower-case
    std::optional<std::string> param(std::string_view name) const;
};

// The authentication headers libosip2 parses into lists of their own (RFC 3261 §20.7, §20.27,
// §20.28, §20.44): values come back as text for digest.cpp to read.
enum class AuthHeader { WwwAuthenticate, ProxyAuthenticate, Authorization, ProxyAuthorization };

class Message {
public:
    // Fails only when libosip2 cannot read it at all; see validate() for the RFC checks.
    static Result<Message> parse(std::string_view bytes);
    // A request with the start line only; headers follow with the setters. Fails on a bad URI.
    static Result<Message> request(std::string_view method, std::string_view request_uri);
    // RFC 3261 §8.2.6: Via (all), From, To, Call-ID and CSeq copied; `to_tag` added to To unless
    // the status is 100 or To already carries one. Reason phrase from §21 when empty.
    static Message response(const Message& request, int status, std::string_view reason = {},
                            std::string_view to_tag = {});

    Message(Message&& other) noexcept : m_(std::exchange(other.m_, nullptr)) {}
    Message& operator=(Message&& other) noexcept;
    Message(const Message&) = delete;
    Message& operator=(const Message&) = delete;
    ~Message();
    Message clone() const;

    std::string serialize() const;
    // RFC 3261 §8.2.2 / §8.1.3.3: the headers a transaction needs; the error names the first gap.
    std::optional<Error> validate() const;

    // Start line
    bool is_request() const;
    std::string method() const;        // requests only
    int status() const;                // responses only; 0 for requests
    std::string reason() const;
    std::string request_uri() const;
    void set_request_uri(std::string_view uri);

    // Via (RFC 3261 §8.1.1.7, §18.2.1)
    std::size_t via_count() const;
    std::string top_via() const;
    std::string top_via_branch() const;
    std::string top_via_sent_by() const;   // "host[:port]"
    std::string top_via_transport() const; // "UDP", "WS", ...
    void push_via(std::string_view transport, std::string_view sent_by, std::string_view branch);
    void pop_via();

    // Dialog identifiers (RFC 3261 §12)
    std::string call_id() const;
    void set_call_id(std::string_view value);
    std::uint32_t cseq() const;
    std::string cseq_method() const;
    void set_cseq(std::uint32_t number, std::string_view method);
    std::optional<NameAddr> from() const;
    std::optional<NameAddr> to() const;
    std::string from_tag() const;
    std::string to_tag() const;
    std::string from_header() const;   // the whole value, "\"Alice\" <sip:a@x>;tag=1"
    std::string to_header() const;
    void set_from(std::string_view value);
    void set_to(std::string_view value);
    void set_to_tag(std::string_view tag);

    std::vector<NameAddr> contacts() const;
    void add_contact(std::string_view value);
    std::vector<std::string> record_routes() const;   // header values, top first
    std::vector<std::string> routes() const;
    void add_record_route(std::string_view value);
    void add_route(std::string_view value);
    void pop_route();   // the top Route (a proxy's own, RFC 3261 §16.4); remove_header cannot

    // Any other header, by name (case-insensitive); compact forms are expanded by the parser.
    std::optional<std::string> header(std::string_view name, int pos = 0) const;
    void add_header(std::string_view name, std::string_view value);
    // How many headers of that name (not Allow or the parsed lists); `pos` of header() is where
    // libosip2 starts looking, not the n-th one.
    std::size_t header_count(std::string_view name) const;
    void remove_header(std::string_view name);   // every instance; not for Allow or the parsed lists
    // RFC 3261 §20.37 Supported, §20.32 Require: is `option` among the option tags of `name`?
    bool has_option_tag(std::string_view name, std::string_view option) const;
    std::vector<std::string> auth_headers(AuthHeader which) const;
    void add_auth_header(AuthHeader which, std::string_view value);
    void set_max_forwards(int hops);
    std::optional<int> max_forwards() const;

    std::string body() const;
    std::string content_type() const;  // "application/sdp", "" if none
    void set_body(std::string_view content_type, std::string_view body);

    osip_message* raw() const { return m_; }

private:
    explicit Message(osip_message* m) : m_(m) {}
    osip_message* m_ = nullptr;
};

}  // namespace turnbridge::sip
