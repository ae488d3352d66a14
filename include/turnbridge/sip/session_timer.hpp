// SPDX-License-Identifier: Apache-2.0
#pragma once
// RFC 4028 session timers for one dialog (sans-I/O): the Session-Expires / Min-SE negotiation on
// the requests we send and the responses we give, who refreshes, and when a refresh is due or the
// session has expired. sip::Call runs one on its trunk leg.
#include <cstdint>
#include <optional>

#include "turnbridge/sip/message.hpp"

namespace turnbridge::sip {

struct SessionTimerConfig {
    bool enabled = true;
    std::uint32_t session_expires = 1800;   // what we ask for, seconds (chan_pjsip's default)
    std::uint32_t min_se = 90;              // RFC 4028 §4: the smallest we accept, never below 90
};

// RFC 4028 §4: Session-Expires (compact "x") = delta-seconds [;refresher=uac|uas].
struct SessionExpires {
    std::uint32_t delta = 0;
    enum class Refresher { None, Uac, Uas } refresher = Refresher::None;
};
std::optional<SessionExpires> session_expires_of(const Message& m);
std::optional<std::uint32_t> min_se_of(const Message& m);

class SessionTimer {
public:
    explicit SessionTimer(SessionTimerConfig config = {}) : config_(config) {}

    // Our requests (initial INVITE, re-INVITE, UPDATE): Supported: timer, Session-Expires and
    // Min-SE (RFC 4028 §7.1, §7.4: we stay the refresher of what we refresh).
    void add_to_request(Message& request, bool refresh) const;
    // RFC 4028 §8.1: a request whose Session-Expires is below our Min-SE gets 422 with our Min-SE.
    std::optional<std::uint32_t> too_small(const Message& request) const;
    void add_422(Message& response) const;
    // RFC 4028 §9: our 2xx to the peer's INVITE/UPDATE: choose the interval and the refresher,
    // write them in `response` and start timing at `now`.
    void answer(Time now, const Message& request, Message& response);
    // RFC 4028 §7.2: a 2xx to our request: the interval and refresher it names (none: no timer).
    void answered(Time now, const Message& response);
    // RFC 4028 §7.3: a 422 to our request: ask for its Min-SE next time. False when that gives nothing new.
    bool on_422(const Message& response);

    bool active() const { return started_.has_value(); }
    bool we_refresh() const { return we_refresh_; }
    std::uint32_t interval() const { return interval_; }
    // RFC 4028 §10: the refresher refreshes at half the interval; the other side ends the session
    // min(32 s, interval / 3) before it expires without a refresh.
    std::optional<Time> refresh_at() const;
    std::optional<Time> expires_at() const;
    // Our refresh was refused or glared: try again at `when` (still before expiry).
    void retry_at(Time when) { retry_ = when; }
    void stop() { started_.reset(); }

private:
    void start(Time now, std::uint32_t interval, bool we_refresh);

    SessionTimerConfig config_;
    std::uint32_t asked_ = 0;      // Session-Expires we ask for (0: config_.session_expires)
    std::uint32_t peer_min_se_ = 0;
    std::uint32_t interval_ = 0;
    bool we_refresh_ = false;
    std::optional<Time> started_;
    std::optional<Time> retry_;
};

}  // namespace turnbridge::sip
