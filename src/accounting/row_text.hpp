// SPDX-License-Identifier: Apache-2.0
#pragma once
// Rows of named fields as JSON, CSV or an aligned table: shared by the usage report and the call
// listing, so that both escape and quote the same way. Private to src/accounting.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace turnbridge::accounting::detail {

struct Field {
    enum class Kind { Text, Number, Object };  // Object: `json` is a JSON object, `value` its CSV text
    std::string name;
    Kind kind;
    std::string value;
    std::string json = {};
};
using Fields = std::vector<Field>;

// An array of objects, one row a line; "[]" when there are none.
std::string json_rows(const std::vector<Fields>& rows);
// RFC 4180: a header of the field names of `names`, then one record per row, CRLF after each.
std::string csv_rows(const Fields& names, const std::vector<Fields>& rows);
// Columns padded to their widest cell, two spaces apart: left-aligned where `left[c]`, else right.
std::string aligned(const std::vector<std::vector<std::string>>& cells, const std::vector<bool>& left);

std::string json_string(std::string_view s);
// Names and user names come from clients: no control characters reach the terminal.
std::string printable(std::string_view s);
// To `decimals` places, so that JSON and CSV show 0.0167 rather than 0.016666666666666666.
double rounded(double v, int decimals);
std::string number(double v);

}  // namespace turnbridge::accounting::detail
