// SPDX-License-Identifier: Apache-2.0
#pragma once
// SIP over a byte stream (TCP, RFC 3261 §18.3): messages are cut by the blank line ending the
// header block plus Content-Length (mandatory on streams; compact form "l"). CRLFs between
// messages are keep-alives (RFC 5626 §3.5.1) and skipped. Sans-I/O: bytes in, messages out.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace turnbridge::sip {

class SipStreamFramer {
public:
    static constexpr std::size_t kMaxHeader = 16 * 1024;
    static constexpr std::size_t kMaxBody = 64 * 1024;

    void feed(std::string_view bytes) { buffer_.append(bytes); }
    enum class Status { Message, NeedMore, Error };
    // Error: no Content-Length, a bad one, or a message over the limits; the stream cannot be
    // resynchronised and should be closed.
    Status next(std::string& message);
    std::size_t buffered() const { return buffer_.size(); }

private:
    std::string buffer_;
};

}  // namespace turnbridge::sip
