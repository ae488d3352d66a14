// SPDX-License-Identifier: Apache-2.0
#pragma once
// The one JSON reader (RFC 8259), for messages from outsiders (an AI agent's Media Streams
// messages, issue 17). Bounded: nesting past `max_depth` or input past `max_bytes` is refused,
// never recursed into or buffered; bad input is nullopt, never a throw.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnbridge {

struct JsonMember;

struct JsonValue {
    enum class Type { Null, Bool, Number, String, Array, Object };
    Type type = Type::Null;
    bool boolean = false;
    double number = 0;
    std::string string;              // String (unescaped, UTF-8)
    std::vector<JsonValue> items;    // Array
    std::vector<JsonMember> members; // Object, in document order (a repeated key: the first wins)

    bool is_object() const { return type == Type::Object; }
    bool is_string() const { return type == Type::String; }
    // The member `key` of an object; null when absent or not an object.
    const JsonValue* find(std::string_view key) const;
    // The string member `key`; nullopt when absent or not a string.
    std::optional<std::string_view> text(std::string_view key) const;
};

struct JsonMember {
    std::string key;
    JsonValue value;
};

struct JsonLimits {
    std::size_t max_depth = 16;
    std::size_t max_bytes = 1 << 20;
};

std::optional<JsonValue> parse_json(std::string_view text, const JsonLimits& limits = {});

}  // namespace turnbridge
