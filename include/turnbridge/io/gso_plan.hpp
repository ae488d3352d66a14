// SPDX-License-Identifier: Apache-2.0
#pragma once
// How one socket's queued datagrams become sendmmsg messages: a run of consecutive datagrams to
// the same destination, all of one size except a possibly shorter last one, is one UDP GSO
// message (Linux UDP_SEGMENT: the kernel cuts it back into datagrams of `segment` bytes).
// Everything else is one plain message per datagram. Pure, so it is unit-tested without sockets.
#include <cstddef>
#include <cstdint>
#include <span>

#include "turnbridge/base/address.hpp"

namespace turnbridge::io {

// The kernel's UDP_MAX_SEGMENTS (64 before Linux 6.6), and a total that fits one IPv4 or IPv6
// UDP datagram (65,535 minus IP and UDP headers) with room to spare.
constexpr std::size_t kGsoMaxSegments = 64;
constexpr std::size_t kGsoMaxBytes = 65000;
// The kernel refuses (EINVAL) a segment larger than the route's MTU allows; 1452 bytes fit
// IPv6 over a 1500-byte link. Larger datagrams (IP-fragmented anyway) are sent plainly.
constexpr std::size_t kGsoMaxSegment = 1452;

struct PlannedMessage {
    std::uint16_t first = 0;    // index of its first datagram
    std::uint16_t count = 0;    // datagrams in it
    std::uint16_t segment = 0;  // UDP_SEGMENT size; 0 = a plain datagram (count is 1)
};

// `to` and `sizes` describe the datagrams in send order; `out` needs room for one message per
// datagram. Returns the number of messages. Order is kept: runs never reach back or ahead.
inline std::size_t plan_messages(std::span<const Endpoint> to, std::span<const std::size_t> sizes, bool gso,
                                 std::span<PlannedMessage> out) {
    std::size_t n = 0;
    std::size_t i = 0;
    while (i < sizes.size()) {
        const std::size_t seg = sizes[i];
        std::size_t j = i + 1;
        std::size_t total = seg;
        // A zero-length segment cannot be expressed (gso_size 0 means "off").
        if (gso && seg != 0 && seg <= kGsoMaxSegment) {
            while (j < sizes.size() && j - i < kGsoMaxSegments && to[j] == to[i] && sizes[j] <= seg &&
                   sizes[j] != 0 && total + sizes[j] <= kGsoMaxBytes) {
                total += sizes[j];
                const bool shorter = sizes[j] < seg;
                ++j;
                if (shorter) break;  // only the last segment may be short
            }
        }
        const std::size_t count = j - i;
        out[n++] = PlannedMessage{static_cast<std::uint16_t>(i), static_cast<std::uint16_t>(count),
                                  static_cast<std::uint16_t>(count > 1 ? seg : 0)};
        i = j;
    }
    return n;
}

}  // namespace turnbridge::io
