// SPDX-License-Identifier: Apache-2.0
#pragma once
// The trunk leg's SDP: RTP/AVP with G.711 or G.722 at 20 ms and RFC 4733 events at 8000, offered
// and answered per RFC 3264; with srtp on, SDES keys (RFC 4568 a=crypto) on RTP/SAVP (required) or
// on RTP/AVP (optional: RFC 8643 opportunistic SRTP). Nothing of the browser leg (ICE, DTLS,
// extmap, ssrc, rtcp-fb) leaks.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/gateway/sdes.hpp"
#include "turnbridge/gateway/trunk_codec.hpp"
#include "turnbridge/gateway/sdp.hpp"

namespace turnbridge::gateway {

struct TrunkLocal {
    Endpoint address;  // our RTP socket toward the trunk
    std::vector<TrunkCodec> preference = {TrunkCodec::Pcmu, TrunkCodec::Pcma};  // offered in this order
    std::uint8_t telephone_event_pt = 101;
    Direction direction = Direction::SendRecv;  // SendOnly to hold the trunk (RFC 3264 §8.4)
    std::uint64_t session_id = 1;
    std::uint64_t session_version = 1;
    SrtpMode srtp = SrtpMode::Off;
    std::vector<SdesCrypto> crypto;   // our keys, one per suite (offer_crypto), for the call's life
    // Our RTCP socket's port when it is not RTP + 1 (RFC 3605 a=rtcp); we also offer rtcp-mux
    // (RFC 5761 §5.1.1) and answer it when offered.
    std::optional<std::uint16_t> rtcp_port{};
};

struct TrunkMedia {
    TrunkCodec codec = TrunkCodec::Pcmu;
    std::uint8_t payload_type = 0;
    std::optional<std::uint8_t> telephone_event;
    Endpoint remote;                 // where to send RTP; unspecified address while held
    Direction direction = Direction::SendRecv;  // ours
    std::optional<SdesChoice> sdes;  // SRTP keys when the trunk took them; nullopt: clear RTP
    bool rtcp_mux = false;                      // RTCP on the RTP address (RFC 5761)
    std::optional<std::uint16_t> rtcp_port{};   // the trunk's a=rtcp (RFC 3605); else RTP + 1
};

std::string build_trunk_offer(const TrunkLocal& local);
SdpResult<TrunkMedia> accept_trunk_answer(const SessionDescription& answer, const TrunkLocal& local);

struct TrunkAnswer {
    std::string sdp;
    TrunkMedia media;
};
// RFC 3264 §6: accepts the first m=audio RTP/AVP (or RTP/SAVP with srtp on) with a codec of
// `local.preference` (the first of them the offer has); rejects other m= lines. Errors that
// concern SRTP name "crypto" (is_crypto_error), so the call can say why it ended.
SdpResult<TrunkAnswer> answer_trunk_offer(const SessionDescription& offer, const TrunkLocal& local);
bool is_crypto_error(const SdpError& e);

}  // namespace turnbridge::gateway
