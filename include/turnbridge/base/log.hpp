// SPDX-License-Identifier: Apache-2.0
#pragma once
// Logging is the only process-wide state (STYLE.md). One line per event on stderr.
#include <fmt/format.h>
#include <string_view>

namespace turnbridge::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_level(Level level);
Level level();
// One line on stderr. Control characters, bytes that are not UTF-8 and the like in `text` are
// written as \xNN (turnbridge::printable), so a line never ends early or carries an escape sequence.
void write(Level level, std::string_view text);

template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Info) write(Level::Info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Warn) write(Level::Warn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    write(Level::Error, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Debug) write(Level::Debug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace turnbridge::log
