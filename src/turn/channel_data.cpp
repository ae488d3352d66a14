// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/turn/channel_data.hpp"

#include "turnbridge/stun/message.hpp"

namespace turnbridge::turn {

bool looks_like_channel_data(std::span<const std::uint8_t> b) {
    if (b.size() < kChannelDataHeader) return false;
    const std::uint16_t ch = static_cast<std::uint16_t>(b[0] << 8 | b[1]);
    return ch >= kMinChannel && ch <= kMaxChannel;
}

std::optional<ChannelDataView> parse_channel_data(std::span<const std::uint8_t> b) {
    if (!looks_like_channel_data(b)) return std::nullopt;
    const std::size_t len = static_cast<std::size_t>(b[2] << 8 | b[3]);
    if (kChannelDataHeader + len > b.size()) return std::nullopt;
    return ChannelDataView{static_cast<std::uint16_t>(b[0] << 8 | b[1]), b.subspan(kChannelDataHeader, len)};
}

bool StreamFramer::feed(std::span<const std::uint8_t> bytes) {
    if (start_ > 0 && start_ == buf_.size()) {
        buf_.clear();
        start_ = 0;
    }
    if (buffered() + bytes.size() > max_) return false;
    if (start_ > 0 && buf_.size() + bytes.size() > buf_.capacity()) {  // compact before growing
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(start_));
        start_ = 0;
    }
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
    return true;
}

StreamFramer::Status StreamFramer::next(std::span<const std::uint8_t>& frame) {
    const std::span<const std::uint8_t> rest(buf_.data() + start_, buf_.size() - start_);
    if (rest.size() < 4) return Status::NeedMore;
    const std::size_t len = static_cast<std::size_t>(rest[2] << 8 | rest[3]);
    std::size_t whole = 0, frame_len = 0;
    if ((rest[0] & 0xC0) == 0x00) {  // STUN: 20-byte header + length (already a multiple of 4)
        if (len % 4 != 0) return Status::Error;
        whole = frame_len = stun::kHeaderSize + len;
    } else if ((rest[0] & 0xC0) == 0x40) {  // ChannelData, padded to 4 on streams (RFC 8656 §12.5)
        frame_len = kChannelDataHeader + len;
        whole = (frame_len + 3) & ~std::size_t{3};
    } else {
        return Status::Error;
    }
    if (whole > max_) return Status::Error;
    if (rest.size() < whole) return Status::NeedMore;
    frame = rest.first(frame_len);
    start_ += whole;
    return Status::Frame;
}

}  // namespace turnbridge::turn
