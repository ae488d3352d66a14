// SPDX-License-Identifier: Apache-2.0
#include "toml_reader.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace turnbridge::config::detail {
namespace {

std::string_view type_name(toml::node_type t) {
    switch (t) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        case toml::node_type::none: break;
    }
    return "nothing";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

bool is_bare_key(std::string_view key) {
    return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

}  // namespace

std::string quote_key(std::string_view key) {
    if (is_bare_key(key)) return std::string(key);
    std::string out = "\"";
    for (char c : key) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + '"';
}

std::string join_key(std::string_view parent, std::string_view key) {
    if (parent.empty()) return quote_key(key);
    return std::string(parent) + "." + quote_key(key);
}

void Reader::fail(int line, std::string key, std::string message) const {
    throw Failure{ConfigError{file_, line, std::move(key), std::move(message)}};
}

void Reader::only_keys(const toml::table& t, std::string_view path, std::span<const std::string_view> known) const {
    for (auto&& [k, v] : t) {
        const std::string_view name = k.str();
        if (std::find(known.begin(), known.end(), name) != known.end()) continue;
        std::string message = "unknown key";
        std::string_view best;
        std::size_t best_distance = 3;  // suggest only near misses
        for (auto candidate : known) {
            const auto d = edit_distance(name, candidate);
            if (d < best_distance) best = candidate, best_distance = d;
        }
        if (!best.empty()) {
            message += fmt::format("; did you mean \"{}\"?", best);
        } else {
            message += "; expected one of: ";
            for (auto candidate : known) message += fmt::format("{}{}", candidate == known.front() ? "" : ", ", candidate);
        }
        const int line = k.source().begin.line ? static_cast<int>(k.source().begin.line)
                                               : static_cast<int>(v.source().begin.line);
        fail(line, join_key(path, name), std::move(message));
    }
}

std::optional<Field> Reader::get(const toml::table& t, std::string_view path, std::string_view key) const {
    const toml::node* node = t.get(key);
    if (!node) return std::nullopt;
    return Field{node, join_key(path, key), std::string(key)};
}

const toml::table& Reader::as_table(const Field& f) const {
    if (const auto* t = f.node->as_table()) return *t;
    fail(f, fmt::format("expected a table, got {}", type_name(f.node->type())));
}

std::string Reader::as_string(const Field& f) const {
    if (const auto* s = f.node->as_string()) return s->get();
    fail(f, fmt::format("expected a string, got {}", type_name(f.node->type())));
}

bool Reader::as_bool(const Field& f) const {
    if (const auto* b = f.node->as_boolean()) return b->get();
    fail(f, fmt::format("expected true or false, got {}", type_name(f.node->type())));
}

std::int64_t Reader::as_integer(const Field& f, std::int64_t min, std::int64_t max) const {
    const auto* i = f.node->as_integer();
    if (!i) fail(f, fmt::format("expected an integer from {} to {}, got {}", min, max, type_name(f.node->type())));
    const std::int64_t v = i->get();
    if (v < min || v > max) fail(f, fmt::format("expected an integer from {} to {}, got {}", min, max, v));
    return v;
}

double Reader::as_number(const Field& f, double min) const {
    double v = 0;
    if (const auto* i = f.node->as_integer()) v = static_cast<double>(i->get());
    else if (const auto* d = f.node->as_floating_point()) v = d->get();
    else fail(f, fmt::format("expected a number of at least {}, got {}", min, type_name(f.node->type())));
    // TOML allows inf and nan; neither is a price.
    if (!std::isfinite(v) || v < min) fail(f, fmt::format("expected a number of at least {}, got {}", min, v));
    return v;
}

std::vector<Field> Reader::as_array(const Field& f) const {
    const auto* a = f.node->as_array();
    if (!a) fail(f, fmt::format("expected an array, got {}", type_name(f.node->type())));
    std::vector<Field> out;
    out.reserve(a->size());
    for (std::size_t i = 0; i < a->size(); ++i) out.push_back(Field{a->get(i), fmt::format("{}[{}]", f.key, i), {}});
    return out;
}

std::vector<Field> Reader::entries(const Field& f) const {
    std::vector<Field> out;
    for (auto&& [k, v] : as_table(f)) out.push_back(Field{&v, join_key(f.key, k.str()), std::string(k.str())});
    // toml++ keeps keys sorted; file order makes "already in X" name the first occurrence.
    std::stable_sort(out.begin(), out.end(), [](const Field& a, const Field& b) { return a.line() < b.line(); });
    return out;
}

std::vector<Cidr> load_cidrs(const Reader& r, const Field& f) {
    std::vector<Cidr> out;
    for (const auto& e : r.as_array(f)) {
        auto c = Cidr::parse(r.as_string(e));
        if (!c) r.fail(e, R"(expected an address or CIDR, like "10.0.0.0/8", "192.0.2.7" or "fe80::/10")");
        out.push_back(*c);
    }
    return out;
}

std::vector<Endpoint> load_endpoints(const Reader& r, const Field& f) {
    std::vector<Endpoint> out;
    for (const auto& e : r.as_array(f)) {
        auto ep = Endpoint::parse(r.as_string(e));
        if (!ep || ep->port == 0) r.fail(e, R"(expected an address with a port, like "192.0.2.11:5060" or "[2001:db8::1]:5060")");
        out.push_back(*ep);
    }
    return out;
}

std::vector<Endpoint> load_dns_servers(const Reader& r, const Field& f) {
    std::vector<Endpoint> out;
    for (const auto& e : r.as_array(f)) {
        const std::string text = r.as_string(e);
        auto ep = Endpoint::parse(text);
        if (!ep)
            if (auto ip = IpAddress::parse(text)) ep = Endpoint{*ip, 53};
        if (!ep || ep->port == 0)
            r.fail(e, R"(expected a DNS server address, like "192.0.2.53", "127.0.0.1:5353" or "[::1]:53")");
        out.push_back(*ep);
    }
    return out;
}

}  // namespace turnbridge::config::detail
