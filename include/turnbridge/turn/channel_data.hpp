// SPDX-License-Identifier: Apache-2.0
#pragma once
// ChannelData framing (RFC 8656 §12.4) and the TCP/TLS stream framer (RFC 8656 §12.5).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace turnbridge::turn {

constexpr std::uint16_t kMinChannel = 0x4000;  // RFC 8656 §12
// Deviation: RFC 8656 §12 narrowed channels to 0x4000-0x4FFF; RFC 5766 allowed up to 0x7FFF and
// clients still pick from that range (coturn's turnutils_uclient does). Any value whose first
// two bits are 0b01 cannot be mistaken for STUN, so accepting them all is safe.
constexpr std::uint16_t kMaxChannel = 0x7FFF;
constexpr std::size_t kChannelDataHeader = 4;

struct ChannelDataView {
    std::uint16_t channel = 0;
    std::span<const std::uint8_t> data;
};

// First two bits 0b01 (RFC 8656 §12, RFC 7983) and channel number in range.
bool looks_like_channel_data(std::span<const std::uint8_t> bytes);
// Parses one ChannelData message; trailing bytes (padding) are allowed. nullopt if short.
std::optional<ChannelDataView> parse_channel_data(std::span<const std::uint8_t> bytes);

// Splits a byte stream into STUN messages and ChannelData messages (padded to 4 on streams).
// feed() appends; next() returns one whole frame at a time (valid until the next feed/next).
// A frame that is neither is a fatal framing error: the connection must be closed.
class StreamFramer {
public:
    enum class Status { Frame, NeedMore, Error };
    explicit StreamFramer(std::size_t max_buffer = 65536 + 8) : max_(max_buffer) {}
    bool feed(std::span<const std::uint8_t> bytes);  // false when the buffer would overflow
    Status next(std::span<const std::uint8_t>& frame);
    std::size_t buffered() const { return buf_.size() - start_; }

private:
    std::vector<std::uint8_t> buf_;
    std::size_t start_ = 0;
    std::size_t max_;
};

}  // namespace turnbridge::turn
