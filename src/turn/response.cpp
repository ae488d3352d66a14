// SPDX-License-Identifier: Apache-2.0
#include <optional>

#include "server_internal.hpp"
#include "turnbridge/stun/integrity.hpp"

namespace turnbridge::turn {

ResponseWriter::ResponseWriter(Server& server, const Server::Request& req, stun::Class cls)
    : server_(server), req_(req), b_(server.response_buf_, req.msg.method(), cls, req.msg.transaction_id()) {}

void ResponseWriter::finish(std::vector<Action>& out, bool integrity) {
    const auto& software = server_.shared_.config->software;
    if (!software.empty()) b_.add_string(stun::attr::Software, software);
    // RFC 8489 §9.2.4: responses to authenticated requests carry integrity of the same kind.
    if (integrity && req_.authenticated) {
        if (req_.integrity == IntegrityKind::Sha256)
            b_.add_message_integrity_sha256(req_.key.span());
        else
            b_.add_message_integrity(req_.key.span());
    }
    if (req_.msg.find(stun::attr::Fingerprint) != nullptr) b_.add_fingerprint();
    if (!b_.ok()) return;  // cannot happen with our fixed-size responses; never send a torn one
    out.push_back(ToClient{req_.from, b_.bytes(), {}, 0});
}

namespace {

// Maps an Allocate error to its metrics reason; nullopt for those counted elsewhere.
std::optional<AllocateRefusal> refusal_of(StunCode code) {
    switch (code) {
        case StunCode::Unauthenticated:
        case StunCode::WrongCredentials:
        case StunCode::StaleNonce:
        case StunCode::AllocationQuotaReached: return std::nullopt;
        case StunCode::BadRequest:
        case StunCode::UnknownAttribute: return AllocateRefusal::BadRequest;
        case StunCode::AllocationMismatch: return AllocateRefusal::Mismatch;
        case StunCode::AddressFamilyNotSupported: return AllocateRefusal::Family;
        case StunCode::UnsupportedTransport: return AllocateRefusal::Transport;
        case StunCode::Forbidden: return AllocateRefusal::Forbidden;
        case StunCode::InsufficientCapacity: return AllocateRefusal::Capacity;
        default: return AllocateRefusal::Other;
    }
}

}  // namespace

std::string_view to_string(AllocateRefusal r) {
    switch (r) {
        case AllocateRefusal::BadRequest: return "bad_request";
        case AllocateRefusal::Mismatch: return "allocation_mismatch";
        case AllocateRefusal::Family: return "address_family";
        case AllocateRefusal::Transport: return "unsupported_transport";
        case AllocateRefusal::Forbidden: return "forbidden";
        case AllocateRefusal::Capacity: return "capacity";
        case AllocateRefusal::Other:
        case AllocateRefusal::Count: break;
    }
    return "other";
}

void Server::send_error(const Request& req, StunCode code, std::string_view reason, std::vector<Action>& out,
                        bool with_integrity) {
    if (req.msg.method() == stun::method::Allocate)
        if (auto r = refusal_of(code)) ++stats_.allocate_refused[static_cast<std::size_t>(*r)];
    ResponseWriter w(*this, req, stun::Class::Error);
    w.builder().add_error_code(code, reason);
    w.finish(out, with_integrity);
}

void add_challenge(stun::MessageBuilder& b, const config::Realm& realm, const std::string& nonce) {
    b.add_string(stun::attr::Realm, realm.name);
    b.add_string(stun::attr::Nonce, nonce);
    // RFC 8489 §14.11: MD5 first (what legacy clients use), then SHA-256; no parameters.
    static constexpr std::uint8_t kAlgorithms[] = {0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00};
    b.add(stun::attr::PasswordAlgorithms, kAlgorithms);
}

bool Server::refuse_peer(const Request& req, Allocation& a, const Endpoint& peer, std::vector<Action>& out) {
    // RFC 8656 §9.1 / §12.1: the peer's family must match a relayed address of the allocation.
    if (a.relay_for(peer.ip.family) == nullptr) {
        send_error(req, StunCode::PeerAddressFamilyMismatch, "Peer Address Family Mismatch", out);
        return true;
    }
    // The gateway's media address is a peer for its own realms only (issue 4); for the rest it
    // is one of the server's addresses like any other, which the policy below denies by default.
    if (local_ != nullptr && local_->is_local(peer)) {
        const auto realm = shared_.config->realms.find(a.realm);
        if (realm != shared_.config->realms.end() && realm->second.gateway.enabled) {
            a.gateway_peer = true;
            return false;
        }
    }
    if (!policy_.allowed(peer.ip)) {
        ++stats_.forbidden_peers;
        send_error(req, StunCode::Forbidden, "Forbidden", out);
        return true;
    }
    return false;
}

}  // namespace turnbridge::turn
