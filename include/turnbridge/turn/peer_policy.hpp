// SPDX-License-Identifier: Apache-2.0
#pragma once
// Which peers an allocation may reach. Safe by default (the class of CVE-2020-26262): private,
// loopback, link-local, multicast, reserved and translated ranges and the server's own
// addresses are refused with 403 unless [security] allowed_peers exempts them.
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/config/config.hpp"

namespace turnbridge::turn {

class PeerPolicy {
public:
    PeerPolicy() = default;
    explicit PeerPolicy(const config::Config& cfg);
    // Order: denied_peers, then allowed_peers, then the default deny list and own addresses.
    bool allowed(const IpAddress& peer) const;
    static const std::vector<Cidr>& default_denied();

private:
    bool in_default_deny(const IpAddress& ip) const;
    std::vector<Cidr> allowed_;
    std::vector<Cidr> denied_;
    std::vector<IpAddress> own_;
};

}  // namespace turnbridge::turn
