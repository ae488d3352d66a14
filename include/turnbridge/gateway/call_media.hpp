// SPDX-License-Identifier: Apache-2.0
#pragma once
// One gateway call's media (sans-I/O): the browser leg (ICE-lite, DTLS-SRTP, Opus or G.711 over
// SRTP) joined to the trunk leg (plain G.711 or G.722 RTP, RFC 4733 events). It maps SDP between
// the legs for sip::Call, and moves datagrams and 20 ms ticks in, datagrams to send out.
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/gateway/browser_sdp.hpp"
#include "turnbridge/gateway/call_quality.hpp"
#include "turnbridge/gateway/dtls_srtp.hpp"
#include "turnbridge/gateway/ice_lite.hpp"
#include "turnbridge/gateway/rtcp_session.hpp"
#include "turnbridge/gateway/rtp_receive_stats.hpp"
#include "turnbridge/gateway/rtp_stream.hpp"
#include "turnbridge/gateway/telephone_event.hpp"
#include "turnbridge/gateway/transcoder.hpp"
#include "turnbridge/gateway/trunk_join.hpp"
#include "turnbridge/gateway/trunk_sdp.hpp"
#include "turnbridge/sip/call.hpp"

namespace turnbridge::gateway {

// TrunkRtcp: the trunk leg's RTCP socket (RTCP without rtcp-mux, RFC 3550 §11).
enum class MediaLeg : std::uint8_t { Browser, Trunk, TrunkRtcp };

// Large enough for a DTLS flight datagram (MTU 1200), an SRTP packet with the largest Opus frame
// (12 + 1275 + 20) and a STUN response.
constexpr std::size_t kMaxMediaDatagram = 1500;

struct MediaPacket {
    MediaLeg leg = MediaLeg::Browser;
    Endpoint to;
    std::size_t size = 0;
    std::array<std::uint8_t, kMaxMediaDatagram> buf;
    std::span<const std::uint8_t> bytes() const { return {buf.data(), size}; }
};

// The caller's reusable output: clear() keeps the slots, so after the first packets of a call
// nothing is allocated per packet.
class MediaOutput {
public:
    void clear() { used_ = 0; }
    std::size_t size() const { return used_; }
    bool empty() const { return used_ == 0; }
    const MediaPacket& operator[](std::size_t i) const { return *slots_[i]; }
    // A slot for one datagram; the caller fills buf and sets size.
    MediaPacket& add(MediaLeg leg, const Endpoint& to);
    void discard_last() { --used_; }  // the slot add() gave was not needed

private:
    std::vector<std::unique_ptr<MediaPacket>> slots_;
    std::size_t used_ = 0;
};

struct CallMediaConfig {
    std::shared_ptr<const DtlsCertificate> certificate;
    std::vector<AudioCodec> codecs = {AudioCodec::Opus, AudioCodec::Pcmu, AudioCodec::Pcma};  // browser side
    // G.722 toward the trunk (config codecs "g722"): offered first and preferred when the trunk
    // offers it, except to a G.711 browser whose law the trunk has (then the bytes pass through).
    bool trunk_g722 = false;
    Endpoint browser_address;  // our ICE host candidate (media_ip and a port from media_ports)
    Endpoint trunk_address;    // our RTP socket toward the trunk
    SrtpMode trunk_srtp = SrtpMode::Off;   // SDES-SRTP toward the trunk (RFC 4568; config `srtp`)
    // Our RTCP socket toward the trunk (issue 14); without it no RTCP is sent to the trunk (the
    // trunk's reports with rtcp-mux are still read).
    std::optional<Endpoint> trunk_rtcp_address;
    RandomSource random = random_bytes;
    int jitter_frames = 3;     // browser-side jitter buffer target, 20 ms each
    DtlsOptions dtls;
};

class CallMedia final : public sip::MediaSdp {
public:
    // Failed: the call must end (fingerprint mismatch, DTLS or ICE consent failure). Closed: the
    // browser sent close_notify (it is hanging up). Both stop the media; failure() says why.
    enum class State : std::uint8_t { Idle, Negotiated, Connected, Failed, Closed };

    explicit CallMedia(CallMediaConfig config);
    ~CallMedia() override;

