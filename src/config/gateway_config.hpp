// SPDX-License-Identifier: Apache-2.0
#pragma once
// [realm."X".gateway] and its routes (turnbridge.toml(5)). Private to src/config.
#include "toml_reader.hpp"

namespace turnbridge::config::detail {

// Loads the gateway table `f` of `realm` (whose users are already loaded, to check routes);
// relative file names (trunk_ca) are taken from `base_dir`, the config file's directory.
Gateway load_gateway(const Reader& r, const Field& f, const Realm& realm, const std::filesystem::path& base_dir);

// "sip:HOST[:PORT][;transport=udp|tcp|tls]" or "sips:HOST[:PORT]"; nullopt with `why` set.
std::optional<SipTrunk> parse_trunk(std::string_view uri, std::string& why);

// [realm."X".gateway.agents] (issue 17, agents_config.cpp): NAME = "ws://..." or
// NAME = { url = "...", authorization = "...", parameters = { k = "v" } }. `fallback_auth` is
// the gateway's agent_authorization, for entries without their own.
std::map<std::string, AgentEntry> load_agents(const Reader& r, const Field& f, const std::string& fallback_auth);

}  // namespace turnbridge::config::detail
