// SPDX-License-Identifier: Apache-2.0
#pragma once
// Sans-I/O HTTP/1.1 request parsing (RFC 9112) for the admin server: bytes in, whole requests
// out. Only what an admin API needs: origin-form targets, Content-Length bodies, keep-alive.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "turnbridge/base/percent.hpp"

namespace turnbridge::admin {

constexpr std::size_t kMaxHeaderBytes = 8 * 1024;  // request line + header fields + blank line
constexpr std::size_t kMaxBodyBytes = 64 * 1024;
constexpr std::size_t kMaxHeaders = 100;

struct Header {
    std::string name;   // lower case on requests; as written on responses
    std::string value;
};

using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct Request {
    std::string method;          // case-sensitive (RFC 9110 §9.1): "GET", "DELETE", ...
    std::string target;          // as sent, e.g. "/api/v1/usage?by=day"
    std::string path;            // percent-decoded, e.g. "/api/v1/usage"
    QueryParams query;           // percent-decoded, '+' read as a space, in order
    int minor_version = 1;       // HTTP/1.0 or HTTP/1.1
    std::vector<Header> headers;
    std::string body;
    bool keep_alive = true;      // RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive"

    // The first field of that name (any case), or nullptr.
    const std::string* header(std::string_view name) const;
    // The first query parameter of that name, or nullptr.
    const std::string* param(std::string_view name) const;
};

using turnbridge::percent_decode;   // base/percent.hpp
// Splits an origin-form target ("/path?query") into a decoded path and query; false when the
// target is not origin-form or an escape is bad.
bool parse_target(std::string_view target, std::string& path, QueryParams& query);

// Feed bytes as they arrive; take complete requests with next(). Pipelined requests come out
// one by one; the bytes of a following request stay buffered.
class RequestParser {
public:
    enum class Status { NeedMore, Ready, Error };

    void feed(std::string_view bytes) { buf_.append(bytes); }
    // Ready: `out` holds the next request. Error: answer error_status() and close; every later
    // call returns Error again.
    Status next(Request& out);

    int error_status() const { return error_status_; }       // 400, 411, 413, 431, 501 or 505
    std::string_view error_text() const { return error_text_; }
    std::size_t buffered() const { return buf_.size(); }

private:
    Status fail(int status, std::string_view text);
    Status parse_head(std::string_view head);
    Status parse_request_line(std::string_view line);
    Status parse_field(std::string_view line);
    Status check_framing();

    std::string buf_;
    std::size_t scan_from_ = 0;   // the search for the blank line resumes here
    bool have_head_ = false;
    std::size_t head_len_ = 0;
    std::size_t body_len_ = 0;
    Request pending_;
    int error_status_ = 0;
    std::string_view error_text_;
};

}  // namespace turnbridge::admin