    // sip::MediaSdp. Outbound: browser offer -> trunk offer, trunk answer -> browser answer.
    // Inbound: trunk offer -> browser offer, browser answer -> trunk answer. Re-INVITEs the same
    // way, carrying hold (a=sendonly/inactive) across (RFC 3264 §8.4).
    std::optional<std::string> map_offer(bool from_browser, const std::string& sdp) override;
    std::optional<std::string> map_answer(bool from_browser, const std::string& sdp) override;
    // Mid-call offers answered without the other leg (issue 13): only a change of direction (hold,
    // resume) is relayed; a new trunk address or codec is followed here, a browser's ICE restart
    // or codec change is applied here; the same o= version changes nothing (RFC 3264 §8).
    LocalAnswer answer_locally(bool from_browser, const std::string& sdp, bool force) override;
    // Trunk leg only: our session as an offer (an SDP-less re-INVITE), its answer from the ACK.
    std::optional<std::string> current_offer(bool to_browser) override;
    bool take_answer(bool from_browser, const std::string& sdp) override;
    // Late offers (RFC 3261 §13.2.1). Inbound: map_offer(false, "") offers the browser our own
    // session, and the browser's answer becomes our offer to the trunk (G.711 + telephone-event),
    // answered in its ACK (take_answer). Outbound: the trunk's offer in its 2xx answered here.
    std::optional<LateAnswers> answer_late_offer(const std::string& trunk_offer) override;
    // A trunk's transfer (call_media_handover.cpp): the browser leg starts over with another browser.
    std::optional<std::string> new_browser_offer() override;
    bool take_new_browser(const std::string& answer) override;
    // Attended transfer (call_media_join.cpp, issue 14): `other` must be a CallMedia of the same
    // worker with a trunk session, neither joined yet. From then on each trunk party's frames go
    // to the other's trunk leg (TrunkJoin), the browser leg is dropped (its datagrams ignored,
    // no ICE consent or DTLS timers), and the trunk leg's RTCP and media timeout go on. The join
    // ends when either CallMedia is destroyed; the other then sends silence until its call ends.
    bool join_trunk(sip::MediaSdp& other) override;
    bool joined() const { return browser_released_; }

    // One datagram on our browser-leg address, direct or handed over by a local TURN allocation
    // (then `from` is that allocation's relayed address, and what goes back to it must leave
    // through the allocation). Output for either leg is appended to `out`.
    void on_browser_datagram(Time now, const Endpoint& from, std::span<const std::uint8_t> bytes, MediaOutput& out);
    // One datagram on our trunk-leg RTCP socket (RFC 3550 §6): from the trunk's IP only.
    void on_trunk_rtcp_datagram(Time now, const Endpoint& from, std::span<const std::uint8_t> bytes);
    // One datagram on our trunk-leg RTP socket.
    // Strict source (rtpengine's strict-source, Asterisk's strictrtp): only the trunk's RTP address
    // is heard. That is the address in its SDP (c=/m=), except that the first RTP packet from the
    // SDP's IP after each SDP naming an address may move the port (symmetric RTP, RFC 4961, for a
    // trunk whose NAT or media server sends from another port); from then on that address only.
    void on_trunk_datagram(Time now, const Endpoint& from, std::span<const std::uint8_t> bytes, MediaOutput& out);
    // Where the trunk's RTP is taken from and ours goes; nullopt before its SDP.
    const std::optional<Endpoint>& trunk_source() const { return trunk_remote_; }
    // Every 20 ms: one frame toward the trunk, DTLS retransmissions, ICE consent (RFC 7675).
    void on_tick(Time now, MediaOutput& out);
    // The DTLS retransmission deadline (OpenSSL's timers are 1 s and up, so the 20 ms tick that
    // follows it is soon enough); nullopt when nothing is pending.
    std::optional<Time> next_wakeup() const;

    State state() const { return state_; }
    const std::string& failure() const { return failure_; }  // why Failed/Closed; the call ends and logs it
    bool ended() const { return state_ == State::Failed || state_ == State::Closed; }
    std::optional<DtlsSrtpEndpoint::State> dtls_state() const;
    const std::optional<Endpoint>& ice_selected() const { return ice_.selected(); }
    bool ice_checked(const Endpoint& from) const { return ice_.checked(from); }  // sent us a valid check
    std::optional<AudioCodec> browser_codec() const;
    std::optional<TrunkCodec> trunk_codec() const;
    std::string codec_names() const;  // "opus/PCMU", "opus/G722", for logs and call records
    // The SDES suite of the trunk leg's SRTP; nullopt while its RTP is clear.
    std::optional<SdesSuite> trunk_srtp() const;

