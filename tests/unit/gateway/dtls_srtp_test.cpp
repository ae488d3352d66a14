// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <array>
#include <thread>
#include <vector>

#include "turnbridge/gateway/demux.hpp"
#include "turnbridge/gateway/dtls_srtp.hpp"
#include "turnbridge/gateway/rtp_packet.hpp"

using namespace turnbridge::gateway;
using namespace std::chrono_literals;
using State = DtlsSrtpEndpoint::State;

namespace {
const auto cert_a = DtlsCertificate::generate();
const auto cert_b = DtlsCertificate::generate();

struct Pair {
    DtlsSrtpEndpoint client, server;
    Time now{};
    std::size_t max_datagram = 0;
    int datagrams = 0;
    Pair(DtlsOptions o = {}, std::string server_expects = cert_a->fingerprint_sha256())
        : client(cert_a, DtlsRole::Client, "sha-256", cert_b->fingerprint_sha256(), o),
          server(cert_b, DtlsRole::Server, "sha-256", std::move(server_expects), o) {}

    // Delivers datagrams both ways until neither side sends; `drop` may discard some.
    template <class Drop>
    void pump(std::vector<Datagram> to_server, Drop drop) {
        std::vector<Datagram> to_client;
        for (int round = 0; round < 50 && (!to_server.empty() || !to_client.empty()); ++round) {
            std::vector<Datagram> next_client, next_server;
            for (auto& d : to_server) {
                note(d);
                if (!drop(true, d)) server.on_datagram(now, d, next_client);
            }
            for (auto& d : to_client) {
                note(d);
                if (!drop(false, d)) client.on_datagram(now, d, next_server);
            }
            to_server = std::move(next_server);
            to_client = std::move(next_client);
        }
    }
    void pump(std::vector<Datagram> to_server) { pump(std::move(to_server), [](bool, const Datagram&) { return false; }); }
    void note(const Datagram& d) {
        max_datagram = std::max(max_datagram, d.size());
        ++datagrams;
        CHECK(classify(d) == PacketKind::Dtls);  // RFC 7983: first octet 20..63
    }
    void handshake() {
        std::vector<Datagram> out;
        client.start(now, out);
        server.start(now, out);
        pump(std::move(out));
    }
};

std::vector<std::uint8_t> rtp_packet(std::uint16_t seq, std::uint8_t fill) {
    std::vector<std::uint8_t> p(12 + 160 + kSrtpMaxTrailer);
    write_rtp_header({false, 0, seq, 160u * seq, 0x1234}, p);
    std::fill(p.begin() + 12, p.begin() + 12 + 160, fill);
    return p;
}
}  // namespace

TEST_CASE("certificate fingerprint is the SHA-256 of the DER certificate in SDP form (RFC 8122 §5)") {
    const auto& fp = cert_a->fingerprint_sha256();
    CHECK(fp.size() == 32 * 3 - 1);
    CHECK(fp.find_first_not_of("0123456789ABCDEF:") == std::string::npos);
    CHECK(fp != cert_b->fingerprint_sha256());
    CHECK(certificate_fingerprint(cert_a->cert(), "SHA-256") == fp);
    CHECK(certificate_fingerprint(cert_a->cert(), "sha-1")->size() == 20 * 3 - 1);
    CHECK_FALSE(certificate_fingerprint(cert_a->cert(), "md5"));
}

