// SPDX-License-Identifier: Apache-2.0
#pragma once
// Call quality per leg and direction (issue 14): packets lost, loss %, interarrival jitter and
// an estimated MOS from a simplified ITU-T G.107 E-model. Pure arithmetic.
#include <cstdint>
#include <optional>
#include <string_view>

namespace turnbridge::gateway {

// G.113 Appendix I style codec impairment: Ie (equipment impairment) and Bpl (packet-loss
// robustness). G.711 with packet-loss concealment: Ie 0, Bpl 25.1 (G.113 App. I, Table I.3).
// G.722 and Opus have no narrowband G.113 entry; they are scored as G.711 with PLC (they are
// at least as robust), which keeps the scale comparable across calls.
struct CodecImpairment {
    double ie = 0.0;
    double bpl = 25.1;
};
CodecImpairment codec_impairment(std::string_view codec_name);  // "PCMU", "PCMA", "G722", "opus"

// G.107 (06/2015) with default values except delay and loss, simplified:
//   R = 93.2 - Id - Ie_eff                               (§7.1: Ro - Is = 93.2 at the defaults)
//   Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)         (Cole & Rosenbluth 2001's fit of Id(Ta))
//   Ie_eff = Ie + (95 - Ie) Ppl / (Ppl / BurstR + Bpl)   (§7.4 eq. 7-29, random loss: BurstR = 1)
//   MOS = 1 + 0.035 R + R (R - 60) (100 - R) 7e-6        (Annex B, eq. B-4), 1 below R 0, 4.5 above 100
// `loss_pct` 0..100, `delay_ms` the one-way mouth-to-ear delay estimate.
double r_factor(double loss_pct, double delay_ms, CodecImpairment codec);
double mos_from_r(double r);

// One leg and direction of a call, as the call record keeps it. Not measured: no RTP heard (our
// receive side) or no report block from the peer (its receive side, via RTCP).
struct DirectionQuality {
    bool measured = false;
    std::uint64_t expected = 0;   // packets the sender sent, as far as the receiver can tell
    std::int64_t lost = 0;
    double jitter_ms = 0;
    double rtt_ms = 0;            // 0 when unknown
    double loss_pct() const {
        return expected == 0 || lost <= 0 ? 0.0 : 100.0 * static_cast<double>(lost) / static_cast<double>(expected);
    }
    // One-way delay estimate: half the round trip, a jitter buffer of twice the jitter, and one
    // 20 ms packet.
    double mos(CodecImpairment codec) const;
};

}  // namespace turnbridge::gateway
