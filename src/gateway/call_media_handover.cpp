// SPDX-License-Identifier: Apache-2.0
// CallMedia's browser leg handed to another browser (issue 14): the trunk's REFER moves a call
// to another user of the realm, whose browser gets our session as a new offer. The trunk leg
// (its socket, codec, SRTP keys) does not change, so the trunk is asked for nothing; the old
// browser keeps the media until the new one has answered. The new browser is a new ICE peer
// (fresh ufrag and password, RFC 8445 §5.3) and a new DTLS peer (its own fingerprint, RFC 8842
// §5.5), so both start over; the old browser's packets are strangers from then on.
#include "turnbridge/gateway/call_media.hpp"

namespace turnbridge::gateway {

std::optional<std::string> CallMedia::new_browser_offer() {
    // Only an answered call moves, and not in the middle of another offer/answer.
    if (ended() || !trunk_ || !browser_ || pending_from_browser_) return std::nullopt;
    LocalMedia l = local_;
    l.ice = make_ice_credentials(config_.random);
    l.dtls_role.reset();   // actpass: the new browser picks its role (RFC 8842 §5.2)
    l.session_version = ++local_.session_version;
    handover_ = l;
    return build_browser_offer(l);
}

bool CallMedia::take_new_browser(const std::string& answer) {
    if (!handover_ || ended()) return false;
    auto sdp = parse_sdp(answer);
    if (!sdp) return false;
    auto b = accept_browser_answer(*sdp, *handover_);
    if (!b) return false;
    local_ = std::move(*handover_);
    handover_.reset();
    ice_ = IceLiteResponder(local_.ice, {});
    dtls_.reset();
    dtls_out_.clear();
    dtls_from_.reset();
    browser_.reset();   // apply_browser sets up DTLS and the codec pipeline afresh
    apply_browser(*b);
    note_remote(true, *sdp);
    return true;
}

}  // namespace turnbridge::gateway