TEST_CASE("two endpoints handshake in memory and protect RTP and RTCP both ways (RFC 5764 §4.2)") {
    Pair p;
    p.handshake();
    REQUIRE(p.client.state() == State::Connected);
    REQUIRE(p.server.state() == State::Connected);
    CHECK(p.client.profile() == p.server.profile());
    CHECK(p.max_datagram <= 1200);
    CHECK_FALSE(p.client.next_timeout());

    for (int dir = 0; dir < 2; ++dir) {
        CAPTURE(dir);
        auto* tx = (dir == 0 ? p.client : p.server).srtp();
        auto* rx = (dir == 0 ? p.server : p.client).srtp();
        REQUIRE(tx);
        REQUIRE(rx);
        for (std::uint16_t seq = 1; seq <= 3; ++seq) {
            auto pkt = rtp_packet(seq, static_cast<std::uint8_t>(seq + dir));
            const std::vector<std::uint8_t> plain(pkt.begin(), pkt.begin() + 172);
            auto n = tx->protect_rtp(pkt, 172);
            REQUIRE(n);
            CHECK(*n > 172);
            CHECK_FALSE(std::equal(plain.begin() + 12, plain.end(), pkt.begin() + 12));  // encrypted
            auto copy = pkt;
            auto m = rx->unprotect_rtp(pkt, *n);
            REQUIRE(m);
            CHECK(*m == 172);
            CHECK(std::equal(plain.begin(), plain.end(), pkt.begin()));
            CHECK_FALSE(rx->unprotect_rtp(copy, *n));  // RFC 3711 §3.3.2: replay rejected
            copy[20] ^= 1;
            CHECK_FALSE(rx->unprotect_rtp(copy, *n));  // and tampering
        }
        std::vector<std::uint8_t> rr = {0x81, 201, 0, 7, 0, 0, 0x12, 0x34};
        rr.resize(32 + kSrtpMaxTrailer);
        auto n = tx->protect_rtcp(rr, 32);
        REQUIRE(n);
        auto m = rx->unprotect_rtcp(rr, *n);
        REQUIRE(m);
        CHECK(*m == 32);
        CHECK(rr[1] == 201);
    }
    // The two directions use different keys: a side cannot decrypt its own output.
    auto pkt = rtp_packet(9, 1);
    auto n = p.client.srtp()->protect_rtp(pkt, 172);
    CHECK_FALSE(p.client.srtp()->unprotect_rtp(pkt, *n));
}

TEST_CASE("a certificate that does not match a=fingerprint fails the handshake with a reason") {
    Pair p({}, cert_b->fingerprint_sha256());  // the server expects the wrong certificate
    p.handshake();
    CHECK(p.server.state() == State::Failed);
    CHECK(p.server.failure().find("fingerprint") != std::string::npos);
    CHECK(p.client.state() != State::Connected);
    CHECK_FALSE(p.server.srtp());
}

TEST_CASE("small MTU: every record is its own datagram within the MTU and the handshake completes") {
    DtlsOptions o;
    o.mtu = 300;
    Pair p(o);
    p.handshake();
    CHECK(p.client.state() == State::Connected);
    CHECK(p.server.state() == State::Connected);
    CHECK(p.max_datagram <= 300);
    CHECK(p.datagrams > 6);  // certificate flights had to be split
}

// OpenSSL 3.0 times DTLS retransmissions with its own clock (no hook for an injected one), so
// these two tests use the real monotonic clock with short timeouts: about 0.3 s of waiting in all.
namespace {
Time real_now() { return std::chrono::steady_clock::now(); }
void wait_until(std::optional<Time> t) {
    REQUIRE(t);
    REQUIRE(*t - real_now() < 2s);  // bounded
    std::this_thread::sleep_until(*t + 2ms);
}
}  // namespace

