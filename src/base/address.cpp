// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/base/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>

namespace turnbridge {

std::string_view to_string(Transport t) {
    switch (t) {
        case Transport::Udp: return "udp";
        case Transport::Tcp: return "tcp";
        case Transport::Tls: return "tls";
    }
    return "?";
}

IpAddress IpAddress::v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    IpAddress ip;
    ip.family = Family::V4;
    ip.bytes[0] = a; ip.bytes[1] = b; ip.bytes[2] = c; ip.bytes[3] = d;
    return ip;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    // inet_pton stops at a NUL, so "127.0.0.1\0junk" would pass as 127.0.0.1.
    if (text.empty() || text.size() > 45 || text.find('\0') != std::string_view::npos) return std::nullopt;
    char buf[64];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    IpAddress ip;
    if (text.find(':') == std::string_view::npos) {
        if (inet_pton(AF_INET, buf, ip.bytes.data()) != 1) return std::nullopt;
        ip.family = Family::V4;
    } else {
        if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) return std::nullopt;
        ip.family = Family::V6;
    }
    return ip;
}

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(family == Family::V4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
}

bool IpAddress::is_unspecified() const {
    for (std::size_t i = 0; i < size(); ++i)
        if (bytes[i] != 0) return false;
    return true;
}

bool IpAddress::is_loopback() const {
    if (family == Family::V4) return bytes[0] == 127;
    for (std::size_t i = 0; i < 15; ++i)
        if (bytes[i] != 0) return false;
    return bytes[15] == 1;
}

std::optional<IpAddress> IpAddress::embedded_v4() const {
    if (family != Family::V6) return std::nullopt;
    const auto& b = bytes;
    auto zero = [&](std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i)
            if (b[i] != 0) return false;
        return true;
    };
    // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2), ::a.b.c.d (deprecated compatible, §2.5.5.1),
    // 64:ff9b::a.b.c.d (RFC 6052 NAT64): the IPv4 address is the last 4 bytes.
    const bool mapped = zero(0, 10) && b[10] == 0xff && b[11] == 0xff;
    const bool compatible = zero(0, 12) && !(b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] <= 1);
    const bool nat64 = b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(4, 12);
    if (mapped || compatible || nat64) return v4(b[12], b[13], b[14], b[15]);
    // 2002:AABB:CCDD::/48 (RFC 3056 6to4): the IPv4 address follows the prefix.
    if (b[0] == 0x20 && b[1] == 0x02) return v4(b[2], b[3], b[4], b[5]);
    return std::nullopt;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        if (host.find(':') == std::string_view::npos) return std::nullopt;
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return std::nullopt;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
    }
    auto ip = IpAddress::parse(host);
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (!ip || port.empty() || ec != std::errc() || p != port.data() + port.size() || value > 65535)
        return std::nullopt;
    return Endpoint{*ip, static_cast<std::uint16_t>(value)};
}

std::string Endpoint::to_string() const {
    if (ip.family == Family::V6) return "[" + ip.to_string() + "]:" + std::to_string(port);
    return ip.to_string() + ":" + std::to_string(port);
}

unsigned Endpoint::to_sockaddr(sockaddr_storage& out) const {
    std::memset(&out, 0, sizeof out);
    if (ip.family == Family::V4) {
        auto* sa = reinterpret_cast<sockaddr_in*>(&out);
        sa->sin_family = AF_INET;
        sa->sin_port = htons(port);
        std::memcpy(&sa->sin_addr, ip.bytes.data(), 4);
        return sizeof(sockaddr_in);
    }
    auto* sa = reinterpret_cast<sockaddr_in6*>(&out);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(port);
    std::memcpy(&sa->sin6_addr, ip.bytes.data(), 16);
    return sizeof(sockaddr_in6);
}

std::optional<Endpoint> Endpoint::from_sockaddr(const sockaddr* sa) {
    if (sa == nullptr) return std::nullopt;
    Endpoint ep;
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        ep.ip.family = Family::V4;
        std::memcpy(ep.ip.bytes.data(), &in->sin_addr, 4);
        ep.port = ntohs(in->sin_port);
        return ep;
    }
    if (sa->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        ep.ip.family = Family::V6;
        std::memcpy(ep.ip.bytes.data(), &in6->sin6_addr, 16);
        ep.port = ntohs(in6->sin6_port);
        return ep;
    }
    return std::nullopt;
}

std::string FiveTuple::to_string() const {
    return std::string(turnbridge::to_string(transport)) + " " + client.to_string() + " -> " +
           server.to_string();
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
    const auto slash = text.find('/');
    auto ip = IpAddress::parse(text.substr(0, slash));
    if (!ip) return std::nullopt;
    const unsigned max = ip->family == Family::V4 ? 32 : 128;
    unsigned prefix = max;
    if (slash != std::string_view::npos) {
        auto digits = text.substr(slash + 1);
        auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || prefix > max)
            return std::nullopt;
    }
    Cidr c{*ip, prefix};
    // Normalise: clear host bits so to_string() shows the network.
    for (unsigned bit = prefix; bit < max; ++bit)
        c.base.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
    return c;
}

bool Cidr::contains(const IpAddress& ip) const {
    if (ip.family != base.family) return false;
    const unsigned full = prefix / 8, rest = prefix % 8;
    if (std::memcmp(ip.bytes.data(), base.bytes.data(), full) != 0) return false;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xFF00u >> rest);
    return (ip.bytes[full] & mask) == (base.bytes[full] & mask);
}

std::string Cidr::to_string() const { return base.to_string() + "/" + std::to_string(prefix); }

std::size_t hash_value(const IpAddress& ip) {
    // FNV-1a: cheap, and the inputs are not attacker-chosen keys into a shared table per se.
    std::size_t h = 1469598103934665603ull ^ static_cast<std::size_t>(ip.family);
    for (std::size_t i = 0; i < ip.size(); ++i) h = (h ^ ip.bytes[i]) * 1099511628211ull;
    return h;
}
std::size_t hash_value(const Endpoint& ep) { return (hash_value(ep.ip) ^ ep.port) * 1099511628211ull; }
std::size_t hash_value(const FiveTuple& ft) {
    return (hash_value(ft.client) * 31 + hash_value(ft.server)) ^ static_cast<std::size_t>(ft.transport);
}

}  // namespace turnbridge
