// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/base/json.hpp"

#include <cmath>
#include <fmt/format.h>

#include "turnbridge/base/utf8.hpp"

namespace turnbridge {

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    while (!s.empty()) {
        const auto c = static_cast<unsigned char>(s[0]);
        std::size_t n = 1;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '<': case '>': case '&': fmt::format_to(std::back_inserter(out), "\\u{:04x}", c); break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
                } else if (c < 0x80) {
                    out.push_back(static_cast<char>(c));
                } else if ((n = utf8_char_length(s)) == 0) {
                    out += "\\ufffd";
                    n = 1;
                } else if (n == 3 && s.substr(0, 2) == "\xE2\x80" && (s[2] == '\xA8' || s[2] == '\xA9')) {
                    out += s[2] == '\xA8' ? "\\u2028" : "\\u2029";
                } else {
                    out.append(s.substr(0, n));
                }
        }
        s.remove_prefix(n);
    }
    out.push_back('"');
}

void JsonWriter::separate() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (first_.empty()) return;
    if (!first_.back()) out_ += spaced_ ? ", " : ",";
    first_.back() = false;
}

JsonWriter& JsonWriter::begin_object() {
    separate();
    out_.push_back('{');
    first_.push_back(true);
    return *this;
}

JsonWriter& JsonWriter::end_object() {
    out_.push_back('}');
    first_.pop_back();
    return *this;
}

JsonWriter& JsonWriter::begin_array() {
    separate();
    out_.push_back('[');
    first_.push_back(true);
    return *this;
}

JsonWriter& JsonWriter::end_array() {
    out_.push_back(']');
    first_.pop_back();
    return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
    separate();
    append_json_string(out_, k);
    out_ += spaced_ ? ": " : ":";
    after_key_ = true;
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
    separate();
    append_json_string(out_, s);
    return *this;
}

JsonWriter& JsonWriter::value(std::uint64_t n) {
    separate();
    fmt::format_to(std::back_inserter(out_), "{}", n);
    return *this;
}

JsonWriter& JsonWriter::value(std::int64_t n) {
    separate();
    fmt::format_to(std::back_inserter(out_), "{}", n);
    return *this;
}

JsonWriter& JsonWriter::value(double d) {
    if (!std::isfinite(d)) return null();
    separate();
    // Shortest text that reads back as the same double; fmt never writes a bare "." or "inf".
    fmt::format_to(std::back_inserter(out_), "{}", d);
    return *this;
}

JsonWriter& JsonWriter::value(bool b) {
    separate();
    out_ += b ? "true" : "false";
    return *this;
}

JsonWriter& JsonWriter::null() {
    separate();
    out_ += "null";
    return *this;
}

}  // namespace turnbridge
