// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/base/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <sys/stat.h>

#include "turnbridge/base/json.hpp"
#include "turnbridge/base/utf8.hpp"

namespace turnbridge::log {
namespace {
std::atomic<Level> g_level{Level::Info};
std::atomic<Format> g_format{Format::Text};
constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
constexpr int kPriority[] = {7, 6, 4, 3};  // sd-daemon(3): debug, info, warning, err

bool stderr_is_journal() {
    const char* env = std::getenv("JOURNAL_STREAM");
    if (!env) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    return fstat(2, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}
std::atomic<bool> g_journal{stderr_is_journal()};

// "2025-01-02T03:04:05.678Z", in `stamp`.
std::string_view timestamp(char (&stamp)[40]) {
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    const int m = std::snprintf(stamp + n, sizeof stamp - n, ".%03dZ", static_cast<int>(ms));
    return {stamp, n + static_cast<std::size_t>(m)};
}

// The value of `key=` in an unstructured line ("client=[udp a -> b]" up to its bracket).
std::string_view token(std::string_view text, std::string_view key) {
    for (std::size_t at = 0; (at = text.find(key, at)) != std::string_view::npos; at += key.size()) {
        if ((at != 0 && text[at - 1] != ' ') || at + key.size() >= text.size() || text[at + key.size()] != '=') continue;
        std::size_t from = at + key.size() + 1;
        if (text[from] == '[') {
            const std::size_t close = text.find(']', from);
            if (close != std::string_view::npos) return text.substr(from + 1, close - from - 1);
        }
        return text.substr(from, text.find(' ', from) - from);
    }
    return {};
}

void put(JsonWriter& j, std::string_view key, std::string_view v) {
    j.key(key);
    if (v.empty()) j.null(); else j.value(v);
}

void emit(Level lvl, std::string_view event_name, const Fields& f, std::string_view text) {
    // Every line is escaped here, so no caller can forget: user names, SIP display names and
    // numbers are client input, and a raw ESC or newline from them would drive the terminal of
    // whoever reads the log, or forge a line of its own. The JSON writer escapes its own way.
    thread_local std::string line;  // reused: a text line allocates nothing once it has grown
    line.clear();
    char stamp[40];
    if (g_journal.load(std::memory_order_relaxed)) {
        line += '<';
        line += static_cast<char>('0' + kPriority[static_cast<int>(lvl)]);
        line += '>';
    }
    if (g_format.load(std::memory_order_relaxed) == Format::Json) {
        JsonWriter j;
        j.begin_object();
        put(j, "time", timestamp(stamp));
        put(j, "level", kNames[static_cast<int>(lvl)]);
        put(j, "event", event_name);
        put(j, "realm", f.realm);
        put(j, "user", f.user);
        put(j, "allocation", f.allocation);
        put(j, "call", f.call);
        put(j, "client", f.client);
        put(j, "relay", f.relay);
        put(j, "peer", f.peer);
        j.key("bytes");
        if (f.bytes) j.value(*f.bytes); else j.null();
        put(j, "reason", f.reason);
        put(j, "message", text);
        j.end_object();
        line += j.take();
    } else {
        thread_local std::string scratch;
        line += timestamp(stamp);
        line += ' ';
        line += kNames[static_cast<int>(lvl)];
        line += ' ';
        line += printable(text, scratch);
    }
    line += '\n';
    // One fwrite per line: stdio locks the stream, so lines from workers never interleave.
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

void set_level(Level level) { g_level.store(level, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }
void set_format(Format f) { g_format.store(f, std::memory_order_relaxed); }
Format format() { return g_format.load(std::memory_order_relaxed); }
bool under_journal() { return g_journal.load(std::memory_order_relaxed); }
void set_journal(bool on) { g_journal.store(on, std::memory_order_relaxed); }

void write(Level lvl, std::string_view text) {
    if (g_format.load(std::memory_order_relaxed) == Format::Text) return emit(lvl, {}, {}, text);
    // Lines not yet written as events still give what they say as key=value.
    const Fields f{token(text, "realm"), token(text, "user"),   token(text, "allocation"), token(text, "call"),
                   token(text, "client"), token(text, "relay"), token(text, "peer"),       token(text, "reason"),
                   std::nullopt};
    emit(lvl, "log", f, text);
}

void event(Level lvl, std::string_view name, const Fields& fields, std::string_view text) {
    if (lvl < level()) return;
    emit(lvl, name, fields, text);
}

}  // namespace turnbridge::log
