// SPDX-License-Identifier: Apache-2.0
#pragma once
// DNS on the libuv loop through c-ares (issue 14): SRV records (RFC 2782) and a name's A/AAAA
// addresses, from /etc/resolv.conf's servers or the ones given (server.dns_servers). c-ares
// sockets are watched with uv_poll and its retransmissions driven by one uv_timer, so nothing
// blocks and no thread pool is used. Callbacks run on the loop; after close() none runs.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <uv.h>
#include <vector>

#include "turnbridge/base/address.hpp"

namespace turnbridge::io {

struct SrvRecord {
    std::uint16_t priority = 0;
    std::uint16_t weight = 0;
    std::uint16_t port = 0;
    std::string target;
};

class DnsResolver {
public:
    // `error` (empty on success): the message why the channel could not be set up.
    using SrvDone = std::function<void(std::vector<SrvRecord> records, const std::string& error)>;
    using AddressesDone = std::function<void(std::vector<IpAddress> addresses, const std::string& error)>;

    // nullptr (and `why`) when c-ares cannot start (no resolv.conf and no servers, no memory).
    static std::unique_ptr<DnsResolver> create(uv_loop_t* loop, const std::vector<Endpoint>& servers, std::string& why);
    ~DnsResolver();
    DnsResolver(const DnsResolver&) = delete;
    DnsResolver& operator=(const DnsResolver&) = delete;

    // "_sip._udp.example.net": its SRV records; none (and an error) for NXDOMAIN or no records.
    void srv(const std::string& name, SrvDone done);
    // A and AAAA records of `name` (or /etc/hosts).
    void addresses(const std::string& name, AddressesDone done);
    // Abandons queries under way (their callbacks never run) and closes the handles.
    void close();

    struct Impl;

private:
    explicit DnsResolver(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace turnbridge::io
