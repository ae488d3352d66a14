// SPDX-License-Identifier: Apache-2.0
#pragma once
// UTF-8 checks and text made safe for a terminal or a log file: user names, SIP display names
// and numbers are client input, and a raw ESC from them would drive the reader's terminal.
#include <cstddef>
#include <string>
#include <string_view>

namespace turnbridge {

// Length of the well-formed UTF-8 character that starts `s` (RFC 3629 §4), 0 when there is none.
std::size_t utf8_char_length(std::string_view s);

// `s` with every byte that could move a cursor, end a line or confuse a reader written as \xNN:
// C0 controls (< 0x20, newline and tab included), DEL, the C1 controls U+0080-U+009F (a
// terminal may take U+009B as CSI), the line separators U+2028/2029, the bidi overrides
// U+202A-U+202E and U+2066-U+2069, bytes that are not UTF-8, and '<' (so that no line opens a
// tag in a log viewer that renders HTML). Everything else is kept.
void append_printable(std::string& out, std::string_view s);
std::string printable(std::string_view s);
// `s` itself when it has nothing to escape (no copy), else its escaped text in `scratch`.
std::string_view printable(std::string_view s, std::string& scratch);

}  // namespace turnbridge
