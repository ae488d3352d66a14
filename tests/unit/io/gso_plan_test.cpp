// SPDX-License-Identifier: Apache-2.0
// The GSO segmentation decision of the send batch (net/gso_plan.hpp).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "turnbridge/io/gso_plan.hpp"

namespace tb = turnbridge;
namespace io = turnbridge::io;

namespace {

// "count@segment" per message, e.g. "3@1200 1@0".
std::string plan(const std::vector<const char*>& to, const std::vector<std::size_t>& sizes, bool gso = true) {
    std::vector<tb::Endpoint> eps;
    for (const char* t : to) eps.push_back(*tb::Endpoint::parse(t));
    std::vector<io::PlannedMessage> out(sizes.size());
    const std::size_t n = io::plan_messages(eps, sizes, gso, out);
    std::string s;
    std::size_t next = 0;
    for (std::size_t k = 0; k < n; ++k) {
        CHECK(out[k].first == next);  // contiguous, in order
        next += out[k].count;
        if (!s.empty()) s += ' ';
        s += std::to_string(out[k].count) + "@" + std::to_string(out[k].segment);
    }
    CHECK(next == sizes.size());
    return s;
}

}  // namespace

TEST_CASE("GSO plan: equal datagrams to one destination become one message, a short last one joins it") {
    const char* a = "192.0.2.1:5000";
    const char* b = "192.0.2.1:5001";
    struct Row {
        const char* name;
        std::vector<const char*> to;
        std::vector<std::size_t> sizes;
        const char* expect;
    } rows[] = {
        {"one datagram is plain", {a}, {100}, "1@0"},
        {"equal sizes, one destination", {a, a, a}, {1200, 1200, 1200}, "3@1200"},
        {"short last segment joins", {a, a, a}, {1200, 1200, 700}, "3@1200"},
        {"a short one ends the run", {a, a, a, a}, {1200, 700, 1200, 1200}, "2@1200 2@1200"},
        {"a longer one starts a new run", {a, a, a}, {700, 1200, 1200}, "1@0 2@1200"},
        {"destination change splits", {a, a, b, b}, {100, 100, 100, 100}, "2@100 2@100"},
        {"interleaved destinations stay in order", {a, b, a, b}, {100, 100, 100, 100}, "1@0 1@0 1@0 1@0"},
        {"port counts as destination", {a, b}, {100, 100}, "1@0 1@0"},
        {"zero-length datagrams are never segmented", {a, a}, {0, 0}, "1@0 1@0"},
        {"a zero-length one ends a run", {a, a, a}, {100, 100, 0}, "2@100 1@0"},
        {"largest segment that fits a 1500-byte link", {a, a}, {1452, 1452}, "2@1452"},
        {"larger datagrams go plainly", {a, a}, {1453, 1453}, "1@0 1@0"},
    };
    for (const auto& r : rows) {
        CAPTURE(r.name);
        CHECK(plan(r.to, r.sizes) == r.expect);
    }
}

TEST_CASE("GSO plan: without GSO every datagram is its own message") {
    const char* a = "[2001:db8::1]:5000";
    CHECK(plan({a, a, a}, {100, 100, 100}, false) == "1@0 1@0 1@0");
}

TEST_CASE("GSO plan: runs stop at the kernel's segment count and at 64 KiB") {
    std::vector<const char*> to(100, "192.0.2.1:5000");
    std::vector<std::size_t> small(100, 100);
    CHECK(plan(to, small) == "64@100 36@100");
    std::vector<std::size_t> big(100, 1400);  // 46 * 1400 = 64,400 <= 65,000 < 47 * 1400
    CHECK(plan(to, big) == "46@1400 46@1400 8@1400");
}
