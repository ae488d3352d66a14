// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/turn/peer_policy.hpp"

namespace turnbridge::turn {

const std::vector<Cidr>& PeerPolicy::default_denied() {
    // RFC 6890 special-purpose ranges a public relay must not reach (CVE-2020-26262 class).
    static const std::vector<Cidr> list = [] {
        std::vector<Cidr> v;
        for (const char* c : {"0.0.0.0/8", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                              "169.254.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15",
                              "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128", "::ffff:0:0/96",
                              "::/96", "64:ff9b::/96", "64:ff9b:1::/48", "fc00::/7", "fe80::/10",
                              "fec0::/10", "ff00::/8", "100::/64"})
            v.push_back(*Cidr::parse(c));
        return v;
    }();
    return list;
}

PeerPolicy::PeerPolicy(const config::Config& cfg) : allowed_(cfg.allowed_peers), denied_(cfg.denied_peers) {
    // The server's own addresses: relaying to them would loop traffic through ourselves.
    for (const auto& ep : cfg.listen) own_.push_back(ep.ip);
    for (const auto& ep : cfg.tls_listen) own_.push_back(ep.ip);
    for (const auto& ip : cfg.relay_ips) own_.push_back(ip);
    if (cfg.external_ip) own_.push_back(*cfg.external_ip);
}

bool PeerPolicy::in_default_deny(const IpAddress& ip) const {
    for (const auto& c : default_denied())
        if (c.contains(ip)) return true;
    for (const auto& own : own_)
        if (own == ip) return true;
    return false;
}

bool PeerPolicy::allowed(const IpAddress& peer) const {
    auto matches = [](const std::vector<Cidr>& list, const IpAddress& ip) {
        for (const auto& c : list)
            if (c.contains(ip)) return true;
        return false;
    };
    const auto v4 = peer.embedded_v4();
    // Explicit denials win, also through any IPv6 form that embeds the IPv4 address.
    if (matches(denied_, peer) || (v4 && matches(denied_, *v4))) return false;
    if (matches(allowed_, peer)) return true;
    if (in_default_deny(peer)) return false;
    // 6to4 and similar forms that are not denied wholesale: judge the IPv4 address inside.
    if (v4 && !matches(allowed_, *v4) && in_default_deny(*v4)) return false;
    return true;
}

}  // namespace turnbridge::turn