    // The trunk leg's SRTP seam: every datagram we send the trunk (RTP or RTCP) goes through
    // seal_trunk, in place (kSrtpMaxTrailer spare in the slot); false: drop it. Every datagram
    // from the trunk goes through open_trunk, which returns its plain bytes (in rx_), or nullopt
    // (failed authentication, replay: RFC 3711 §3.3). Clear RTP passes both unchanged.
    bool seal_trunk(MediaPacket& p);
    std::optional<std::span<const std::uint8_t>> open_trunk(std::span<const std::uint8_t> bytes);

    struct Flow {
        std::uint64_t packets = 0, bytes = 0;
    };
    struct Stats {
        Flow browser_in, browser_out, trunk_in, trunk_out;  // datagrams on the wire
        std::uint32_t dtmf_to_trunk = 0, dtmf_to_browser = 0;  // telephone-event packets (relayed or detected)
        std::uint32_t dropped = 0;  // undecryptable, unknown payload type, no destination yet
        // Datagrams from a source that is not the leg's peer (issue 11), not in the Flows above:
        // browser leg, not the ICE-selected pair (or before ICE, a source that never passed an
        // authenticated check); trunk leg, not the trunk's RTP address (trunk_source()).
        std::uint64_t stranger_browser = 0, stranger_trunk = 0;
    };
    const Stats& stats() const { return stats_; }

    // Call quality (issue 14) per leg and direction: `in` from what we received (RFC 3550 §A.3,
    // §A.8), `out` from the peer's RTCP report blocks about our stream.
    struct Quality {
        DirectionQuality browser_in, browser_out, trunk_in, trunk_out;
        CodecImpairment browser_codec, trunk_codec;
    };
    Quality quality() const;

private:
    void fail(std::string why);
    void apply_browser(const BrowserMedia& media);
    void apply_trunk(const TrunkMedia& media);
    void key_trunk_srtp();                          // trunk_srtp_ from trunk_->sdes
    void refuse_trunk_sdp(const SdpError& why);     // an SRTP refusal ends the call with its reason
    void rebuild_pipeline();
    std::string to_trunk(std::string sdp);       // notes the SDP we send the trunk
    std::optional<std::string> late_trunk_offer(const BrowserMedia& b, const SessionDescription& answer);
    TrunkLocal trunk_local_now() const;          // trunk_local_ with the running codec first
    void note_remote(bool from_browser, const SessionDescription& sdp);
    void send_dtls(const Endpoint& fallback, MediaOutput& out);
    void on_srtp(Time now, std::span<const std::uint8_t> bytes, MediaOutput& out);
    bool trunk_source_ok(const Endpoint& from, bool call_rtp);
    void browser_rtp(const RtpPacket& p, MediaOutput& out);
    void trunk_rtp(const RtpPacket& p, MediaOutput& out);
    void detected_dtmf(MediaOutput& out, const InbandDtmf::Event& e, std::uint32_t media_time);
    void send_to_browser(MediaOutput& out, const RtpHeader& h, std::span<const std::uint8_t> payload);
    void send_to_trunk(MediaOutput& out, const RtpHeader& h, std::span<const std::uint8_t> payload);
    void start_dtls_client(Time now, MediaOutput& out);
    // RTCP (call_media_rtcp.cpp): our reports toward the trunk, and what both peers report.
    void tick_rtcp(Time now, MediaOutput& out);
    void send_trunk_rtcp(MediaOutput& out, std::span<const std::uint8_t> compound);  // the one way out (SRTCP slots in here)
    void on_trunk_rtcp(Time now, std::span<const std::uint8_t> bytes);
    void on_browser_rtcp(Time now, std::span<const std::uint8_t> bytes);
    void note_browser_rtp(Time now, const RtpHeader& h);
    void note_trunk_rtp(Time now, const RtpHeader& h);
    void check_dtls();
    std::uint32_t browser_media_time(std::uint32_t trunk_timestamp, std::uint32_t trunk_ssrc);
    // Attended transfer (call_media_join.cpp): a frame of the peer's trunk party for ours, and
    // the frame our tick sends our party.
    void from_peer(const RtpPacket& p, TrunkCodec codec);
    void joined_frame(std::span<std::uint8_t, kTrunkFrameBytes> out);
    // ... and the peer party's RFC 4733 events (`timestamp` on its clock) for ours, sent on our
    // next tick from our trunk leg with our telephone-event payload type (joined_events).
    void event_from_peer(std::uint32_t timestamp, const TelephoneEvent& ev);
    void joined_events(MediaOutput& out);

