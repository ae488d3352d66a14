// SPDX-License-Identifier: Apache-2.0
#pragma once
// Addresses as plain values: the cores compare and hash them without touching sockets.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

struct sockaddr;
struct sockaddr_storage;

namespace turnbridge {

enum class Family : std::uint8_t { V4 = 1, V6 = 2 };  // RFC 8489 §14.1 family codes
enum class Transport : std::uint8_t { Udp, Tcp, Tls };

std::string_view to_string(Transport t);

struct IpAddress {
    Family family = Family::V4;
    std::array<std::uint8_t, 16> bytes{};  // V4 uses the first 4

    static IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d);
    static std::optional<IpAddress> parse(std::string_view text);  // "1.2.3.4" or "::1" (no brackets)
    std::size_t size() const { return family == Family::V4 ? 4 : 16; }
    std::string to_string() const;
    bool is_unspecified() const;
    bool is_loopback() const;  // 127.0.0.0/8 or ::1: reachable from this host only
    // For V6 addresses that embed an IPv4 address (mapped, compatible, NAT64, 6to4), that address.
    std::optional<IpAddress> embedded_v4() const;
    friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

struct Endpoint {
    IpAddress ip;
    std::uint16_t port = 0;

    // "1.2.3.4:3478" or "[::1]:3478"; the port is required.
    static std::optional<Endpoint> parse(std::string_view text);
    std::string to_string() const;  // same forms as parse
    friend bool operator==(const Endpoint&, const Endpoint&) = default;

    // Conversions for the net layer; length written / read from `sa`.
    unsigned to_sockaddr(sockaddr_storage& out) const;
    static std::optional<Endpoint> from_sockaddr(const sockaddr* sa);
};

// RFC 8656 §2: the 5-tuple that identifies an allocation (client, server, transport).
struct FiveTuple {
    Transport transport = Transport::Udp;
    Endpoint client;
    Endpoint server;
    friend bool operator==(const FiveTuple&, const FiveTuple&) = default;
    std::string to_string() const;  // "udp 1.2.3.4:5 -> 6.7.8.9:3478"
};

struct Cidr {
    IpAddress base;
    unsigned prefix = 0;
    static std::optional<Cidr> parse(std::string_view text);  // "10.0.0.0/8", "::1", "fe80::/10"
    bool contains(const IpAddress& ip) const;
    std::string to_string() const;
};

std::size_t hash_value(const IpAddress& ip);
std::size_t hash_value(const Endpoint& ep);
std::size_t hash_value(const FiveTuple& ft);

}  // namespace turnbridge

template <> struct std::hash<turnbridge::IpAddress> {
    std::size_t operator()(const turnbridge::IpAddress& v) const noexcept { return turnbridge::hash_value(v); }
};
template <> struct std::hash<turnbridge::Endpoint> {
    std::size_t operator()(const turnbridge::Endpoint& v) const noexcept { return turnbridge::hash_value(v); }
};
template <> struct std::hash<turnbridge::FiveTuple> {
    std::size_t operator()(const turnbridge::FiveTuple& v) const noexcept { return turnbridge::hash_value(v); }
};
