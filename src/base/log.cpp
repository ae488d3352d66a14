// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/base/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "turnbridge/base/utf8.hpp"

namespace turnbridge::log {
namespace {
std::atomic<Level> g_level{Level::Info};
constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
}  // namespace

void set_level(Level level) { g_level.store(level, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

void write(Level lvl, std::string_view text) {
    // Every line is escaped here, so no caller can forget: user names, SIP display names and
    // numbers are client input, and a raw ESC or newline from them would drive the terminal of
    // whoever reads the log, or forge a line of its own.
    thread_local std::string scratch;
    const std::string_view line = printable(text, scratch);
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    // One fprintf per line: stdio locks the stream, so lines from workers never interleave.
    std::fprintf(stderr, "%s.%03dZ %s %.*s\n", stamp, static_cast<int>(ms), kNames[static_cast<int>(lvl)],
                 static_cast<int>(line.size()), line.data());
}

}  // namespace turnbridge::log
