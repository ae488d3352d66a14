// SPDX-License-Identifier: Apache-2.0
// [[realm."X".gateway.trunks]] (issue 14): more than one trunk per realm, each with a name and
// the number prefixes it takes. What Kamailio's dispatcher groups with a prefix route, or
// Asterisk's dialplan picking an endpoint by pattern, do there; here the first trunk is the
// default and the longest matching prefix wins (gateway/trunk_choice.hpp).
#include <algorithm>
#include <fmt/format.h>

#include "gateway_config.hpp"

namespace turnbridge::config::detail {
namespace {

// Names appear in metric labels, JSON and logs: a short plain word.
constexpr std::size_t kMaxNameChars = 32;
// A realm's trunks are a handful in practice; the bound keeps the per-call prefix scan short.
constexpr std::size_t kMaxTrunks = 64;

bool valid_name(std::string_view s) {
    return !s.empty() && s.size() <= kMaxNameChars && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.';
    });
}

}  // namespace

std::vector<Gateway> load_trunks(const Reader& r, const toml::table& gateway_table, const Field& gateway,
                                 const Field& list, const std::filesystem::path& base_dir, const Gateway& realm_wide) {
    // Both forms at once would leave it unclear which trunk the gateway table's keys belong to.
    for (const auto key : kTrunkKeys)
        if (auto f = r.get(gateway_table, gateway.key, key))
            r.fail(*f, fmt::format("expected {} in each [[{}.trunks]] table, not in [{}]: the gateway has a trunks list",
                                   key, gateway.key, gateway.key));
    const auto tables = r.as_array(list);
    if (tables.empty()) r.fail(list, "expected at least one [[trunks]] table (the first is the default trunk)");
    if (tables.size() > kMaxTrunks) r.fail(list, fmt::format("expected at most {} trunks", kMaxTrunks));
    std::vector<Gateway> trunks;
    std::vector<std::pair<std::string, std::size_t>> prefixes;   // every trunk's, for duplicates
    for (const auto& f : tables) {
        const auto& t = r.as_table(f);
        std::vector<std::string_view> known{"name", "prefixes"};
        known.insert(known.end(), kTrunkKeys.begin(), kTrunkKeys.end());
        r.only_keys(t, f.key, known);
        Gateway g = realm_wide;
        g.trunk_index = trunks.size();
        const auto name = r.get(t, f.key, "name");
        if (!name) r.fail(f, R"(expected name = "NAME": each trunk is named (logs, /metrics, /api/v1/trunks))");
        g.trunk_name = r.as_string(*name);
        if (!valid_name(g.trunk_name))
            r.fail(*name, fmt::format(R"(expected 1 to {} letters, digits, "-", "_" or ".", got "{}")", kMaxNameChars,
                                      g.trunk_name));
        for (const auto& other : trunks)
            if (other.trunk_name == g.trunk_name)
                r.fail(*name, fmt::format(R"(trunk name "{}" is used twice (also {}.trunks[{}]))", g.trunk_name,
                                          gateway.key, other.trunk_index));
        if (auto p = r.get(t, f.key, "prefixes")) {
            for (const auto& e : r.as_array(*p)) {
                std::string prefix = r.as_string(e);
                if (!valid_did(prefix))
                    r.fail(e, fmt::format(R"(expected a number prefix like "+44" (digits, + * # . _ -), got "{}")", prefix));
                for (const auto& [seen, index] : prefixes)
                    if (seen == prefix)
                        r.fail(e, fmt::format(R"(prefix "{}" is also {}.trunks[{}]'s: a number must lead to one trunk)",
                                              prefix, gateway.key, index));
                prefixes.emplace_back(prefix, g.trunk_index);
                g.prefixes.push_back(std::move(prefix));
            }
        }
        load_trunk_keys(r, t, f, base_dir, g);
        trunks.push_back(std::move(g));
    }
    return trunks;
}

}  // namespace turnbridge::config::detail
