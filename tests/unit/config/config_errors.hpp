// SPDX-License-Identifier: Apache-2.0
#pragma once
// Shared by the config tests: a table of bad files, each with the error it must give.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "turnbridge/config/config.hpp"

namespace turnbridge::config::test {

struct ErrorRow {
    std::string file;    // the whole TOML text
    std::string key;     // the dotted key the error must name
    int line;            // ... and its line
    std::string says;    // a part of the message ("" = anything)
};

inline void check_errors(const std::vector<ErrorRow>& rows, const char* path = "/etc/turnbridge/turnbridge.toml") {
    for (const auto& row : rows) {
        CAPTURE(row.file);
        auto r = load_string(row.file, path);
        const auto* e = std::get_if<ConfigError>(&r);
        REQUIRE(e != nullptr);
        CAPTURE(e->to_string());
        CHECK(e->key == row.key);
        CHECK(e->line == row.line);
        CHECK(e->message.find(row.says) != std::string::npos);
    }
}

}  // namespace turnbridge::config::test
