// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/admin/http_request.hpp"

#include <algorithm>
#include <charconv>

namespace turnbridge::admin {
namespace {

constexpr std::string_view kCrlf = "\r\n";

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

// RFC 9110 §5.6.2 tchar.
bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

// RFC 9110 §5.5: field-value characters are VCHAR, obs-text, SP and HTAB.
bool is_field_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7F);
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}


// Calls f(token) for each element of a comma-separated list (RFC 9110 §5.6.1).
template <class F>
void for_each_list_item(std::string_view list, F f) {
    while (!list.empty()) {
        const auto comma = list.find(',');
        const auto item = trim_ows(list.substr(0, comma));
        if (!item.empty()) f(item);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

}  // namespace

const std::string* Request::header(std::string_view name) const {
    for (const auto& h : headers)
        if (iequals(h.name, name)) return &h.value;
    return nullptr;
}

const std::string* Request::param(std::string_view name) const {
    for (const auto& [k, v] : query)
        if (k == name) return &v;
    return nullptr;
}

bool parse_target(std::string_view target, std::string& path, QueryParams& query) {
    // RFC 9112 §3.2.1: origin-form is an absolute path and an optional query; no fragment.
    if (target.empty() || target.front() != '/' || target.find('#') != std::string_view::npos) return false;
    const auto q = target.find('?');
    auto decoded = percent_decode(target.substr(0, q), false);
    if (!decoded) return false;
    path = std::move(*decoded);
    query.clear();
    if (q == std::string_view::npos) return true;
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        if (!pair.empty()) {
            const auto eq = pair.find('=');
            auto k = percent_decode(pair.substr(0, eq), true);
            auto v = percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
            if (!k || !v) return false;
            query.emplace_back(std::move(*k), std::move(*v));
        }
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return true;
}

RequestParser::Status RequestParser::fail(int status, std::string_view text) {
    error_status_ = status;
    error_text_ = text;
    return Status::Error;
}

RequestParser::Status RequestParser::next(Request& out) {
    if (error_status_ != 0) return Status::Error;
    if (!have_head_) {
        // RFC 9112 §2.2: empty lines before the request line are ignored.
        std::size_t skip = 0;
        while (buf_.compare(skip, 2, kCrlf) == 0) skip += 2;
        if (skip > 0) {
            buf_.erase(0, skip);
            scan_from_ = 0;
        }
        const auto end = buf_.find("\r\n\r\n", scan_from_);
        // RFC 9112 §2.2: a bare LF may be accepted as a line end; here it is refused at once
        // rather than left waiting for a CRLF CRLF that never comes.
        const auto head_end = end == std::string::npos ? buf_.size() : end;
        for (auto lf = buf_.find('\n', scan_from_); lf < head_end; lf = buf_.find('\n', lf + 1))
            if (lf == 0 || buf_[lf - 1] != '\r') return fail(400, "bare LF in the request head");
        if (end == std::string::npos) {
            if (buf_.size() > kMaxHeaderBytes) return fail(431, "request header fields too large");
            scan_from_ = buf_.size() > 3 ? buf_.size() - 3 : 0;
            return Status::NeedMore;
        }
        head_len_ = end + 4;
        if (head_len_ > kMaxHeaderBytes) return fail(431, "request header fields too large");
        pending_ = Request{};
        if (parse_head(std::string_view(buf_).substr(0, end + 2)) == Status::Error) return Status::Error;
        have_head_ = true;
    }
    if (buf_.size() - head_len_ < body_len_) return Status::NeedMore;
    pending_.body.assign(buf_, head_len_, body_len_);
    buf_.erase(0, head_len_ + body_len_);
    have_head_ = false;
    scan_from_ = 0;
    head_len_ = body_len_ = 0;
    out = std::move(pending_);
    pending_ = Request{};
    return Status::Ready;
}

// `head`: the request line and each field line, every one ending in CRLF.
RequestParser::Status RequestParser::parse_head(std::string_view head) {
    auto eol = head.find(kCrlf);
    if (parse_request_line(head.substr(0, eol)) == Status::Error) return Status::Error;
    head.remove_prefix(eol + 2);
    while (!head.empty()) {
        eol = head.find(kCrlf);
        if (pending_.headers.size() >= kMaxHeaders) return fail(431, "too many header fields");
        if (parse_field(head.substr(0, eol)) == Status::Error) return Status::Error;
        head.remove_prefix(eol + 2);
    }
    return check_framing();
}

RequestParser::Status RequestParser::parse_request_line(std::string_view line) {
    // RFC 9112 §3: method SP request-target SP HTTP-version, single spaces.
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return fail(400, "malformed request line");
    const auto method = line.substr(0, sp1);
    const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const auto version = line.substr(sp2 + 1);
    if (!is_token(method)) return fail(400, "malformed method");
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
        version[5] > '9' || version[7] < '0' || version[7] > '9')
        return fail(400, "malformed HTTP version");
    if (version[5] != '1') return fail(505, "HTTP version not supported");
    for (char c : target)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7F)
            return fail(400, "malformed request target");
    pending_.method = std::string(method);
    pending_.target = std::string(target);
    pending_.minor_version = version[7] - '0';
    if (!parse_target(target, pending_.path, pending_.query)) return fail(400, "malformed request target");
    return Status::Ready;
}

