// SPDX-License-Identifier: Apache-2.0
#pragma once
// Who the server runs as ([server] user, group, allow_root): started as root, it binds every
// listener and loads the certificate, then switches to `user` for good (no capability left).
// Started as root without `user`, it refuses any listener off loopback unless allow_root.
#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "turnbridge/config/config.hpp"

namespace turnbridge::app {

struct Account {
    std::string user, group;
    uid_t uid = 0;
    gid_t gid = 0;
};

// server.user and server.group looked up (nullopt: no user set). The error names the key.
struct AccountLookup {
    std::optional<Account> account;
    std::string error;  // empty: fine
};
AccountLookup resolve_account(const config::Config& cfg);

// What running as `euid` with `cfg` would be refused for: a missing account, a user we cannot
// switch to, or root with a public listener and neither user nor allow_root. Empty: fine.
// check-config and the server ask the same question.
std::string check_identity(const config::Config& cfg, uid_t euid);

// Hands `own` (those that exist) to the account, then sets the supplementary groups, the gid and
// the uid; afterwards regaining root must fail. Empty: done, else why not.
std::string drop_privileges(const Account& a, const std::vector<std::filesystem::path>& own);

}  // namespace turnbridge::app
