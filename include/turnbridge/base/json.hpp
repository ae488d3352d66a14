// SPDX-License-Identifier: Apache-2.0
#pragma once
// The one JSON writer (RFC 8259) of the admin API, `turnbridge report` and anything else that
// writes JSON. Its strings are valid UTF-8 whatever they were given (a TURN USERNAME or a SIP
// display name is client input) and safe to embed in HTML or a <script> block.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace turnbridge {

// Appends `s` as a JSON string with quotes. Control characters (and DEL) become \u00XX; bytes that
// are not UTF-8 become \ufffd; <, > and & become \u003c, \u003e and \u0026 so that no body can be
// sniffed as HTML nor close a <script>; U+2028 and U+2029 are escaped as JavaScript before ES2019
// takes them for line ends.
void append_json_string(std::string& out, std::string_view s);

enum class JsonStyle { Compact, Spaced };  // Spaced: "a": 1, "b": 2 (the report's rows)

// Writes values in order and puts the commas in: `j.begin_object().key("a").value(1).end_object()`.
class JsonWriter {
public:
    explicit JsonWriter(JsonStyle style = JsonStyle::Compact) : spaced_(style == JsonStyle::Spaced) {}
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
    bool spaced_ = false;
};

}  // namespace turnbridge
