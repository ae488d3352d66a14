// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/session_timer.hpp"

#include <algorithm>
#include <charconv>

#include "text.hpp"

namespace turnbridge::sip {
namespace {

std::optional<std::uint32_t> delta_seconds(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    std::uint32_t n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end == v.data()) return std::nullopt;
    return n;
}

std::optional<std::string> first_of(const Message& m, std::string_view name, std::string_view compact) {
    if (auto v = m.header(name)) return v;
    return compact.empty() ? std::nullopt : m.header(compact);
}

}  // namespace

std::optional<SessionExpires> session_expires_of(const Message& m) {
    const auto v = first_of(m, "session-expires", "x");
    if (!v) return std::nullopt;
    const auto delta = delta_seconds(*v);
    if (!delta) return std::nullopt;
    SessionExpires se{*delta};
    const auto params = text::lower(*v);
    if (params.find("refresher=uac") != std::string::npos) se.refresher = SessionExpires::Refresher::Uac;
    else if (params.find("refresher=uas") != std::string::npos) se.refresher = SessionExpires::Refresher::Uas;
    return se;
}

std::optional<std::uint32_t> min_se_of(const Message& m) {
    const auto v = m.header("min-se");
    return v ? delta_seconds(*v) : std::nullopt;
}

void SessionTimer::add_to_request(Message& request, bool refresh) const {
    if (!config_.enabled) return;
    request.add_header("Supported", "timer");
    const std::uint32_t min_se = std::max(config_.min_se, peer_min_se_);
    std::uint32_t se = asked_ != 0 ? asked_ : config_.session_expires;
    if (refresh && interval_ != 0) se = interval_;
    se = std::max(se, min_se);
    request.add_header("Session-Expires", std::to_string(se) + (refresh ? ";refresher=uac" : ""));
    request.add_header("Min-SE", std::to_string(min_se));
}

std::optional<std::uint32_t> SessionTimer::too_small(const Message& request) const {
    if (!config_.enabled) return std::nullopt;
    const auto se = session_expires_of(request);
    if (se && se->delta < config_.min_se) return config_.min_se;
    return std::nullopt;
}

void SessionTimer::add_422(Message& response) const { response.add_header("Min-SE", std::to_string(config_.min_se)); }

void SessionTimer::answer(Time now, const Message& request, Message& response) {
    if (!config_.enabled) return;
    const bool uac_supports = request.has_option_tag("supported", "timer") || request.has_option_tag("k", "timer");
    const auto se = session_expires_of(request);
    std::uint32_t interval = 0;
    bool uac_refreshes = false;
    if (se) {
        interval = std::max(se->delta, config_.min_se);
        // §9: the UAC's choice stands; else the UAC if it supports timers, else us.
        uac_refreshes = se->refresher == SessionExpires::Refresher::Uac ||
                        (se->refresher == SessionExpires::Refresher::None && uac_supports);
        if (se->refresher == SessionExpires::Refresher::Uac && !uac_supports) uac_refreshes = false;
    } else if (uac_supports) {
        // §9: the UAC supports timers but asked for none: we may ask, and let it refresh.
        interval = std::max(config_.session_expires, min_se_of(request).value_or(0));
        uac_refreshes = true;
    } else {
        return;   // the peer knows nothing of timers: none (§9 lets us refresh, but a BYE on expiry would surprise it)
    }
    response.add_header("Supported", "timer");
    if (uac_supports) response.add_header("Require", "timer");
    response.add_header("Session-Expires", std::to_string(interval) + (uac_refreshes ? ";refresher=uac" : ";refresher=uas"));
    start(now, interval, !uac_refreshes);
}

void SessionTimer::answered(Time now, const Message& response) {
    if (!config_.enabled) return;
    const auto se = session_expires_of(response);
    if (!se) {
        // §7.2: no Session-Expires in the 2xx: the session does not expire.
        stop();
        return;
    }
    start(now, std::max(se->delta, std::uint32_t{1}), se->refresher != SessionExpires::Refresher::Uas);
}

bool SessionTimer::on_422(const Message& response) {
    const auto min = min_se_of(response);
    if (!config_.enabled || !min) return false;
    const std::uint32_t before = std::max(asked_ != 0 ? asked_ : config_.session_expires, std::max(config_.min_se, peer_min_se_));
    peer_min_se_ = std::max(peer_min_se_, *min);
    asked_ = std::max(before, *min);
    if (interval_ != 0) interval_ = std::max(interval_, *min);
    return *min > before || asked_ > before;
}

void SessionTimer::start(Time now, std::uint32_t interval, bool we_refresh) {
    interval_ = interval;
    we_refresh_ = we_refresh;
    started_ = now;
    retry_.reset();
}

std::optional<Time> SessionTimer::refresh_at() const {
    if (!started_ || !we_refresh_) return std::nullopt;
    if (retry_) return retry_;
    return *started_ + std::chrono::milliseconds(std::uint64_t{interval_} * 500);
}

std::optional<Time> SessionTimer::expires_at() const {
    if (!started_) return std::nullopt;
    const auto full = std::chrono::seconds(interval_);
    if (we_refresh_) return *started_ + full;
    const auto margin = std::min<std::chrono::seconds>(std::chrono::seconds(32), full / 3);
    return *started_ + full - margin;
}

}  // namespace turnbridge::sip
