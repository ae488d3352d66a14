// SPDX-License-Identifier: Apache-2.0
#pragma once
// Shared by the accounting tests: a scratch directory, records and traffic with known numbers.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "turnbridge/accounting/record.hpp"

namespace turnbridge::accounting::test {

// 2026-11-01T00:00:00Z in unix ms (from Python's calendar.timegm).
constexpr std::int64_t kDay = 1'793'491'200'000;
constexpr std::int64_t kMin = 60'000;
constexpr std::int64_t kHour = 60 * kMin;

// SQLite file header: user_version is the big-endian 32-bit integer at offset 60.
inline std::uint32_t header_user_version(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    unsigned char b[4] = {};
    in.seekg(60);
    in.read(reinterpret_cast<char*>(b), 4);
    return std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | b[3];
}

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

// A call with every counter different: browser in/out packets k+1, k+2, bytes 100k+1, 100k+2; trunk
// the same from k+3. Answered `talk_ms` after a 2 s ring unless talk_ms is 0 (then failed, 503).
inline CallRecord call(std::string id, std::string account, std::string realm, std::int64_t start_ms,
                       std::int64_t talk_ms, std::string codecs = "opus/PCMU", std::uint64_t k = 1) {
    CallRecord c;
    c.id = std::move(id);
    c.realm = std::move(realm);
    c.account = std::move(account);
    c.direction = "outbound";
    c.remote = "+15550123";
    c.start_ms = start_ms;
    c.answer_ms = talk_ms == 0 ? 0 : start_ms + 2000;
    c.end_ms = talk_ms == 0 ? start_ms + 1500 : start_ms + 2000 + talk_ms;
    c.status = talk_ms == 0 ? 503 : 200;
    c.codecs = std::move(codecs);
    c.end_reason = talk_ms == 0 ? "failed: trunk 503" : "bye-browser";
    c.relayed = true;
    c.browser_in_packets = k + 1, c.browser_out_packets = k + 2, c.trunk_in_packets = k + 3, c.trunk_out_packets = k + 4;
    c.browser_in_bytes = 100 * k + 1, c.browser_out_bytes = 100 * k + 2;
    c.trunk_in_bytes = 100 * k + 3, c.trunk_out_bytes = 100 * k + 4;
    c.trunk = "carrier-a";
    return c;
}

inline void check_call(const CallRecord& got, const CallRecord& expected) {
    CHECK(got.id == expected.id);
    CHECK(got.realm == expected.realm);
    CHECK(got.account == expected.account);
    CHECK(got.direction == expected.direction);
    CHECK(got.remote == expected.remote);
    CHECK(got.start_ms == expected.start_ms);
    CHECK(got.answer_ms == expected.answer_ms);
    CHECK(got.end_ms == expected.end_ms);
    CHECK(got.status == expected.status);
    CHECK(got.codecs == expected.codecs);
    CHECK(got.end_reason == expected.end_reason);
    CHECK(got.relayed == expected.relayed);
    CHECK(got.browser_in_packets == expected.browser_in_packets);
    CHECK(got.browser_in_bytes == expected.browser_in_bytes);
    CHECK(got.browser_out_packets == expected.browser_out_packets);
    CHECK(got.browser_out_bytes == expected.browser_out_bytes);
    CHECK(got.trunk_in_packets == expected.trunk_in_packets);
    CHECK(got.trunk_in_bytes == expected.trunk_in_bytes);
    CHECK(got.trunk_out_packets == expected.trunk_out_packets);
    CHECK(got.trunk_out_bytes == expected.trunk_out_bytes);
    CHECK(got.trunk == expected.trunk);
}

}  // namespace turnbridge::accounting::test
