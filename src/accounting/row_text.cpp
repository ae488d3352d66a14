// SPDX-License-Identifier: Apache-2.0
#include "row_text.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace turnbridge::accounting::detail {
namespace {

std::size_t utf8_width(std::string_view s) {
    return static_cast<std::size_t>(
        std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// RFC 4180 §2: a field with a comma, quote or line break is quoted, its quotes doubled.
std::string csv_field(std::string_view s) {
    if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
    std::string out = "\"";
    for (const char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

std::string json_value(const Field& f) {
    switch (f.kind) {
        case Field::Kind::Text: return json_string(f.value);
        case Field::Kind::Number: return f.value;
        case Field::Kind::Object: return f.json;
    }
    return f.value;
}

}  // namespace

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default: out += c < 0x20 ? fmt::format("\\u{:04x}", c) : std::string(1, ch);
        }
    }
    return out + "\"";
}

std::string printable(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
    return out;
}

double rounded(double v, int decimals) {
    const double scale = std::pow(10.0, decimals);
    return std::round(v * scale) / scale;
}

std::string number(double v) { return fmt::format("{}", v); }

std::string json_rows(const std::vector<Fields>& rows) {
    if (rows.empty()) return "[]\n";
    std::string out = "[\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        out += "  {";
        bool first = true;
        for (const auto& f : rows[i]) {
            out += fmt::format("{}{}: {}", first ? "" : ", ", json_string(f.name), json_value(f));
            first = false;
        }
        out += i + 1 < rows.size() ? "},\n" : "}\n";
    }
    return out + "]\n";
}

// RFC 4180 §2: CRLF ends every record, the header included.
std::string csv_rows(const Fields& names, const std::vector<Fields>& rows) {
    std::string out;
    const auto line = [&](const Fields& fs, bool header) {
        for (std::size_t i = 0; i < fs.size(); ++i) {
            if (i) out += ',';
            out += csv_field(header ? fs[i].name : fs[i].value);
        }
        out += "\r\n";
    };
    line(names, true);
    for (const auto& r : rows) line(r, false);
    return out;
}

std::string aligned(const std::vector<std::vector<std::string>>& cells, const std::vector<bool>& left) {
    std::vector<std::size_t> width(left.size(), 0);
    for (const auto& line : cells)
        for (std::size_t c = 0; c < line.size() && c < width.size(); ++c) width[c] = std::max(width[c], utf8_width(line[c]));
    std::string out;
    for (const auto& line : cells) {
        std::string text;
        for (std::size_t c = 0; c < line.size() && c < width.size(); ++c) {
            const std::string pad(width[c] - utf8_width(line[c]), ' ');
            if (c) text += "  ";
            text += left[c] ? line[c] + pad : pad + line[c];
        }
        while (!text.empty() && text.back() == ' ') text.pop_back();  // a left-aligned last column
        out += text + "\n";
    }
    return out;
}

}  // namespace turnbridge::accounting::detail
