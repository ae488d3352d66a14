// SPDX-License-Identifier: Apache-2.0
#pragma once
// ICE-lite responder (RFC 8445 §2.5, §7.3): the gateway never sends checks; it answers the
// browser's Binding requests with short-term credentials and takes the pair the browser nominates.
// A lite agent is always controlled (RFC 8445 §6.1.1).
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "turnbridge/base/address.hpp"
#include "turnbridge/gateway/browser_sdp.hpp"
#include "turnbridge/stun/message.hpp"

namespace turnbridge::gateway {

using Time = std::chrono::steady_clock::time_point;

constexpr std::uint16_t kRoleConflict = 487;  // RFC 8445 §7.3.1.1, §19.2

class IceLiteResponder {
public:
    // `remote` may have an empty ufrag while the browser's SDP is not known yet (early checks).
    IceLiteResponder(IceCredentials local, IceCredentials remote)
        : local_(std::move(local)), remote_(std::move(remote)) {}
    void set_remote(IceCredentials remote) { remote_ = std::move(remote); }

    struct Outcome {
        std::size_t response_size = 0;  // bytes written to `out`; 0 means send nothing
        bool valid = false;             // an authenticated check (refreshes consent, RFC 7675 §5.1)
        bool nominated = false;         // it carried USE-CANDIDATE (RFC 8445 §7.3.1.5)
        bool rejected = false;          // a check without our credentials: not answered (issue 11)
    };
    // One datagram classified as STUN (demux.hpp). Responses go back to `from`.
    // `out` needs about 100 bytes. Deviation: RFC 8489 §9.1.3 answers a check without valid
    // credentials with 400/401; as pion/ice does, it gets nothing, so a stranger learns nothing
    // and a forged source gets nothing reflected (issue 11).
    Outcome on_stun(Time now, const Endpoint& from, stun::Bytes datagram, stun::MutableBytes out);

    // The nominated remote address, where media goes. Later nominations replace it.
    const std::optional<Endpoint>& selected() const { return selected_; }
    // Where media may come from: the selected pair once there is one; before that, any address
    // that sent an authenticated check (a valid pair, RFC 8445 §7.3.1.4), so a browser may start
    // DTLS before it nominates. Everything else is a stranger's.
    bool accepts(const Endpoint& from) const;
    // `from` sent an authenticated check (one of the last few such sources).
    bool checked(const Endpoint& from) const;
    // Time of the last authenticated check; the caller ends the call when consent lapses
    // (RFC 7675 §5.1: 30 s).
    std::optional<Time> last_consent() const { return last_consent_; }

private:
    IceCredentials local_;
    IceCredentials remote_;
    std::optional<Endpoint> selected_;
    std::optional<Time> last_consent_;
    // Sources of authenticated checks, oldest overwritten: a browser has a few candidates.
    static constexpr std::size_t kMaxValid = 8;
    std::array<Endpoint, kMaxValid> valid_{};
    std::size_t n_valid_ = 0;
};

}  // namespace turnbridge::gateway
