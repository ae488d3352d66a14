// SPDX-License-Identifier: Apache-2.0
#pragma once
// A small JSON writer for the admin API (RFC 8259), and the UTC time texts it needs. The
// strings it writes are valid UTF-8 whatever they were given: a TURN USERNAME is client input.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace turnbridge::admin {

// Appends `s` as a JSON string with quotes. Control characters become \u00XX; bytes that are not
// UTF-8 become U+FFFD; <, > and & are escaped so that no JSON body can be sniffed as HTML.
void append_json_string(std::string& out, std::string_view s);
// Length of the well-formed UTF-8 character that starts `s` (RFC 3629 §4), 0 when there is none.
std::size_t utf8_char_length(std::string_view s);

// Writes values in order and puts the commas in: `j.begin_object().key("a").value(1).end_object()`.
class JsonWriter {
public:
    JsonWriter& begin_object();
    JsonWriter& end_object();
    JsonWriter& begin_array();
    JsonWriter& end_array();
    JsonWriter& key(std::string_view k);
    JsonWriter& value(std::string_view s);
    JsonWriter& value(const char* s) { return value(std::string_view(s)); }
    JsonWriter& value(std::uint64_t n);
    JsonWriter& value(std::int64_t n);
    JsonWriter& value(std::uint32_t n) { return value(static_cast<std::uint64_t>(n)); }
    JsonWriter& value(double d);  // NaN and infinities are null (JSON has no such numbers)
    JsonWriter& value(bool b);
    JsonWriter& null();
    std::string take() { return std::move(out_); }

private:
    void separate();
    std::string out_;
    std::vector<bool> first_;  // one entry per open object/array: nothing written in it yet
    bool after_key_ = false;
};

// "2026-11-01T12:34:56Z" (ISO 8601 / RFC 3339, UTC, whole seconds) for unix milliseconds.
std::string iso8601_utc(std::int64_t unix_ms);
// "Sun, 01 Nov 2026 12:34:56 GMT" (RFC 9110 §5.6.7 IMF-fixdate).
std::string http_date(std::int64_t unix_ms);

}  // namespace turnbridge::admin
