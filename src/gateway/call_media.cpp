// SPDX-License-Identifier: Apache-2.0
// CallMedia, signalling side: SDP mapping between the legs (RFC 3264 offer/answer on each) and
// what each negotiation changes in the media state. The packet path is in call_media_path.cpp.
#include "turnbridge/gateway/call_media.hpp"

#include <algorithm>

namespace turnbridge::gateway {
namespace {

// A direction as the other side writes it (RFC 3264 §6.1: sendonly is answered recvonly).
Direction mirror(Direction d) {
    switch (d) {
    case Direction::SendOnly: return Direction::RecvOnly;
    case Direction::RecvOnly: return Direction::SendOnly;
    default: return d;
    }
}

// G.722 first when allowed (wideband wins where both ends have it), then both G.711 laws in the
// browser side's order.
std::vector<TrunkCodec> trunk_preference(const std::vector<AudioCodec>& codecs, bool g722) {
    std::vector<TrunkCodec> pref;
    if (g722) pref.push_back(TrunkCodec::G722);
    for (auto c : codecs) {
        if (c == AudioCodec::Pcmu) pref.push_back(TrunkCodec::Pcmu);
        if (c == AudioCodec::Pcma) pref.push_back(TrunkCodec::Pcma);
    }
    for (auto c : {TrunkCodec::Pcmu, TrunkCodec::Pcma})
        if (std::find(pref.begin(), pref.end(), c) == pref.end()) pref.push_back(c);
    return pref;
}

// A G.711 browser's law goes first: a trunk that has it gets the bytes untouched.
void prefer_browser_law(std::vector<TrunkCodec>& pref, AudioCodec browser) {
    if (browser == AudioCodec::Opus) return;
    const auto law = browser == AudioCodec::Pcmu ? TrunkCodec::Pcmu : TrunkCodec::Pcma;
    pref.erase(std::remove(pref.begin(), pref.end(), law), pref.end());
    pref.insert(pref.begin(), law);
}

// The direction a peer wrote on its first audio section (port 0: inactive).
std::optional<Direction> audio_direction(const SessionDescription& sdp) {
    for (const auto& m : sdp.media)
        if (m.media == "audio") return m.port == 0 ? Direction::Inactive : m.direction;
    return std::nullopt;
}

std::string origin_of(const SessionDescription& sdp) {
    return sdp.origin_session_id + " " + sdp.origin_version + " " + sdp.origin_address;
}

}  // namespace

MediaPacket& MediaOutput::add(MediaLeg leg, const Endpoint& to) {
    if (used_ == slots_.size()) slots_.push_back(std::make_unique<MediaPacket>());
    MediaPacket& p = *slots_[used_++];
    p.leg = leg;
    p.to = to;
    p.size = 0;
    return p;
}

CallMedia::CallMedia(CallMediaConfig config)
    : config_(std::move(config)),
      ice_({}, {}),
      browser_stream_(RtpStream::random(config_.random)),
      trunk_stream_(RtpStream::random(config_.random)),
      browser_rtcp_(config_.random, "turnbridge"),
      trunk_rtcp_(config_.random, "turnbridge") {
    local_.ice = make_ice_credentials(config_.random);
    local_.fingerprint_sha256 = config_.certificate->fingerprint_sha256();
    local_.address = config_.browser_address;
    local_.preference = config_.codecs;
    local_.session_id = random_value<std::uint32_t>(config_.random);
    local_.session_version = 0;  // incremented before each SDP we write (RFC 3264 §8)
    local_.ssrc = browser_stream_.ssrc();
    ice_ = IceLiteResponder(local_.ice, {});
    trunk_local_.address = config_.trunk_address;
    trunk_local_.preference = trunk_preference(config_.codecs, config_.trunk_g722);
    trunk_local_.session_id = local_.session_id;
    trunk_local_.session_version = 0;
    trunk_local_.srtp = config_.trunk_srtp;
    // RFC 4568 §8.1: fresh keys per call, kept for its re-offers (a new key would need a new session).
    if (config_.trunk_srtp != SrtpMode::Off) trunk_local_.crypto = offer_crypto(config_.random);
    if (config_.trunk_rtcp_address) trunk_local_.rtcp_port = config_.trunk_rtcp_address->port;
}


std::optional<std::string> CallMedia::map_offer(bool from_browser, const std::string& sdp) {
    if (ended()) return std::nullopt;
    if (!from_browser && sdp.empty() && !trunk_ && !pending_from_browser_) {
        // An inbound late offer: the browser gets our own session; its answer shapes our offer.
        local_.direction = Direction::SendRecv;
        ++local_.session_version;
        pending_from_browser_ = false;
        pending_offer_.reset();
        late_offer_ = true;
        return build_browser_offer(local_);
    }
    auto offer = parse_sdp(sdp);
    if (!offer) return std::nullopt;
    if (from_browser) {
        // Checked now so that an offer we could never answer is refused (488) before the trunk rings.
        LocalMedia probe = local_;
        probe.direction = Direction::SendRecv;
        auto answer = answer_browser_offer(*offer, probe);
        if (!answer) return std::nullopt;
        // Hold travels on: what the browser offers (sendonly, inactive) is what we offer the trunk.
        trunk_local_.direction = mirror(answer->media.direction);
        ++trunk_local_.session_version;
        pending_from_browser_ = true;
        note_remote(true, *offer);
        pending_offer_ = std::move(*offer);
        return to_trunk(build_trunk_offer(trunk_local_));
    }
    TrunkLocal probe = trunk_local_;
    probe.direction = Direction::SendRecv;
    auto answer = answer_trunk_offer(*offer, probe);
    if (!answer) {
        if (!trunk_) refuse_trunk_sdp(answer.error());   // a first offer: the call ends with 488
        return std::nullopt;
    }
    local_.direction = mirror(answer->media.direction);
    ++local_.session_version;
    pending_from_browser_ = false;
    note_remote(false, *offer);
    pending_offer_ = std::move(*offer);
    return build_browser_offer(local_);
}

std::optional<std::string> CallMedia::map_answer(bool from_browser, const std::string& sdp) {
    if (ended()) return std::nullopt;
    // A 200 without SDP after a 183 that had the answer (RFC 3261 §13.2.1 allows the final
    // response to omit it): the answer stands.
    if (!from_browser && sdp.empty() && !pending_from_browser_ && !last_browser_answer_.empty())
        return last_browser_answer_;
    auto answer = parse_sdp(sdp);
    if (!answer) return std::nullopt;
    if (!from_browser) {
        if (pending_from_browser_ != true) {
            // A 200 after a 183 that carried the same answer: the browser gets the same SDP again.
            if (last_browser_answer_.empty() || pending_from_browser_) return std::nullopt;
            auto t = accept_trunk_answer(*answer, trunk_local_);
            if (!t) return std::nullopt;
            apply_trunk(*t);
            note_remote(false, *answer);
            return last_browser_answer_;
        }
        auto t = accept_trunk_answer(*answer, trunk_local_);
        if (!t) {
            refuse_trunk_sdp(t.error());   // the call ends: BYE to the trunk, 488 to the browser
            return std::nullopt;
        }
        // What the trunk accepted bounds what we answer the browser (RFC 3264 §6.1).
        local_.direction = mirror(t->direction);
        ++local_.session_version;
        auto a = answer_browser_offer(*pending_offer_, local_);
        if (!a) return std::nullopt;
        apply_trunk(*t);
        apply_browser(a->media);
        note_remote(false, *answer);
        pending_from_browser_.reset();
        pending_offer_.reset();
        last_browser_answer_ = std::move(a->sdp);
        return last_browser_answer_;
    }
    // A browser's answer to our offer. Without one pending (a second fork answering an inbound
    // call), the first answer stands and this one is refused.
    if (pending_from_browser_ != false) return std::nullopt;
    auto b = accept_browser_answer(*answer, local_);
    if (!b) return std::nullopt;
    if (late_offer_) return late_trunk_offer(*b, *answer);
    // A G.711 browser: answer the trunk with the same law when it offered it, so nothing is
    // transcoded (the bytes pass through).
    prefer_browser_law(trunk_local_.preference, b->codec);
    trunk_local_.direction = mirror(b->direction);
    ++trunk_local_.session_version;
    auto t = answer_trunk_offer(*pending_offer_, trunk_local_);
    if (!t) return std::nullopt;
    apply_browser(*b);
    apply_trunk(t->media);
    note_remote(true, *answer);
    pending_from_browser_.reset();
    pending_offer_.reset();
    return to_trunk(std::move(t->sdp));
}

std::optional<std::string> CallMedia::late_trunk_offer(const BrowserMedia& b, const SessionDescription& answer) {
    // The browser's codec first when it is G.711 (nothing to transcode), then the rest.
    prefer_browser_law(trunk_local_.preference, b.codec);
    trunk_local_.direction = mirror(b.direction);
    ++trunk_local_.session_version;
    apply_browser(b);
    note_remote(true, answer);
    pending_from_browser_.reset();
    late_offer_ = false;
    return to_trunk(build_trunk_offer(trunk_local_));
}

std::optional<sip::MediaSdp::LateAnswers> CallMedia::answer_late_offer(const std::string& trunk_offer) {
    if (ended() || pending_from_browser_ != true || !pending_offer_) return std::nullopt;
    auto offer = parse_sdp(trunk_offer);
    if (!offer) return std::nullopt;
    auto t = answer_trunk_offer(*offer, trunk_local_);
    if (!t) return std::nullopt;
    local_.direction = mirror(t->media.direction);
    ++local_.session_version;
    auto a = answer_browser_offer(*pending_offer_, local_);
    if (!a) return std::nullopt;
    apply_trunk(t->media);
    apply_browser(a->media);
    note_remote(false, *offer);
    pending_from_browser_.reset();
    pending_offer_.reset();
    last_browser_answer_ = a->sdp;
    return LateAnswers{to_trunk(std::move(t->sdp)), std::move(a->sdp)};
}

void CallMedia::note_remote(bool from_browser, const SessionDescription& sdp) {
    auto& dir = from_browser ? browser_dir_ : trunk_dir_;
    dir = audio_direction(sdp);
    if (!from_browser) trunk_origin_ = origin_of(sdp);
}

std::string CallMedia::to_trunk(std::string sdp) {
    last_trunk_sdp_ = sdp;
    return sdp;
}

TrunkLocal CallMedia::trunk_local_now() const {
    TrunkLocal l = trunk_local_;
    if (trunk_) {
        auto& pref = l.preference;
        pref.erase(std::remove(pref.begin(), pref.end(), trunk_->codec), pref.end());
        pref.insert(pref.begin(), trunk_->codec);
    }
    return l;
}

sip::MediaSdp::LocalAnswer CallMedia::answer_locally(bool from_browser, const std::string& sdp, bool force) {
    using Kind = LocalAnswer::Kind;
    if (ended()) return {Kind::Refused, {}};
    auto offer = parse_sdp(sdp);
    if (!offer) return {Kind::Refused, {}};
    const auto dir = audio_direction(*offer);
    if (from_browser) {
        if (!browser_) return {Kind::Relay, {}};
        // Hold or resume from the browser goes to the trunk; a refresh, an ICE restart or a
        // codec change (JsSIP's session-timer re-INVITEs) stays on the browser leg.
        if (!force && dir != browser_dir_) return {Kind::Relay, {}};
        LocalMedia l = local_;
        ++l.session_version;
        auto a = answer_browser_offer(*offer, l);
        if (!a) return {Kind::Refused, {}};
        local_.session_version = l.session_version;
        apply_browser(a->media);
        note_remote(true, *offer);
        return {Kind::Answered, std::move(a->sdp)};
    }
    if (!trunk_) return {Kind::Relay, {}};
    // A carrier's hold (sendonly, inactive) and resume go to the browser; a new address or codec
    // is the trunk leg's own business: followed here, the browser hears nothing of it.
    if (!force && dir != trunk_dir_) return {Kind::Relay, {}};
    auto local = trunk_local_now();
    auto a = answer_trunk_offer(*offer, local);
    if (!a) return {Kind::Refused, {}};
    if (a->sdp != last_trunk_sdp_) {
        ++trunk_local_.session_version;
        local.session_version = trunk_local_.session_version;
        a = answer_trunk_offer(*offer, local);
        if (!a) return {Kind::Refused, {}};
    }
    // RFC 3264 §8: the same o= version is the same session (a refresh): nothing to apply.
    if (origin_of(*offer) != trunk_origin_ || dir != trunk_dir_) apply_trunk(a->media);
    note_remote(false, *offer);
    return {Kind::Answered, to_trunk(std::move(a->sdp))};
}

std::optional<std::string> CallMedia::current_offer(bool to_browser) {
    if (to_browser || ended() || !trunk_) return std::nullopt;
    auto local = trunk_local_now();
    auto sdp = build_trunk_offer(local);
    if (sdp != last_trunk_sdp_) {
        local.session_version = ++trunk_local_.session_version;
        sdp = build_trunk_offer(local);
    }
    return to_trunk(std::move(sdp));
}

bool CallMedia::take_answer(bool from_browser, const std::string& sdp) {
    if (from_browser || ended()) return false;
    auto answer = parse_sdp(sdp);
    if (!answer) return false;
    auto t = accept_trunk_answer(*answer, trunk_local_now());
    if (!t) {
        if (!trunk_) refuse_trunk_sdp(t.error());   // a late offer's answer in the ACK
        return false;
    }
    apply_trunk(*t);
    note_remote(false, *answer);
    return true;
}

void CallMedia::apply_browser(const BrowserMedia& m) {
    ice_.set_remote(m.remote_ice);  // an ICE restart (new ufrag/pwd) takes effect here
    // RFC 8842 §5.5: the DTLS association stays across re-INVITEs unless the peer's fingerprint or
    // the roles change; then a new handshake keys new SRTP sessions.
    const bool new_dtls = !dtls_ || !browser_ || browser_->remote_fingerprint != m.remote_fingerprint ||
                          browser_->remote_fingerprint_algorithm != m.remote_fingerprint_algorithm ||
                          browser_->dtls_role != m.dtls_role;
    const bool codec_changed = !browser_ || browser_->codec != m.codec;
    browser_ = m;
    local_.dtls_role = m.dtls_role;  // later actpass re-offers are answered in the same role
    if (new_dtls) {
        dtls_ = std::make_unique<DtlsSrtpEndpoint>(config_.certificate, m.dtls_role, m.remote_fingerprint_algorithm,
                                                   m.remote_fingerprint, config_.dtls);
        if (dtls_->state() == DtlsSrtpEndpoint::State::Failed) fail("DTLS setup: " + dtls_->failure());
        else state_ = State::Negotiated;
    }
    if (codec_changed) rebuild_pipeline();
}

void CallMedia::apply_trunk(const TrunkMedia& t) {
    // A trunk that stops or starts sending telephone-events switches in-band detection too.
    const bool codec_changed = !trunk_ || trunk_->codec != t.codec || trunk_->telephone_event.has_value() != t.telephone_event.has_value();
    // A new address in the SDP (re-INVITE to another media server) replaces the one learnt from
    // packets; c=0.0.0.0 (RFC 3264 §8.4 hold) keeps it.
    if (!t.remote.ip.is_unspecified() && t.remote.port != 0 && (!trunk_ || trunk_->remote != t.remote)) {
        // The party left behind (issue 14: a transfer's fallback swapped the trunk dialog; a
        // carrier's media server often has one IP for both) may still send a while: its RTP
        // must not take the latch the new address opens.
        trunk_left_ = trunk_remote_;
        trunk_remote_ = t.remote;
        trunk_latch_open_ = true;
    }
    const bool rekey = !trunk_ || trunk_->sdes != t.sdes;
    trunk_ = t;
    last_trunk_in_.reset();   // a new direction (hold, resume) starts the silence clock again
    if (rekey) key_trunk_srtp();
    if (codec_changed) rebuild_pipeline();
}

void CallMedia::rebuild_pipeline() {
    if (!browser_ || !trunk_) return;
    to_trunk_ = std::make_unique<BrowserToTrunk>(browser_->codec, trunk_->codec, config_.jitter_frames);
    // In-band DTMF is looked for only where it is the trunk's one way to send digits (no
    // telephone-event negotiated) and the browser can take them as events (issue 14).
    const bool detect = !trunk_->telephone_event && browser_->telephone_event;
    to_browser_ = std::make_unique<TrunkToBrowser>(trunk_->codec, browser_->codec, detect);
    // RFC 4733 event durations tick at the event's clock on each leg: 8000 toward the trunk;
    // on the browser leg the codec's (48000 beside Opus), or 8000 where the browser offered
    // only that (Firefox). Event start times follow each leg's stream clock.
    const std::uint32_t browser_events = browser_->telephone_event_rate ? browser_->telephone_event_rate : browser_->clock_rate;
    dtmf_to_trunk_.emplace(browser_events, 8000);
    dtmf_to_browser_.emplace(8000, browser_events);
    trunk_in_ssrc_.reset();  // the browser clock's rate may have changed: map timestamps afresh
}

void CallMedia::fail(std::string why) {
    if (ended()) return;
    state_ = State::Failed;
    failure_ = std::move(why);
}

std::optional<DtlsSrtpEndpoint::State> CallMedia::dtls_state() const {
    if (!dtls_) return std::nullopt;
    return dtls_->state();
}

std::optional<AudioCodec> CallMedia::browser_codec() const {
    if (!browser_) return std::nullopt;
    return browser_->codec;
}

std::optional<TrunkCodec> CallMedia::trunk_codec() const {
    if (!trunk_) return std::nullopt;
    return trunk_->codec;
}

std::string CallMedia::codec_names() const {
    std::string s(browser_ ? to_string(browser_->codec) : "-");
    s += '/';
    s += trunk_ ? to_string(trunk_->codec) : "-";
    return s;
}

std::optional<Time> CallMedia::next_wakeup() const {
    if (!dtls_ || ended()) return std::nullopt;
    return dtls_->next_timeout();
}

}  // namespace turnbridge::gateway
