// SPDX-License-Identifier: Apache-2.0
#pragma once
// The built-in test line (issue 16), without I/O: a tiny SIP user agent server over UDP plus the
// media of its calls, standing in for a trunk in realms with gateway.test_numbers = true. The
// router sends calls to the numbers below here instead of to the realm's trunk, so the real
// trunk path (Opus <-> G.711 transcoding, DTLS-SRTP toward the browser, RFC 4733) is exercised:
//   echo, 9196  answers and sends back what it receives 0.5 s later (the G.711 payload as is);
//   tone        answers and plays a 1 kHz tone;
//   dtmf        answers and plays back, as its DTMF tone pair (ITU-T Q.23), each digit it
//               receives as an RFC 4733 telephone-event (in-band digits are not detected).
// SIP (RFC 3261) is kept to what the gateway's trunk leg sends it over loopback: INVITE with an
// SDP offer (answered 200 at once; a retransmitted INVITE gets the same 200, so a lost 200 is
// repaired by the caller's Timer A; no late offer: 488), ACK, BYE, CANCEL, re-INVITE/UPDATE
// (200 with the same answer), OPTIONS; anything else 501. It never sends a request of its own.
// Bounded: at most kMaxCalls calls (486 beyond), each a fixed-size echo buffer and digit queue;
// a call with no RTP for kIdle is forgotten (a BYE that never came).
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/gateway/rtp_packet.hpp"
#include "turnbridge/gateway/g711.hpp"
#include "turnbridge/gateway/trunk_codec.hpp"
#include "turnbridge/gateway/trunk_sdp.hpp"

namespace turnbridge::sip {
class Message;
}

namespace turnbridge::gateway {

enum class TestNumber : std::uint8_t { Echo, Tone, Dtmf };

// "echo" and "9196" -> Echo, "tone" -> Tone, "dtmf" -> Dtmf; anything else is no test number.
std::optional<TestNumber> test_number(std::string_view dialled);

class TestLine {
public:
    using Time = std::chrono::steady_clock::time_point;
    static constexpr std::size_t kMaxCalls = 16;
    static constexpr std::chrono::seconds kIdle{60};
    static constexpr std::size_t kFrame = 160;          // 20 ms of G.711 at 8000 Hz
    static constexpr std::size_t kEchoFrames = 25;      // 0.5 s
    static constexpr std::size_t kDigitQueue = 32;
    static constexpr std::size_t kDigitFrames = 8;      // 160 ms of tone pair ...
    static constexpr std::size_t kGapFrames = 5;        // ... then 100 ms of silence

    struct SipOut {
        Endpoint to;
        std::string bytes;
    };
    // One RTP datagram; `bytes` is valid until the next call into the TestLine.
    struct RtpOut {
        Endpoint to;
        Bytes bytes;
    };

    // `sip` and `rtp`: where the host's two sockets are bound (Contact and SDP name them).
    TestLine(Endpoint sip, Endpoint rtp, std::uint32_t seed);

    void on_sip(Time now, const Endpoint& from, std::string_view bytes, std::vector<SipOut>& out);
    // An RTP datagram on the media socket; echo calls answer it (with the frame of 0.5 s ago).
    void on_rtp(Time now, const Endpoint& from, Bytes datagram, std::vector<RtpOut>& out);
    // Every 20 ms: one frame of each tone and dtmf call; idle calls are dropped.
    void on_tick(Time now, std::vector<RtpOut>& out);
    std::size_t calls() const { return calls_.size(); }

private:
    struct Call {
        std::string call_id;
        std::string to_tag;
        TestNumber number = TestNumber::Echo;
        std::string answer_sdp;
        TrunkMedia media;
        G711Law law = G711Law::Pcmu;   // of media.codec (G.711 only is offered)
        Time last_rtp{};
        std::uint32_t ssrc = 0;
        std::uint16_t seq = 0;
        std::uint32_t timestamp = 0;
        std::uint64_t sample = 0;   // tone phase, in samples since the call started
        // echo: the last kEchoFrames payloads received, a ring
        std::array<std::array<std::uint8_t, kFrame>, kEchoFrames> echo{};
        std::size_t echo_count = 0;
        // dtmf: digits received (RFC 4733 event codes), and the one playing
        std::array<std::uint8_t, kDigitQueue> digits{};
        std::size_t digit_head = 0, digit_count = 0;
        std::optional<std::uint32_t> last_event_ts;
        std::size_t playing_frame = 0;   // frames into the current digit (0: none playing)
        std::uint8_t playing = 0;
        std::array<std::uint8_t, kRtpHeaderSize + kFrame> packet{};
    };

    void on_invite(Time now, const Endpoint& from, const sip::Message& m, std::vector<SipOut>& out);
    Call* find(std::string_view call_id);
    void emit(Call& c, std::span<const std::uint8_t> payload, std::vector<RtpOut>& out);
    void tone_frame(Call& c, std::span<std::uint8_t> frame);
    void dtmf_frame(Call& c, std::span<std::uint8_t> frame);

    Endpoint sip_, rtp_;
    std::uint32_t random_;
    std::uint64_t session_ = 1;
    std::uint32_t next_random();
    std::vector<Call> calls_;   // at most kMaxCalls (reserved at construction)
};

}  // namespace turnbridge::gateway
