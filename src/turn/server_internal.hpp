// SPDX-License-Identifier: Apache-2.0
#pragma once
// Shared by the handler files of turn::Server; not part of the public interface.
#include <string>

#include "turnbridge/turn/server.hpp"

namespace turnbridge::turn {

struct Server::Request {
    Request(const stun::Message& m, const FiveTuple& f, const config::Realm& r) : msg(m), from(f), realm(r) {}
    const stun::Message& msg;
    const FiveTuple& from;
    const config::Realm& realm;
    // Filled by authenticate().
    bool authenticated = false;
    Key key;
    IntegrityKind integrity = IntegrityKind::Sha1;
    std::string username;
    std::string account;
};

// Builds one response to `req` in the server's response buffer and queues it as a ToClient.
class ResponseWriter {
public:
    ResponseWriter(Server& server, const Server::Request& req, stun::Class cls);
    stun::MessageBuilder& builder() { return b_; }
    // Adds SOFTWARE, integrity (when the request was authenticated and `integrity`) and
    // FINGERPRINT (when the request carried one), then queues the message.
    void finish(std::vector<Action>& out, bool integrity = true);

private:
    Server& server_;
    const Server::Request& req_;
    stun::MessageBuilder b_;
};

// The realm's challenge (RFC 8489 §9.2.4): REALM, NONCE and PASSWORD-ALGORITHMS.
void add_challenge(stun::MessageBuilder& b, const config::Realm& realm, const std::string& nonce);

}  // namespace turnbridge::turn