    CallMediaConfig config_;
    State state_ = State::Idle;
    std::string failure_;
    Stats stats_;

    // Browser leg.
    LocalMedia local_;
    IceLiteResponder ice_;
    std::optional<BrowserMedia> browser_;
    std::unique_ptr<DtlsSrtpEndpoint> dtls_;
    std::vector<Datagram> dtls_out_;
    std::optional<Endpoint> dtls_from_;  // where DTLS last came from, until ICE selects a pair
    RtpStream browser_stream_;
    // Trunk leg.
    TrunkLocal trunk_local_;
    std::optional<TrunkMedia> trunk_;
    std::optional<Endpoint> trunk_remote_;  // symmetric RTP (RFC 4961): where the trunk sends from
    bool trunk_latch_open_ = false;         // the next RTP from trunk_remote_'s IP may move the port
    std::optional<Endpoint> trunk_left_;    // the address a new SDP moved away from: latches nothing
    std::optional<Time> last_trunk_in_;     // the trunk's last datagram (media timeout)
    std::optional<SrtpSession> trunk_srtp_; // SDES keys of trunk_->sdes; none: clear RTP
    RtpStream trunk_stream_;
    std::uint32_t trunk_media_time_ = 0;
    // RTCP and receive statistics of both legs (issue 14).
    RtpReceiveStats browser_rx_, trunk_rx_;
    RtcpSession browser_rtcp_, trunk_rtcp_;
    // Offer/answer in progress: which leg offered, and what it offered.
    std::optional<bool> pending_from_browser_;
    std::optional<SessionDescription> pending_offer_;
    std::string last_browser_answer_;  // repeated for a 183 then 200 with the same answer
    std::optional<LocalMedia> handover_;   // offered to a browser taking the call over (issue 14)
    // What each peer last wrote (issue 13): its direction (theirs) and o= (id and version), and
    // the last SDP we sent the trunk (a new one gets a new version, RFC 3264 §8).
    std::optional<Direction> trunk_dir_, browser_dir_;
    std::string trunk_origin_;
    std::string last_trunk_sdp_;
    bool late_offer_ = false;   // inbound: the trunk made no offer; the browser answers ours
    // Media pipeline, rebuilt when a codec changes.
    std::unique_ptr<BrowserToTrunk> to_trunk_;
    std::unique_ptr<TrunkToBrowser> to_browser_;
    std::optional<TelephoneEventRelay> dtmf_to_trunk_, dtmf_to_browser_;
    // Trunk timestamps mapped onto the browser stream's clock.
    std::optional<std::uint32_t> trunk_in_ssrc_;
    std::uint32_t trunk_in_base_ = 0, browser_time_base_ = 0, browser_media_time_ = 0;
    std::array<std::uint8_t, kMaxMediaDatagram> rx_{};          // SRTP is unprotected in place
    std::array<std::uint8_t, kMaxOpusPacket> payload_{};         // one transcoded frame
    // Attended transfer (issue 14): the call whose trunk leg ours is joined to (same worker, so
    // a plain pointer, cleared by whichever is destroyed first), and its party's frames for ours.
    CallMedia* peer_ = nullptr;
    bool browser_released_ = false;
    std::optional<TrunkJoin> join_;
    // The peer party's DTMF events waiting for our tick: a party sends one packet per 20-50 ms,
    // so a few slots are plenty; beyond them packets are dropped and counted.
    struct PeerEvent {
        std::uint32_t timestamp = 0;
        TelephoneEvent event{};
    };
    static constexpr std::size_t kMaxPeerEvents = 8;
    std::array<PeerEvent, kMaxPeerEvents> peer_events_{};
    std::size_t peer_event_count_ = 0;
    std::optional<TelephoneEventRelay> dtmf_joined_;   // the peer's 8000 Hz events onto our stream
};

}  // namespace turnbridge::gateway
