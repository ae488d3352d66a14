// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/base/json_reader.hpp"

#include <charconv>
#include <cstdlib>

namespace turnbridge {
namespace {

class Reader {
public:
    Reader(std::string_view s, const JsonLimits& l) : s_(s), limits_(l) {}

    std::optional<JsonValue> document() {
        JsonValue v;
        if (!value(v, 0)) return std::nullopt;
        skip_space();
        if (i_ != s_.size()) return std::nullopt;   // RFC 8259 §2: one value, then only whitespace
        return v;
    }

private:
    void skip_space() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    bool eat(char c) {
        skip_space();
        if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
        return false;
    }
    bool literal(std::string_view word) {
        if (s_.substr(i_, word.size()) != word) return false;
        i_ += word.size();
        return true;
    }

    bool value(JsonValue& v, std::size_t depth) {
        skip_space();
        if (i_ >= s_.size()) return false;
        switch (s_[i_]) {
            case '{': return object(v, depth + 1);
            case '[': return array(v, depth + 1);
            case '"': v.type = JsonValue::Type::String; return string(v.string);
            case 't': v.type = JsonValue::Type::Bool; v.boolean = true; return literal("true");
            case 'f': v.type = JsonValue::Type::Bool; return literal("false");
            case 'n': return literal("null");
            default: return number(v);
        }
    }

    bool object(JsonValue& v, std::size_t depth) {
        if (depth > limits_.max_depth) return false;
        v.type = JsonValue::Type::Object;
        ++i_;
        if (eat('}')) return true;
        do {
            skip_space();
            JsonMember m;
            if (i_ >= s_.size() || s_[i_] != '"' || !string(m.key) || !eat(':') || !value(m.value, depth)) return false;
            if (v.find(m.key) == nullptr) v.members.push_back(std::move(m));
        } while (eat(','));
        return eat('}');
    }

    bool array(JsonValue& v, std::size_t depth) {
        if (depth > limits_.max_depth) return false;
        v.type = JsonValue::Type::Array;
        ++i_;
        if (eat(']')) return true;
        do {
            if (!value(v.items.emplace_back(), depth)) return false;
        } while (eat(','));
        return eat(']');
    }

    // RFC 8259 §6: -? int frac? exp?
    bool number(JsonValue& v) {
        const std::size_t start = i_;
        auto digits = [&] {
            const std::size_t from = i_;
            while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
            return i_ > from;
        };
        if (i_ < s_.size() && s_[i_] == '-') ++i_;
        if (i_ < s_.size() && s_[i_] == '0') ++i_;
        else if (!digits()) return false;
        if (i_ < s_.size() && s_[i_] == '.' && (++i_, !digits())) return false;
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            ++i_;
            if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            if (!digits()) return false;
        }
        v.type = JsonValue::Type::Number;
        const std::string text(s_.substr(start, i_ - start));
        v.number = std::strtod(text.c_str(), nullptr);
        return true;
    }

    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }
    bool hex4(std::uint32_t& cp) {
        if (i_ + 4 > s_.size()) return false;
        cp = 0;
        for (int k = 0; k < 4; ++k) {
            const int h = hex(s_[i_++]);
            if (h < 0) return false;
            cp = cp << 4 | static_cast<std::uint32_t>(h);
        }
        return true;
    }
    static void utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) out.push_back(static_cast<char>(cp));
        else if (cp < 0x800) out += {static_cast<char>(0xC0 | cp >> 6), static_cast<char>(0x80 | (cp & 0x3F))};
        else if (cp < 0x10000)
            out += {static_cast<char>(0xE0 | cp >> 12), static_cast<char>(0x80 | (cp >> 6 & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
        else
            out += {static_cast<char>(0xF0 | cp >> 18), static_cast<char>(0x80 | (cp >> 12 & 0x3F)),
                    static_cast<char>(0x80 | (cp >> 6 & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
    }

    // RFC 8259 §7; a lone surrogate becomes U+FFFD.
    bool string(std::string& out) {
        ++i_;
        while (i_ < s_.size()) {
            const char c = s_[i_++];
            if (c == '"') return true;
            if (static_cast<unsigned char>(c) < 0x20) return false;
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            if (i_ >= s_.size()) return false;
            switch (s_[i_++]) {
                case '"': out.push_back('"'); break;
                case '\\': out.push_back('\\'); break;
                case '/': out.push_back('/'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u': {
                    std::uint32_t cp = 0;
                    if (!hex4(cp)) return false;
                    if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(i_, 2) == "\\u") {
                        const std::size_t back = i_;
                        i_ += 2;
                        std::uint32_t lo = 0;
                        if (hex4(lo) && lo >= 0xDC00 && lo <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        else i_ = back;
                    }
                    utf8(out, cp >= 0xD800 && cp <= 0xDFFF ? 0xFFFD : cp);
                    break;
                }
                default: return false;
            }
        }
        return false;
    }

    std::string_view s_;
    const JsonLimits& limits_;
    std::size_t i_ = 0;
};

}  // namespace

const JsonValue* JsonValue::find(std::string_view key) const {
    for (const auto& m : members)
        if (m.key == key) return &m.value;
    return nullptr;
}

std::optional<std::string_view> JsonValue::text(std::string_view key) const {
    const auto* v = find(key);
    if (v == nullptr || !v->is_string()) return std::nullopt;
    return std::string_view(v->string);
}

std::optional<JsonValue> parse_json(std::string_view text, const JsonLimits& limits) {
    if (text.size() > limits.max_bytes) return std::nullopt;
    return Reader(text, limits).document();
}

}  // namespace turnbridge
