// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/call_quality.hpp"

#include <algorithm>

namespace turnbridge::gateway {

CodecImpairment codec_impairment(std::string_view) {
    // Every codec we run has concealment; see the header for why they share G.711+PLC's values.
    return CodecImpairment{0.0, 25.1};
}

double r_factor(double loss_pct, double delay_ms, CodecImpairment codec) {
    const double ppl = std::clamp(loss_pct, 0.0, 100.0);
    const double d = std::max(delay_ms, 0.0);
    const double id = 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0.0);
    const double ie_eff = codec.ie + (95.0 - codec.ie) * ppl / (ppl + codec.bpl);
    return 93.2 - id - ie_eff;
}

double mos_from_r(double r) {
    if (r <= 0) return 1.0;
    if (r >= 100) return 4.5;
    return 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6;
}

double DirectionQuality::mos(CodecImpairment codec) const {
    const double delay = rtt_ms / 2.0 + 2.0 * jitter_ms + 20.0;
    return mos_from_r(r_factor(loss_pct(), delay, codec));
}

}  // namespace turnbridge::gateway