RequestParser::Status RequestParser::parse_field(std::string_view line) {
    // RFC 9112 §5.2: obs-fold is rejected; §5.1: no whitespace between name and colon.
    if (line.empty() || line.front() == ' ' || line.front() == '\t') return fail(400, "folded header field");
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return fail(400, "malformed header field");
    const auto value = trim_ows(line.substr(colon + 1));
    if (!std::all_of(value.begin(), value.end(), is_field_char)) return fail(400, "malformed header field value");
    Header h{std::string(line.substr(0, colon)), std::string(value)};
    std::transform(h.name.begin(), h.name.end(), h.name.begin(), lower);
    pending_.headers.push_back(std::move(h));
    return Status::Ready;
}

// Body length, Host and persistence, once every field is known.
RequestParser::Status RequestParser::check_framing() {
    Request& r = pending_;
    const std::string* content_length = nullptr;
    int hosts = 0;
    bool close = false, keep_alive = false;
    for (const auto& h : r.headers) {
        if (h.name == "transfer-encoding") {
            // RFC 9112 §6.1: chunked is mandatory for a full server; this one asks for a length.
            bool chunked = false;
            for_each_list_item(h.value, [&](std::string_view t) { chunked = chunked || iequals(t, "chunked"); });
            return chunked ? fail(411, "chunked bodies are not accepted; send Content-Length")
                           : fail(501, "transfer coding not implemented");
        }
        if (h.name == "content-length") {
            // RFC 9112 §6.3: differing or malformed lengths are unrecoverable framing errors.
            if (content_length != nullptr && *content_length != h.value) return fail(400, "conflicting Content-Length");
            content_length = &h.value;
        }
        if (h.name == "host") ++hosts;
        if (h.name == "connection") {
            for_each_list_item(h.value, [&](std::string_view t) {
                close = close || iequals(t, "close");
                keep_alive = keep_alive || iequals(t, "keep-alive");
            });
        }
    }
    // RFC 9112 §3.2: a 1.1 request without exactly one Host field gets 400.
    if (hosts > 1 || (r.minor_version >= 1 && hosts == 0)) return fail(400, "missing or repeated Host");
    body_len_ = 0;
    if (content_length != nullptr) {
        const auto& v = *content_length;
        std::size_t n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (!v.empty() && v.front() >= '0' && v.front() <= '9' && ec == std::errc::result_out_of_range)
            return fail(413, "body too large");
        if (v.empty() || ec != std::errc() || end != v.data() + v.size() || v.front() < '0' || v.front() > '9')
            return fail(400, "malformed Content-Length");
        if (n > kMaxBodyBytes) return fail(413, "body too large");
        body_len_ = n;
    }
    r.keep_alive = close ? false : (r.minor_version >= 1 || keep_alive);
    return Status::Ready;
}

}  // namespace turnbridge::admin
