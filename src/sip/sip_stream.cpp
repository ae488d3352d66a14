// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/sip_stream.hpp"

#include <cctype>
#include <charconv>

namespace turnbridge::sip {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The Content-Length of a header block (RFC 3261 §20.14, compact "l"), nullopt if absent or bad.
std::optional<std::size_t> content_length(std::string_view head) {
    std::optional<std::size_t> found;
    for (std::size_t pos = 0; pos < head.size();) {
        auto end = head.find("\r\n", pos);
        if (end == std::string_view::npos) end = head.size();
        const auto line = head.substr(pos, end - pos);
        pos = end + 2;
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        const auto name = trim(line.substr(0, colon));
        if (!iequals(name, "content-length") && !iequals(name, "l")) continue;
        const auto value = trim(line.substr(colon + 1));
        std::size_t n = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || p != value.data() + value.size()) return std::nullopt;
        if (found && *found != n) return std::nullopt;
        found = n;
    }
    return found;
}

}  // namespace

SipStreamFramer::Status SipStreamFramer::next(std::string& message) {
    const auto start = buffer_.find_first_not_of("\r\n");
    if (start == std::string::npos) {
        buffer_.clear();
        return Status::NeedMore;
    }
    if (start > 0) buffer_.erase(0, start);
    const auto blank = buffer_.find("\r\n\r\n");
    if (blank == std::string::npos) return buffer_.size() > kMaxHeader ? Status::Error : Status::NeedMore;
    if (blank > kMaxHeader) return Status::Error;
    const auto length = content_length(std::string_view(buffer_).substr(0, blank + 2));
    if (!length || *length > kMaxBody) return Status::Error;
    const std::size_t total = blank + 4 + *length;
    if (buffer_.size() < total) return Status::NeedMore;
    message.assign(buffer_, 0, total);
    buffer_.erase(0, total);
    return Status::Message;
}

}  // namespace turnbridge::sip
