// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/base/utf8.hpp"

namespace turnbridge {
namespace {

bool continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

constexpr char kHex[] = "0123456789abcdef";

// The code point of the well-formed `n`-byte character at the start of `s`.
char32_t decode(std::string_view s, std::size_t n) {
    const auto b = [&](std::size_t i) { return static_cast<char32_t>(static_cast<unsigned char>(s[i])); };
    if (n == 1) return b(0);
    char32_t cp = b(0) & (0x7F >> n);
    for (std::size_t i = 1; i < n; ++i) cp = (cp << 6) | (b(i) & 0x3F);
    return cp;
}

bool unsafe(char32_t cp) {
    return cp < 0x20 || cp == '<' || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

// Length of the first unsafe character or byte in `s` from its start, or 0 when `s` starts safe;
// `keep` gets the length of the safe character otherwise.
std::size_t unsafe_prefix(std::string_view s, std::size_t& keep) {
    const std::size_t n = utf8_char_length(s);
    if (n == 0) return 1;
    keep = n;
    return unsafe(decode(s, n)) ? n : 0;
}

}  // namespace

std::size_t utf8_char_length(std::string_view s) {
    if (s.empty()) return 0;
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char c = b(0);
    if (c < 0x80) return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (RFC 3629 §4)
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;   // no overlong forms
        if (c == 0xED) hi = 0x9F;   // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;   // nothing above U+10FFFF
    } else {
        return 0;
    }
    if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
    for (std::size_t i = 2; i < n; ++i)
        if (!continuation(b(i))) return 0;
    return n;
}

void append_printable(std::string& out, std::string_view s) {
    while (!s.empty()) {
        std::size_t keep = 0;
        const std::size_t bad = unsafe_prefix(s, keep);
        if (bad == 0) {
            out.append(s.substr(0, keep));
            s.remove_prefix(keep);
            continue;
        }
        for (std::size_t i = 0; i < bad; ++i) {
            const auto c = static_cast<unsigned char>(s[i]);
            out += "\\x";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
        }
        s.remove_prefix(bad);
    }
}

std::string printable(std::string_view s) {
    std::string out;
    append_printable(out, s);
    return out;
}

std::string_view printable(std::string_view s, std::string& scratch) {
    for (std::string_view rest = s; !rest.empty();) {
        const auto c = static_cast<unsigned char>(rest[0]);
        if (c >= 0x20 && c < 0x7F && c != '<') {  // the common case: printable ASCII
            rest.remove_prefix(1);
            continue;
        }
        std::size_t keep = 0;
        if (unsafe_prefix(rest, keep) != 0) {
            scratch.clear();
            append_printable(scratch, s);
            return scratch;
        }
        rest.remove_prefix(keep);
    }
    return s;
}

}  // namespace turnbridge
