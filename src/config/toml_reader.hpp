// SPDX-License-Identifier: Apache-2.0
#pragma once
// Typed access to a parsed TOML tree that turns every mistake into a ConfigError naming the
// file, the line of the offending value and its dotted key. Private to src/config.
#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "turnbridge/config/config.hpp"

namespace turnbridge::config::detail {

// Thrown inside the loader only; load_string() returns the error as a value.
struct Failure {
    ConfigError error;
};

// A key as TOML would write it: bare when it can be, "quoted" otherwise.
std::string quote_key(std::string_view key);
// "server" + "listen" -> "server.listen"; "" + "server" -> "server".
std::string join_key(std::string_view parent, std::string_view key);

// One value in the tree and the dotted key that leads to it.
struct Field {
    const toml::node* node = nullptr;
    std::string key;
    std::string name;  // the last key component, unquoted (set by Reader::entries)
    int line() const { return node ? static_cast<int>(node->source().begin.line) : 0; }
};

class Reader {
public:
    explicit Reader(std::string file) : file_(std::move(file)) {}

    [[noreturn]] void fail(int line, std::string key, std::string message) const;
    [[noreturn]] void fail(const Field& f, std::string message) const { fail(f.line(), f.key, std::move(message)); }

    // A typo must not be silently ignored: any key outside `known` fails, suggesting the closest.
    void only_keys(const toml::table& t, std::string_view path, std::initializer_list<std::string_view> known) const;

    // The value at t[key] (key is relative, path is t's own dotted key), if present.
    std::optional<Field> get(const toml::table& t, std::string_view path, std::string_view key) const;

    const toml::table& as_table(const Field& f) const;
    std::string as_string(const Field& f) const;
    std::int64_t as_integer(const Field& f, std::int64_t min, std::int64_t max) const;
    // The elements of an array, keyed "path[i]".
    std::vector<Field> as_array(const Field& f) const;
    // Each entry of a table, keyed "path.name", with `name` set.
    std::vector<Field> entries(const Field& f) const;

private:
    std::string file_;
};

}  // namespace turnbridge::config::detail
