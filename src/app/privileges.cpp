// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/app/privileges.hpp"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

namespace turnbridge::app {
namespace {

// The first listener that someone off this host could reach, as "KEY ADDRESS".
std::optional<std::string> public_listener(const config::Config& cfg) {
    const std::pair<const char*, const std::vector<Endpoint>*> lists[] = {
        {"server.listen", &cfg.listen},         {"server.tls_listen", &cfg.tls_listen},
        {"server.ws_listen", &cfg.ws_listen},   {"server.wss_listen", &cfg.wss_listen},
        {"server.sip_listen", &cfg.sip_listen}};
    for (const auto& [key, eps] : lists)
        for (const auto& ep : *eps)
            if (!ep.ip.is_loopback()) return fmt::format("{} {}", key, ep.to_string());
    if (cfg.admin.listen && !cfg.admin.listen->ip.is_loopback())
        return fmt::format("admin.listen {}", cfg.admin.listen->to_string());
    return std::nullopt;
}

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

AccountLookup resolve_account(const config::Config& cfg) {
    AccountLookup out;
    if (cfg.user.empty()) return out;
    const passwd* pw = getpwnam(cfg.user.c_str());
    if (!pw) {
        out.error = fmt::format("server.user: no such user \"{}\"", cfg.user);
        return out;
    }
    Account a{cfg.user, {}, pw->pw_uid, pw->pw_gid};
    if (!cfg.group.empty()) {
        const group* gr = getgrnam(cfg.group.c_str());
        if (!gr) {
            out.error = fmt::format("server.group: no such group \"{}\"", cfg.group);
            return out;
        }
        a.gid = gr->gr_gid;
        a.group = cfg.group;
    } else if (const group* gr = getgrgid(pw->pw_gid)) {
        a.group = gr->gr_name;
    } else {
        a.group = std::to_string(pw->pw_gid);
    }
    if (a.uid == 0) {
        out.error = fmt::format("server.user: \"{}\" is root; name an unprivileged account", cfg.user);
        return out;
    }
    out.account = std::move(a);
    return out;
}

std::string check_identity(const config::Config& cfg, uid_t euid) {
    const AccountLookup found = resolve_account(cfg);
    if (!found.error.empty()) return found.error;
    if (found.account && euid != 0 && euid != found.account->uid)
        return fmt::format("server.user: running as uid {}, which cannot switch to \"{}\"; start as root or as that user",
                           euid, cfg.user);
    if (!found.account && euid == 0 && !cfg.allow_root)
        if (auto what = public_listener(cfg))
            return fmt::format("server.user: refusing to serve {} as root; set server.user (e.g. \"turnbridge\"), "
                               "or server.allow_root = true",
                               *what);
    return {};
}

std::string drop_privileges(const Account& a, const std::vector<std::filesystem::path>& own) {
    for (const auto& p : own) {
        if (::chown(p.c_str(), a.uid, a.gid) != 0 && errno != ENOENT)
            return fmt::format("server.user: cannot hand {} to {}: {}", p.string(), a.user, errno_text(errno));
    }
    // Supplementary groups first (the user's, e.g. ssl-cert for a key file), then gid, then uid.
    if (initgroups(a.user.c_str(), a.gid) != 0)
        return fmt::format("server.user: initgroups({}): {}", a.user, errno_text(errno));
    if (setgid(a.gid) != 0) return fmt::format("server.group: setgid({}): {}", a.gid, errno_text(errno));
    if (setuid(a.uid) != 0) return fmt::format("server.user: setuid({}): {}", a.uid, errno_text(errno));
    if (setuid(0) == 0 || seteuid(0) == 0) return "server.user: root could be regained after setuid";
    return {};
}

}  // namespace turnbridge::app
