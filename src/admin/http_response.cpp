// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/admin/http_response.hpp"

#include <fmt/format.h>

#include "turnbridge/admin/json.hpp"

namespace turnbridge::admin {

std::string_view reason_phrase(int status) {
    switch (status) {
        case 200: return "OK";
        case 204: return "No Content";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

Response json_error(int status, std::string_view message, std::string_view parameter) {
    JsonWriter j;
    j.begin_object().key("error").value(message);
    if (!parameter.empty()) j.key("parameter").value(parameter);
    j.end_object();
    Response r;
    r.status = status;
    r.content_type = "application/json";
    r.body = j.take() + "\n";
    return r;
}

std::string serialize(const Response& r, bool keep_alive, bool head_only, std::int64_t now_ms) {
    std::string out = fmt::format("HTTP/1.1 {} {}\r\nDate: {}\r\n", r.status, reason_phrase(r.status), http_date(now_ms));
    // RFC 9110 §8.6: no Content-Length on 204; everything else is framed by it.
    const bool has_body = r.status != 204 && r.status >= 200;
    if (has_body) {
        if (!r.content_type.empty()) fmt::format_to(std::back_inserter(out), "Content-Type: {}\r\n", r.content_type);
        fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n", r.body.size());
    }
    // Usage and live allocations change all the time and may be private: never stored. No body
    // is sniffed as another type than it says (a JSON body holding markup is not HTML).
    out += "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
    out += (keep_alive && !r.close) ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    for (const auto& h : r.headers) fmt::format_to(std::back_inserter(out), "{}: {}\r\n", h.name, h.value);
    out += "\r\n";
    if (has_body && !head_only) out += r.body;
    return out;
}

}  // namespace turnbridge::admin
