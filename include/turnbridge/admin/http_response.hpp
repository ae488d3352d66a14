// SPDX-License-Identifier: Apache-2.0
#pragma once
// HTTP/1.1 responses of the admin server and their bytes on the wire (RFC 9112 §4, §6).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "turnbridge/admin/http_request.hpp"

namespace turnbridge::admin {

struct Response {
    int status = 200;
    std::string content_type;     // "" for a response without a body (204)
    std::vector<Header> headers;  // extra fields: Allow, WWW-Authenticate, ...
    std::string body;
    bool close = false;           // the connection closes after this response
};

std::string_view reason_phrase(int status);

// A response whose body is {"error": message} (plus "parameter" when given).
Response json_error(int status, std::string_view message, std::string_view parameter = {});

// Status line, Date, Content-Type, Content-Length (none on 204), Cache-Control: no-store,
// X-Content-Type-Options: nosniff, Connection, the extra fields, then the body. `head_only` (a HEAD request) leaves the body out
// but keeps its Content-Length (RFC 9110 §9.3.2).
std::string serialize(const Response& r, bool keep_alive, bool head_only, std::int64_t now_ms);

}  // namespace turnbridge::admin
