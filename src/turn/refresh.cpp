// SPDX-License-Identifier: Apache-2.0
// Refresh (RFC 8656 §7.3), including deletion with LIFETIME 0.
#include <algorithm>

#include "server_internal.hpp"
#include "turnbridge/base/log.hpp"

namespace turnbridge::turn {

bool Server::over_byte_quota(const Request& req) {
    if (shared_.quota_gate == nullptr || req.realm.quota_bytes == 0) return false;
    // Bytes are counted per account (accounting's identity), so the quota is too: TURN REST
    // users with a bare expiry, accounted to the realm alone, share one quota (account "")
    // rather than each fresh credential starting from zero.
    if (!shared_.quota_gate->over_quota(req.realm, req.account)) return false;
    ++stats_.quota_refusals;
    log::info("byte quota of {} reached: user={} account={} realm={} client=[{}]", req.realm.quota_bytes, req.username,
              req.account.empty() ? "(realm)" : req.account, req.realm.name, req.from.to_string());
    return true;
}

Allocation* Server::owned_allocation(const Request& req, std::vector<Action>& out) {
    Allocation* a = find_mut(req.from);
    if (a == nullptr) {
        send_error(req, StunCode::AllocationMismatch, "Allocation Mismatch", out);
        return nullptr;
    }
    // RFC 8656 §5: requests on an allocation must use the credentials that created it.
    if (a->username != req.username) {
        send_error(req, StunCode::WrongCredentials, "Wrong Credentials", out);
        return nullptr;
    }
    return a;
}

void Server::on_refresh(const Clock& now, Request& req, std::vector<Action>& out) {
    Allocation* a = owned_allocation(req, out);
    if (a == nullptr) return;
    const auto& cfg = *shared_.config;
    if (auto raf = req.msg.get(stun::attr::RequestedAddressFamily)) {
        const auto fam = raf->size() == 4 ? (*raf)[0] : 0;
        if (fam != 0x01 && fam != 0x02) {
            send_error(req, StunCode::AddressFamilyNotSupported, "Address Family not Supported", out);
            return;
        }
        if (a->relay_for(fam == 0x01 ? Family::V4 : Family::V6) == nullptr) {
            send_error(req, StunCode::PeerAddressFamilyMismatch, "Peer Address Family Mismatch", out);
            return;
        }
    }
    std::chrono::seconds lifetime = cfg.default_lifetime;
    if (auto lt = req.msg.get_u32(stun::attr::Lifetime)) {
        // RFC 8656 §7.3: the requested value, capped at the maximum; 0 deletes.
        lifetime = std::min(std::chrono::seconds(*lt), cfg.max_lifetime);
    }
    // Over the byte quota: the allocation ends at this refresh (it keeps running until then).
    if (lifetime.count() != 0 && over_byte_quota(req)) {
        send_error(req, StunCode::AllocationQuotaReached, "Allocation Quota Reached", out);
        destroy(*a, CloseReason::Quota);
        return;
    }
    ResponseWriter w(*this, req, stun::Class::Success);
    w.builder().add_u32(stun::attr::Lifetime, static_cast<std::uint32_t>(lifetime.count()));
    if (lifetime.count() == 0) {
        destroy(*a, CloseReason::Refreshed0);  // the key lives in req, so the response still signs
    } else {
        a->expires = now.mono + lifetime;
    }
    w.finish(out);
}

}  // namespace turnbridge::turn
