// SPDX-License-Identifier: Apache-2.0
// Fuzz target: RTP/RTCP header parsing, the RFC 7983 demux and RFC 4733 payloads.
#include <cstddef>
#include <cstdint>

#include "turnbridge/gateway/demux.hpp"
#include "turnbridge/gateway/rtp_packet.hpp"
#include "turnbridge/gateway/telephone_event.hpp"

using namespace turnbridge::gateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Bytes bytes(data, size);
    (void)classify(bytes);
    if (auto p = RtpPacket::parse(bytes)) {
        if (p->payload.data() < data || p->payload.data() + p->payload.size() > data + size) __builtin_trap();
        (void)parse_telephone_event(p->payload);
    }
    (void)RtcpHeader::parse(bytes);
    return 0;
}
