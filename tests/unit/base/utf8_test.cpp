// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "turnbridge/base/log.hpp"
#include "turnbridge/base/utf8.hpp"

using namespace turnbridge;

TEST_CASE("printable text: control characters, C1, line separators, bidi overrides, bad UTF-8 and '<' as \\xNN") {
    struct Row { const char* name; std::string in; std::string out; };
    const Row rows[] = {
        {"plain", "alice@example.org", "alice@example.org"},
        {"ESC sequence", "\x1b[31mred", "\\x1b[31mred"},
        {"newline", "a\nb", "a\\x0ab"},
        {"carriage return", "a\rb", "a\\x0db"},
        {"tab", "a\tb", "a\\x09b"},
        {"NUL", std::string("a\0b", 3), "a\\x00b"},
        {"bell", "\x07", "\\x07"},
        {"DEL", "\x7f", "\\x7f"},
        {"C1 CSI (U+009B)", "\xC2\x9B" "31m", "\\xc2\\x9b31m"},
        {"U+2028", "\xE2\x80\xA8", "\\xe2\\x80\\xa8"},
        {"right-to-left override U+202E", "\xE2\x80\xAE", "\\xe2\\x80\\xae"},
        {"isolate U+2066", "\xE2\x81\xA6", "\\xe2\\x81\\xa6"},
        {"lone continuation byte", "a\x80z", "a\\x80z"},
        {"truncated sequence", "\xE2\x82", "\\xe2\\x82"},
        {"markup cannot open a tag", "<script>alert(1)</script>", "\\x3cscript>alert(1)\\x3c/script>"},
        {"backslash stays", "a\\b", "a\\b"},
        {"two-byte UTF-8 stays", "J\xC3\xBCrgen", "J\xC3\xBCrgen"},
        {"four-byte UTF-8 stays", "\xF0\x9F\x93\x9E", "\xF0\x9F\x93\x9E"},
    };
    for (const auto& r : rows) {
        CAPTURE(r.name);
        CHECK(printable(r.in) == r.out);
        std::string scratch;
        CHECK(printable(r.in, scratch) == r.out);
    }
}

TEST_CASE("printable text without anything to escape is the input itself, not a copy") {
    const std::string_view in = "user alice from 127.0.0.1:5000 J\xC3\xBCrgen";
    std::string scratch;
    const std::string_view out = printable(in, scratch);
    CHECK(out.data() == in.data());
    CHECK(scratch.empty());
}

namespace {
// Runs `f` with stderr going to a temporary file and returns what it wrote.
template <class F>
std::string captured_stderr(F&& f) {
    std::FILE* tmp = std::tmpfile();
    REQUIRE(tmp != nullptr);
    std::fflush(stderr);
    const int saved = dup(2);
    dup2(fileno(tmp), 2);
    f();
    std::fflush(stderr);
    dup2(saved, 2);
    close(saved);
    std::rewind(tmp);
    std::string out;
    char buf[512];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, tmp)) > 0;) out.append(buf, n);
    std::fclose(tmp);
    return out;
}
}  // namespace

TEST_CASE("a log line carries no raw control character: ESC and newline from client input are \\xNN, one line") {
    const std::string out = captured_stderr([] {
        log::warn("call from {} to {}", "\"Mallory\x1b[2J\" <sip:+1@x>", "alice\nforged line");
    });
    CHECK(out.find('\x1b') == std::string::npos);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
    CHECK(out.back() == '\n');
    CHECK(out.find(" warn call from \"Mallory\\x1b[2J\" \\x3csip:+1@x> to alice\\x0aforged line\n") != std::string::npos);
}
