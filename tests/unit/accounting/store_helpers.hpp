// SPDX-License-Identifier: Apache-2.0
#pragma once
// Shared by the accounting tests: a scratch directory, records and traffic with known numbers.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "turnbridge/accounting/record.hpp"

namespace turnbridge::accounting::test {

// 2026-11-01T00:00:00Z in unix ms (from Python's calendar.timegm).
constexpr std::int64_t kDay = 1'793'491'200'000;
constexpr std::int64_t kMin = 60'000;
constexpr std::int64_t kHour = 60 * kMin;

// A fresh directory, removed with everything in it when the test ends.
class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "turnbridge-acct-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// Counter i (direction i / 3; packets, payload, wire) is k * unit * (i + 1), so that every
// counter differs and the sum of two is scaled(k1 + k2). Egress (wire[1] + wire[3]) is
// k * unit * 18; relayed payload (payload[1] + payload[3]) is k * unit * 16.
inline Traffic scaled(std::uint64_t k, std::uint64_t unit = 1) {
    Traffic t;
    for (std::size_t d = 0; d < kDirections; ++d) {
        t.packets[d] = k * unit * (d * 3 + 1);
        t.payload_bytes[d] = k * unit * (d * 3 + 2);
        t.wire_bytes[d] = k * unit * (d * 3 + 3);
    }
    return t;
}

inline void check_traffic(const Traffic& got, const Traffic& expected) {
    for (std::size_t d = 0; d < kDirections; ++d) {
        CAPTURE(d);
        CHECK(got.packets[d] == expected.packets[d]);
        CHECK(got.payload_bytes[d] == expected.payload_bytes[d]);
        CHECK(got.wire_bytes[d] == expected.wire_bytes[d]);
    }
}

inline AllocationRecord record(std::string id, std::string account, std::string realm, std::int64_t start_ms,
                               Traffic traffic, std::int64_t end_ms = 0, std::string end_reason = "") {
    AllocationRecord r;
    r.id = std::move(id);
    r.account = account;
    r.username = account.empty() ? "1793500000" : "1793500000:" + account;
    r.realm = std::move(realm);
    r.client = "192.0.2.7:50000";
    r.transport = "udp";
    r.relay = "198.51.100.1:61000";
    r.start_ms = start_ms;
    r.end_ms = end_ms;
    r.peers = 1;
    r.end_reason = std::move(end_reason);
    r.traffic = traffic;
    return r;
}

}  // namespace turnbridge::accounting::test
