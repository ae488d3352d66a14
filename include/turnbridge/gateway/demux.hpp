// SPDX-License-Identifier: Apache-2.0
#pragma once
// RFC 7983 §7: one UDP port carries STUN, DTLS and SRTP/SRTCP; the first octet tells them apart.
#include <cstdint>
#include <span>

namespace turnbridge::gateway {

enum class PacketKind : std::uint8_t { Stun, Zrtp, Dtls, TurnChannel, Rtp, Rtcp, Unknown };

// Rtp vs Rtcp is decided by RFC 5761 §4 (rtcp-mux) once the first octet says RTP/RTCP.
PacketKind classify(std::span<const std::uint8_t> datagram);

}  // namespace turnbridge::gateway
