// SPDX-License-Identifier: Apache-2.0
#include "row_text.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <type_traits>

#include <limits>

#include "turnbridge/base/json.hpp"

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

void json_value(JsonWriter& j, const Field::Json& v) {
    std::visit([&](const auto& x) {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::map<std::string, std::uint64_t>>) {
            j.begin_object();
            for (const auto& [k, n] : x) j.key(k).value(n);
            j.end_object();
        } else {
            j.value(x);
        }
    }, v);
}

}  // namespace

Field text_field(std::string name, std::string value) {
    std::string json = value;
    return {std::move(name), std::move(value), std::move(json)};
}
Field int_field(std::string name, std::uint64_t value) { return {std::move(name), fmt::format("{}", value), value}; }
Field int_field(std::string name, std::int64_t value) { return {std::move(name), fmt::format("{}", value), value}; }
Field real_field(std::string name, double value) { return {std::move(name), fmt::format("{}", value), value}; }
Field maybe_real_field(std::string name, double value, bool present) {
    if (!present) return {std::move(name), std::string(), std::numeric_limits<double>::quiet_NaN()};  // JsonWriter: NaN is null
    return real_field(std::move(name), value);
}
Field maybe_text_field(std::string name, std::string value, bool present) {
    if (!present) return {std::move(name), std::string(), std::numeric_limits<double>::quiet_NaN()};  // JSON null
    return text_field(std::move(name), std::move(value));
}
Field flag_field(std::string name, bool value) { return {std::move(name), value ? "1" : "0", value}; }
Field map_field(std::string name, std::map<std::string, std::uint64_t> value, std::string text) {
    return {std::move(name), std::move(text), std::move(value)};
}

double rounded(double v, int decimals) {
    const double scale = std::pow(10.0, decimals);
    return std::round(v * scale) / scale;
}

std::string json_rows(const std::vector<Fields>& rows) {
    if (rows.empty()) return "[]\n";
    std::string out = "[\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        JsonWriter j(JsonStyle::Spaced);
        j.begin_object();
        for (const auto& f : rows[i]) {
            j.key(f.name);
            json_value(j, f.json);
        }
        j.end_object();
        out += "  " + j.take() + (i + 1 < rows.size() ? ",\n" : "\n");
    }
    return out + "]\n";
}

// RFC 4180 §2: CRLF ends every record, the header included.
std::string csv_rows(const Fields& names, const std::vector<Fields>& rows) {
    std::string out;
    const auto line = [&](const Fields& fs, bool header) {
        for (std::size_t i = 0; i < fs.size(); ++i) {
            if (i) out += ',';
            out += csv_field(header ? fs[i].name : fs[i].text);
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