TEST_CASE("lost flights are retransmitted at next_timeout() with back-off (RFC 6347 §4.2.4)") {
    DtlsOptions o;
    o.initial_retransmit = 40ms;
    Pair p(o);
    p.now = real_now();
    std::vector<Datagram> hello;
    p.client.start(p.now, hello);
    REQUIRE(!hello.empty());
    REQUIRE(p.client.next_timeout());
    CHECK(*p.client.next_timeout() - p.now <= 40ms);
    CHECK(*p.client.next_timeout() - p.now > 25ms);
    // The ClientHello is lost; nothing is resent before the deadline.
    std::vector<Datagram> out;
    p.client.on_timer(p.now, out);
    CHECK(out.empty());
    wait_until(p.client.next_timeout());
    p.now = real_now();
    p.client.on_timer(p.now, out);
    REQUIRE(out.size() == hello.size());  // the flight again
    CHECK(*p.client.next_timeout() - p.now > 60ms);  // doubled
    // Now lose the server's whole first flight.
    int server_flight = 0;
    p.pump(std::move(out), [&](bool to_server, const Datagram&) {
        if (!to_server) { ++server_flight; return true; }
        return false;
    });
    CHECK(server_flight > 0);
    CHECK(p.client.state() == State::Handshaking);
    CHECK(p.server.state() == State::Handshaking);
    wait_until(p.server.next_timeout());
    p.now = real_now();
    std::vector<Datagram> to_client, to_server;
    p.server.on_timer(p.now, to_client);
    // OpenSSL packs a first flight's records into as few datagrams as the MTU allows and
    // retransmits them one record per datagram: more datagrams, each still within the MTU.
    CHECK(static_cast<int>(to_client.size()) >= server_flight);
    for (const auto& d : to_client) CHECK(d.size() <= 1200);
    for (auto& d : to_client) p.client.on_datagram(p.now, d, to_server);
    p.pump(std::move(to_server));
    CHECK(p.client.state() == State::Connected);
    CHECK(p.server.state() == State::Connected);
    CHECK_FALSE(p.server.next_timeout());
}

TEST_CASE("a peer that never answers fails the handshake after the retransmission limit") {
    DtlsOptions o;
    o.initial_retransmit = 20ms;
    o.max_retransmits = 2;
    DtlsSrtpEndpoint c(cert_a, DtlsRole::Client, "sha-256", cert_b->fingerprint_sha256(), o);
    std::vector<Datagram> out;
    c.start(real_now(), out);
    int flights = 1;
    for (int i = 0; i < 6 && c.state() == State::Handshaking; ++i) {
        wait_until(c.next_timeout());
        std::vector<Datagram> again;
        c.on_timer(real_now(), again);
        if (!again.empty()) ++flights;
    }
    CHECK(flights == 4);  // the first and two retransmissions; the third fails instead
    CHECK(c.state() == State::Failed);
    CHECK(c.failure().find("timed out") != std::string::npos);
    CHECK_FALSE(c.next_timeout());
}

TEST_CASE("SRTP sessions with AEAD_AES_128_GCM keys protect and unprotect (RFC 7714)") {
    std::array<std::uint8_t, 16> ka{}, kb{};
    std::array<std::uint8_t, 12> sa{}, sb{};
    for (std::size_t i = 0; i < 16; ++i) { ka[i] = static_cast<std::uint8_t>(i); kb[i] = static_cast<std::uint8_t>(100 + i); }
    for (std::size_t i = 0; i < 12; ++i) { sa[i] = static_cast<std::uint8_t>(50 + i); sb[i] = static_cast<std::uint8_t>(200 + i); }
    auto a = SrtpSession::create({SrtpProfile::AeadAes128Gcm, ka, sa, kb, sb});
    auto b = SrtpSession::create({SrtpProfile::AeadAes128Gcm, kb, sb, ka, sa});
    REQUIRE(a);
    REQUIRE(b);
    auto pkt = rtp_packet(5, 0x42);
    auto n = a->protect_rtp(pkt, 172);
    REQUIRE(n);
    CHECK(*n == 172 + 16);  // GCM tag
    auto m = b->unprotect_rtp(pkt, *n);
    REQUIRE(m);
    CHECK(*m == 172);
    CHECK(pkt[100] == 0x42);
    // Mismatched salt: authentication fails.
    auto c = SrtpSession::create({SrtpProfile::AeadAes128Gcm, kb, sb, ka, sb});  // receives with the wrong salt
    REQUIRE(c);
    pkt = rtp_packet(6, 0x42);
    n = a->protect_rtp(pkt, 172);
    CHECK_FALSE(c->unprotect_rtp(pkt, *n));
    // No room for the tag: refused rather than written past the buffer.
    std::vector<std::uint8_t> tight(172);
    CHECK_FALSE(a->protect_rtp(tight, 172));
}
