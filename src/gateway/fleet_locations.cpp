// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/fleet_locations.hpp"

#include <algorithm>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "turnbridge/gateway/random.hpp"

namespace turnbridge::gateway {

FleetLocations::FleetLocations() { random_bytes(branch_key_); }

std::uint64_t FleetLocations::branch_tag(std::string_view text) const {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (HMAC(EVP_sha256(), branch_key_.data(), static_cast<int>(branch_key_.size()),
             reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &len) == nullptr || len < 8)
        return 0;
    std::uint64_t tag = 0;
    for (int i = 0; i < 8; ++i) tag = tag << 8 | mac[i];
    return tag;
}

std::vector<const FleetPeer*> RemoteLocations::owners(std::string_view aor, sip::Time now) const {
    std::vector<const FleetPeer*> out;
    auto it = aors.find(aor);
    if (it == aors.end()) return out;
    for (auto i : it->second)
        if (i < peers.size() && peers[i].live_until > now &&
            std::find(out.begin(), out.end(), &peers[i]) == out.end())
            out.push_back(&peers[i]);
    return out;
}

bool RemoteLocations::is_peer(const IpAddress& ip) const {
    return std::any_of(peers.begin(), peers.end(), [&](const FleetPeer& p) { return p.sip.ip == ip; });
}

bool RemoteLocations::is_live_peer(const IpAddress& ip, sip::Time now) const {
    return std::any_of(peers.begin(), peers.end(), [&](const FleetPeer& p) { return p.sip.ip == ip && p.live_until > now; });
}

}  // namespace turnbridge::gateway
