// SPDX-License-Identifier: Apache-2.0
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

void Server::send_error(const Request& req, StunCode code, std::string_view reason, std::vector<Action>& out,
                        bool with_integrity) {
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

bool Server::refuse_peer(const Request& req, const Allocation& a, const Endpoint& peer, std::vector<Action>& out) {
    // RFC 8656 §9.1 / §12.1: the peer's family must match a relayed address of the allocation.
    if (a.relay_for(peer.ip.family) == nullptr) {
        send_error(req, StunCode::PeerAddressFamilyMismatch, "Peer Address Family Mismatch", out);
        return true;
    }
    if (!policy_.allowed(peer.ip)) {
        ++stats_.forbidden_peers;
        send_error(req, StunCode::Forbidden, "Forbidden", out);
        return true;
    }
    return false;
}

}  // namespace turnbridge::turn
