// SPDX-License-Identifier: Apache-2.0
// sip::Call's trunk failover (issue 14, RFC 3263 §4.3): an outbound INVITE whose target answered
// 503 or 408, whose connection failed, whose transaction timed out, or which (over UDP) heard
// nothing at all within kTryingWait, goes to the next target the router gives; the browser's
// leg waits meanwhile (it may already have heard 180, which is no promise).
#include "turnbridge/sip/call.hpp"

namespace turnbridge::sip {

void Call::set_failover(Time now, NextTarget next) {
    if (!outbound_ || uac_.empty()) return;
    next_target_ = std::move(next);
    Leg& leg = uac_.front();
    if (leg.final == 0 && !leg.address.reliable) leg.trying_by = now + kTryingWait;
}

bool Call::try_next_target(Time now, std::size_t i, int status, TransactionLayer& layer, std::vector<Action>& out) {
    if (!next_target_ || !fails_over(status) || winner_ || state_ == State::Ended || uas_.final) return false;
    auto to = next_target_();
    if (!to) return false;
    Leg& leg = uac_[i];
    // A new client transaction toward the new target: same dialog identifiers (Call-ID, From
    // tag), the next CSeq, a Via of our address there. An early dialog with the old target is void.
    auto retry = reissue_invite(leg, to->local);
    leg.address = std::move(*to);
    leg.dialog.reset();
    leg.auth_tried = false;
    leg.timer_retried = false;
    leg.trying_by.reset();
    if (!leg.address.reliable) leg.trying_by = now + kTryingWait;
    trunk_rseq_.reset();
    ++targets_tried_;
    send_uac_invite(now, leg, std::move(retry), layer, out);
    return true;
}

void Call::check_trying(Time now, TransactionLayer& layer, std::vector<Action>& out) {
    for (std::size_t i = 0; i < uac_.size(); ++i) {
        Leg& leg = uac_[i];
        if (!leg.trying_by || *leg.trying_by > now) continue;
        leg.trying_by.reset();
        if (leg.final != 0) continue;
        // Silence, not a refusal: the old transaction is forgotten (no CANCEL: §9.1 allows none
        // before a provisional), and if no target is left Timer B still ends it as before.
        const std::string old = leg.invite_tx;
        if (try_next_target(now, i, 408, layer, out)) layer.abandon(old);
    }
}

}  // namespace turnbridge::sip
