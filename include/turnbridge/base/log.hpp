// SPDX-License-Identifier: Apache-2.0
#pragma once
// Logging is the only process-wide state (STYLE.md). One line per event on stderr, as text or
// as JSON ([server] log_format); under journald (JOURNAL_STREAM names our stderr) every line
// starts with its syslog priority, "<3>" to "<7>", which journald strips and records.
#include <cstdint>
#include <fmt/format.h>
#include <optional>
#include <string_view>

namespace turnbridge::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };
enum class Format { Text, Json };

void set_level(Level level);
Level level();
void set_format(Format format);
Format format();
// True when stderr is the stream JOURNAL_STREAM names (sd_journal_stream_fd(3)); set_journal
// overrides it (tests).
bool under_journal();
void set_journal(bool on);

// The fields of an allocation or call event: every JSON line carries all of them, null when
// absent (README, "Logs"; turnbridge.toml(5), log_format).
struct Fields {
    std::string_view realm, user, allocation, call, client, relay, peer, reason;
    std::optional<std::uint64_t> bytes;  // relayed payload bytes, both directions, at the end
};

// One line on stderr. Control characters, bytes that are not UTF-8 and the like in `text` are
// written as \xNN (turnbridge::printable), so a line never ends early or carries an escape sequence.
// As JSON, `event` is "log" and the fields that `text` gives as key=value are filled in.
void write(Level level, std::string_view text);
// An event with a name ("allocation.created") and its fields; as text, just `text`.
void event(Level level, std::string_view name, const Fields& fields, std::string_view text);

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
