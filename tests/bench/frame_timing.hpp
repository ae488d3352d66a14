// SPDX-License-Identifier: Apache-2.0
#pragma once
// Frame timing at a peer of gateway_server_load: when each frame of a stream arrived against the
// stream's own schedule, and the sums over calls per direction.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "gateway_peers.hpp"

namespace turnbridge::bench {

// A stream's arrivals in the measured period. Its schedule is the straight line fitted to
// (sequence number, arrival time), moved down to the earliest arrival: the sender's own frame
// period (which may drift from 20 ms) and the best path delay. A frame is late when it arrives
// more than `late_ms` behind that schedule.
struct Arrivals {
    std::uint64_t packets = 0, late = 0;
    double worst_ms = 0, period_ms = 0;
    std::int64_t ext_seq = -1;
    std::vector<double> t, k;   // arrival (ms) and extended sequence number of each frame
    Series excess;              // ms behind the schedule, per frame

    void on_packet(double t_ms, std::uint16_t seq, bool keep) {
        if (ext_seq < 0) ext_seq = seq;
        else ext_seq += static_cast<std::int16_t>(static_cast<std::uint16_t>(seq - static_cast<std::uint16_t>(ext_seq)));
        ++packets;
        if (!keep) return;
        t.push_back(t_ms);
        k.push_back(static_cast<double>(ext_seq));
    }
    void finish(double late_ms) {
        const auto n = static_cast<double>(t.size());
        if (t.size() < 3) return;
        double mk = 0, mt = 0, skk = 0, skt = 0;
        for (std::size_t i = 0; i < t.size(); ++i) mk += k[i] / n, mt += t[i] / n;
        for (std::size_t i = 0; i < t.size(); ++i) skk += (k[i] - mk) * (k[i] - mk), skt += (k[i] - mk) * (t[i] - mt);
        period_ms = skk > 0 ? skt / skk : 20.0;
        excess.v.resize(t.size());
        for (std::size_t i = 0; i < t.size(); ++i) excess.v[i] = t[i] - mt - period_ms * (k[i] - mk);
        const double base = *std::min_element(excess.v.begin(), excess.v.end());
        for (double& e : excess.v) {
            e -= base;
            late += e > late_ms;
            worst_ms = std::max(worst_ms, e);
        }
    }
};

// One direction over every call: frames expected, heard, missing, out of sequence and late.
struct Flow {
    long expected = 0, received = 0, missing = 0, gaps = 0, late = 0;
    double worst_ms = 0;
    Series lateness, period;
    void add(long sent, const Arrivals& a, std::uint64_t sequence_gaps) {
        period.v.push_back(a.period_ms);
        expected += sent;
        received += static_cast<long>(a.packets);
        missing += std::max(0L, sent - 2 - static_cast<long>(a.packets));   // 2 for the period's edges
        gaps += static_cast<long>(sequence_gaps);
        late += static_cast<long>(a.late);
        worst_ms = std::max(worst_ms, a.worst_ms);
        lateness.v.insert(lateness.v.end(), a.excess.v.begin(), a.excess.v.end());
    }
    std::string json(double seconds, std::size_t calls) const {
        char b[500];
        std::snprintf(b, sizeof b,
                      "{\"expected\": %ld, \"received\": %ld, \"frames_per_second_per_call\": %.2f, \"missing\": %ld, "
                      "\"sequence_gaps\": %ld, \"late\": %ld, \"worst_late_ms\": %.1f, \"sender_period_ms\": %s, \"lateness_ms\": ",
                      expected, received, seconds > 0 && calls > 0 ? static_cast<double>(received) / seconds / static_cast<double>(calls) : 0.0,
                      missing, gaps, late, worst_ms, period.json().c_str());
        return b + lateness.json() + "}";
    }
};

}  // namespace turnbridge::bench
