// SPDX-License-Identifier: Apache-2.0
#pragma once
// [realm."X".gateway], its routes and its trunks (turnbridge.toml(5)). Private to src/config.
#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

#include "toml_reader.hpp"

namespace turnbridge::config::detail {

// Loads the gateway table `f` of `realm` (whose users are already loaded, to check routes)
// into realm.gateway and realm.trunks; relative file names (trunk_ca) are taken from
// `base_dir`, the config file's directory.
void load_gateway(const Reader& r, const Field& f, Realm& realm, const std::filesystem::path& base_dir);

// The keys that describe one trunk (issue 14): in [realm."X".gateway] itself for the
// single-trunk form, or in each [[realm."X".gateway.trunks]] table, never both.
extern const std::vector<std::string_view> kTrunkKeys;
// Reads the trunk keys of table `t` (field `f`) into `g`, which holds the realm-wide keys.
void load_trunk_keys(const Reader& r, const toml::table& t, const Field& f, const std::filesystem::path& base_dir,
                     Gateway& g);
// [[realm."X".gateway.trunks]] (trunks_config.cpp): `list` of the gateway table `gateway_table`
// (field `gateway`), each trunk starting from the realm-wide keys in `realm_wide`. The first is
// the default.
std::vector<Gateway> load_trunks(const Reader& r, const toml::table& gateway_table, const Field& gateway,
                                 const Field& list, const std::filesystem::path& base_dir, const Gateway& realm_wide);

// A DID or number as dialled: digits with an optional leading +, or a SIP user part of safe
// characters.
bool valid_did(std::string_view s);

// "sip:HOST[:PORT][;transport=udp|tcp|tls]" or "sips:HOST[:PORT]"; nullopt with `why` set.
std::optional<SipTrunk> parse_trunk(std::string_view uri, std::string& why);

// [realm."X".gateway.agents] (issue 17, agents_config.cpp): NAME = "ws://..." or
// NAME = { url = "...", authorization = "...", parameters = { k = "v" } }. `fallback_auth` is
// the gateway's agent_authorization, for entries without their own.
std::map<std::string, AgentEntry> load_agents(const Reader& r, const Field& f, const std::string& fallback_auth,
                                              AgentMediaFormat fallback_format);
// "mulaw" or "l16" (an agent's media_format, gateway.agent_media_format); else an error naming the field.
AgentMediaFormat agent_media_format(const Reader& r, const Field& f);

}  // namespace turnbridge::config::detail
