// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <sys/socket.h>

#include "turnbridge/base/address.hpp"

using namespace turnbridge;

TEST_CASE("Endpoint parses IPv4 and bracketed IPv6 and rejects the rest") {
    struct Row { const char* text; bool ok; const char* back; };
    const Row rows[] = {
        {"127.0.0.1:3478", true, "127.0.0.1:3478"},
        {"[::1]:3478", true, "[::1]:3478"},
        {"[2001:db8::1]:0", true, "[2001:db8::1]:0"},
        {"::1:3478", false, ""},
        {"127.0.0.1", false, ""},
        {"127.0.0.1:65536", false, ""},
        {"127.0.0.1:", false, ""},
        {"[127.0.0.1]:5", false, ""},
        {"host:80", false, ""},
        {"1.2.3.4:80x", false, ""},
    };
    for (const auto& r : rows) {
        CAPTURE(r.text);
        auto ep = Endpoint::parse(r.text);
        CHECK(ep.has_value() == r.ok);
        if (ep) CHECK(ep->to_string() == r.back);
    }
}

TEST_CASE("an address with an embedded NUL is rejected, not truncated") {
    CHECK_FALSE(IpAddress::parse(std::string_view("127.0.0.1\0junk", 14)));
    CHECK_FALSE(Endpoint::parse(std::string_view("127.0.0.1\0:3478", 15)));
    CHECK(IpAddress::parse(std::string_view("127.0.0.1", 9)));
}

TEST_CASE("Cidr matching honours the prefix and the family") {
    auto c = *Cidr::parse("172.16.0.0/12");
    CHECK(c.contains(*IpAddress::parse("172.31.255.255")));
    CHECK_FALSE(c.contains(*IpAddress::parse("172.32.0.0")));
    CHECK_FALSE(c.contains(*IpAddress::parse("::ffff:172.16.0.1")));
    auto v6 = *Cidr::parse("fe80::/10");
    CHECK(v6.contains(*IpAddress::parse("febf::1")));
    CHECK_FALSE(v6.contains(*IpAddress::parse("fec0::1")));
    CHECK(Cidr::parse("10.1.2.3/8")->to_string() == "10.0.0.0/8");
    CHECK(Cidr::parse("::1")->prefix == 128);
    CHECK_FALSE(Cidr::parse("10.0.0.0/33"));
    CHECK_FALSE(Cidr::parse("10.0.0.0/"));
}

TEST_CASE("embedded IPv4 is found in mapped, compatible, NAT64 and 6to4 forms") {
    struct Row { const char* v6; const char* v4; };
    const Row rows[] = {{"::ffff:10.0.0.1", "10.0.0.1"}, {"::127.0.0.1", "127.0.0.1"},
                        {"64:ff9b::c0a8:101", "192.168.1.1"}, {"2002:c0a8:0101::1", "192.168.1.1"}};
    for (const auto& r : rows) {
        CAPTURE(r.v6);
        auto e = IpAddress::parse(r.v6)->embedded_v4();
        REQUIRE(e.has_value());
        CHECK(e->to_string() == r.v4);
    }
    CHECK_FALSE(IpAddress::parse("::1")->embedded_v4());
    CHECK_FALSE(IpAddress::parse("2001:db8::1")->embedded_v4());
}

TEST_CASE("sockaddr round trip keeps address and port") {
    for (const char* text : {"192.0.2.7:49152", "[2001:db8::5]:61000"}) {
        CAPTURE(text);
        auto ep = *Endpoint::parse(text);
        sockaddr_storage ss;
        ep.to_sockaddr(ss);
        auto back = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss));
        REQUIRE(back);
        CHECK(*back == ep);
    }
}

TEST_CASE("is_loopback: 127.0.0.0/8 and ::1 only (root refuses to serve anything else without server.user)") {
    struct Row {
        const char* ip;
        bool loopback;
    };
    for (const Row& row : {Row{"127.0.0.1", true}, Row{"127.255.0.9", true}, Row{"::1", true}, Row{"0.0.0.0", false},
                           Row{"::", false}, Row{"10.0.0.1", false}, Row{"::ffff:127.0.0.1", false},
                           Row{"2001:db8::1", false}, Row{"128.0.0.1", false}}) {
        CAPTURE(row.ip);
        CHECK(turnbridge::IpAddress::parse(row.ip)->is_loopback() == row.loopback);
    }
}
