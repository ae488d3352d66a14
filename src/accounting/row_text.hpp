// SPDX-License-Identifier: Apache-2.0
#pragma once
// Rows of named fields as JSON, CSV or an aligned table: shared by the usage report and the call
// listing, so that both escape and quote the same way. Private to src/accounting.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace turnbridge::accounting::detail {

// One named cell: `text` for CSV, `json` for JSON (through the one JsonWriter, base/json.hpp).
struct Field {
    using Json = std::variant<std::string, std::uint64_t, std::int64_t, double, bool, std::map<std::string, std::uint64_t>>;
    std::string name;
    std::string text;
    Json json;
};
using Fields = std::vector<Field>;

Field text_field(std::string name, std::string value);
Field int_field(std::string name, std::uint64_t value);
Field int_field(std::string name, std::int64_t value);
Field real_field(std::string name, double value);
Field flag_field(std::string name, bool value);
// A number that may be missing: JSON null, CSV empty, when `present` is false.
Field maybe_real_field(std::string name, double value, bool present);  // JSON true/false; CSV 1/0 like the other numbers
// A text that may be missing: JSON null, CSV empty, when `present` is false.
Field maybe_text_field(std::string name, std::string value, bool present);
// JSON an object name -> count; CSV `text`.
Field map_field(std::string name, std::map<std::string, std::uint64_t> value, std::string text);

// An array of objects, one row a line; "[]" when there are none.
std::string json_rows(const std::vector<Fields>& rows);
// RFC 4180: a header of the field names of `names`, then one record per row, CRLF after each.
std::string csv_rows(const Fields& names, const std::vector<Fields>& rows);
// Columns padded to their widest cell, two spaces apart: left-aligned where `left[c]`, else right.
std::string aligned(const std::vector<std::vector<std::string>>& cells, const std::vector<bool>& left);

// To `decimals` places, so that JSON and CSV show 0.0167 rather than 0.016666666666666666.
double rounded(double v, int decimals);

}  // namespace turnbridge::accounting::detail
