// SPDX-License-Identifier: Apache-2.0
#pragma once
// ICE-lite responder (RFC 8445 §2.5, §7.3): the gateway never sends checks; it answers the
// browser's Binding requests with short-term credentials and takes the pair the browser nominates.
// A lite agent is always controlled (RFC 8445 §6.1.1).
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
    };
    // One datagram classified as STUN (demux.hpp). Responses go back to `from`.
    // `out` needs about 100 bytes.
    Outcome on_stun(Time now, const Endpoint& from, stun::Bytes datagram, stun::MutableBytes out);

    // The nominated remote address, where media goes. Later nominations replace it.
    const std::optional<Endpoint>& selected() const { return selected_; }
    // Time of the last authenticated check; the caller ends the call when consent lapses
    // (RFC 7675 §5.1: 30 s).
    std::optional<Time> last_consent() const { return last_consent_; }

private:
    IceCredentials local_;
    IceCredentials remote_;
    std::optional<Endpoint> selected_;
    std::optional<Time> last_consent_;
};

}  // namespace turnbridge::gateway
