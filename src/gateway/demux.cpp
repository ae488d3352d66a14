// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/demux.hpp"

#include "turnbridge/gateway/rtp_packet.hpp"

namespace turnbridge::gateway {

PacketKind classify(std::span<const std::uint8_t> d) {
    if (d.empty()) return PacketKind::Unknown;
    const int b = d[0];
    if (b <= 3) return PacketKind::Stun;                 // [0..3]
    if (b >= 16 && b <= 19) return PacketKind::Zrtp;     // [16..19]
    if (b >= 20 && b <= 63) return PacketKind::Dtls;     // [20..63]
    if (b >= 64 && b <= 79) return PacketKind::TurnChannel;  // [64..79]
    if (b >= 128 && b <= 191) return is_rtcp(d) ? PacketKind::Rtcp : PacketKind::Rtp;  // [128..191]
    return PacketKind::Unknown;
}

}  // namespace turnbridge::gateway
