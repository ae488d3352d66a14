// SPDX-License-Identifier: Apache-2.0
// Long-term credentials, nonces, password algorithms, USERHASH and TURN REST API (RFC 8489 §9.2).
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "harness.hpp"

using Opt = Client::Options;
using Mac = Client::Mac;

TEST_CASE("Binding is answered without credentials with XOR-MAPPED-ADDRESS (RFC 8489 §6.3.1)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    auto req = c.build(stun::method::Binding, {}, Opt{Mac::None, false, false, true});
    b.send(c.five_tuple(), req);
    auto r = b.reply();
    CHECK(r.success());
    CHECK(r->transaction_id() == c.last_tid);
    CHECK(r->get_xor_address(stun::attr::XorMappedAddress)->to_string() == "198.51.100.7:5000");
    CHECK(r->get_string(stun::attr::Software) == "turnbridge");
    REQUIRE(r->find(stun::attr::Fingerprint) != nullptr);  // mirrored because the request had one
    CHECK(stun::check_fingerprint(*r.msg));
}

TEST_CASE("a request with an unknown comprehension-required attribute gets 420 naming it (RFC 8489 §6.3.1)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    auto req = c.build(stun::method::Binding, {{0x0031, {1, 2, 3, 4}}, {0xC001, {0}}}, Opt{Mac::None});
    b.send(c.five_tuple(), req);
    auto r = b.reply();
    CHECK(r.code() == 420);
    auto unknown = r->get(stun::attr::UnknownAttributes);
    REQUIRE(unknown);
    REQUIRE(unknown->size() == 2);  // only the comprehension-required one
    CHECK((*unknown)[1] == 0x31);

    SUBCASE("also on an authenticated Allocate, with integrity") {
        auto ar = c.allocate({Client::udp(), {0x0031, {1, 2, 3, 4}}});
        CHECK(ar.code() == 420);
        CHECK(stun::check_message_integrity(*ar.msg, c.md5_key()));
    }
}

TEST_CASE("Allocate without credentials gets a small 401 with REALM, NONCE and PASSWORD-ALGORITHMS") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    auto req = c.build(stun::method::Allocate, {Client::udp()}, Opt{Mac::None});
    b.send(c.five_tuple(), req);
    auto r = b.reply();
    CHECK(r.code() == 401);
    CHECK(r->get_string(stun::attr::Realm) == "example.org");
    auto nonce = r->get_string(stun::attr::Nonce);
    REQUIRE(nonce);
    CHECK(nonce->substr(0, 13) == "obMatJos2wAAA");  // RFC 8489 §9.2: cookie + feature bits
    CHECK(r->find(stun::attr::PasswordAlgorithms) != nullptr);
    CHECK(r->find(stun::attr::MessageIntegrity) == nullptr);
    CHECK(r.bytes.size() <= 160);  // unauthenticated requests never cost more than a small answer
    CHECK(b.server->allocation_count() == 0);
}

TEST_CASE("the right password allocates and the response is signed with the same key") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    auto r = c.allocate();
    REQUIRE(r.success());
    CHECK(stun::check_message_integrity(*r.msg, c.md5_key()));
    CHECK(b.server->allocation_count() == 1);
}

TEST_CASE("a wrong password, an unknown user or a foreign realm gets 401 and allocates nothing") {
    struct Row { const char* name; const char* user; const char* password; };
    const Row rows[] = {{"wrong password", "test", "wrong"}, {"unknown user", "nobody", "secret"},
                        {"empty password", "test", ""}};
    for (const auto& row : rows) {
        CAPTURE(row.name);
        Bench b;
        Client c(b, tuple("198.51.100.7:5000"), row.user, row.password);
        auto r = c.allocate();
        CHECK(r.code() == 401);
        CHECK(r->find(stun::attr::Nonce) != nullptr);
        CHECK(b.server->allocation_count() == 0);
        CHECK(b.server->stats().auth_failures == 1);
    }
}

TEST_CASE("MESSAGE-INTEGRITY without USERNAME, REALM or NONCE is a 400 (RFC 8489 §9.2.4)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    c.learn_nonce();
    std::array<std::uint8_t, 512> buf{};
    stun::TransactionId tid{3};
    stun::MessageBuilder mb(buf, stun::method::Allocate, stun::Class::Request, tid);
    mb.add(stun::attr::RequestedTransport, std::vector<std::uint8_t>{17, 0, 0, 0});
    mb.add_string(stun::attr::Username, "test");
    mb.add_message_integrity(c.md5_key());
    b.send(c.five_tuple(), mb.bytes());
    CHECK(b.reply().code() == 400);
}

TEST_CASE("a stale nonce gets 438 with a fresh one, which then works (RFC 8489 §9.2.4)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    c.learn_nonce();
    b.advance(std::chrono::seconds(601));
    auto r = c.allocate({Client::udp()}, Opt{Mac::Sha1, false, false, false, c.nonce()});
    REQUIRE(r.code() == 438);
    const std::string fresh(*r->get_string(stun::attr::Nonce));
    CHECK(fresh != c.nonce());
    CHECK(r->find(stun::attr::Realm) != nullptr);
    c.nonce() = fresh;
    CHECK(c.allocate().success());
}

TEST_CASE("a forged nonce or one minted for another client address is rejected with 438") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    c.learn_nonce();
    std::string forged = c.nonce();
    forged.back() = forged.back() == '0' ? '1' : '0';
    CHECK(c.allocate({Client::udp()}, Opt{Mac::Sha1, false, false, false, forged}).code() == 438);
    Client other(b, tuple("198.51.100.8:5000"));
    other.learn_nonce();
    CHECK(c.allocate({Client::udp()}, Opt{Mac::Sha1, false, false, false, other.nonce()}).code() == 438);
}

TEST_CASE("SHA-256 password algorithm with MESSAGE-INTEGRITY-SHA256 is answered in kind (RFC 8489 §9.2.4)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    auto r = c.allocate({Client::udp()}, Opt{Mac::Sha256, true});
    REQUIRE(r.success());
    CHECK(r->find(stun::attr::MessageIntegritySha256) != nullptr);
    CHECK(r->find(stun::attr::MessageIntegrity) == nullptr);
    CHECK(stun::check_message_integrity_sha256(*r.msg, stun::long_term_key_sha256("test", "example.org", "secret")));
}

TEST_CASE("PASSWORD-ALGORITHM without the echoed PASSWORD-ALGORITHMS is a 400") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    const std::uint8_t alg[] = {0, 2, 0, 0};
    auto r = c.allocate({Client::udp(), {stun::attr::PasswordAlgorithm, {alg, alg + 4}}});
    CHECK(r.code() == 400);
}

TEST_CASE("USERHASH identifies a static user without sending the name (RFC 8489 §14.4)") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    auto r = c.allocate({Client::udp()}, Opt{Mac::Sha1, false, true});
    REQUIRE(r.success());
    CHECK(b.server->find(c.five_tuple())->username == "test");
}

namespace {
std::string rest_password(const std::string& secret, const std::string& username) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac, &n);
    std::string out(64, '\0');
    out.resize(static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, static_cast<int>(n))));
    return out;
}
}  // namespace

TEST_CASE("TURN REST API credentials: valid until their expiry, accounted under the user id") {
    Bench b;
    const std::string user = std::to_string(b.now.unix_seconds + 3600) + ":alice";
    Client c(b, tuple("198.51.100.7:5000"), user, rest_password("s3cr3t", user));
    REQUIRE(c.allocate().success());
    CHECK(b.server->find(c.five_tuple())->account == "alice");
    CHECK(b.server->find(c.five_tuple())->username == user);

    SUBCASE("an expired one is refused with 401") {
        const std::string old = std::to_string(b.now.unix_seconds - 1) + ":alice";
        Client e(b, tuple("198.51.100.7:5001"), old, rest_password("s3cr3t", old));
        CHECK(e.allocate().code() == 401);
    }
    SUBCASE("a bare expiry is accepted and accounted to the realm alone") {
        const std::string bare = std::to_string(b.now.unix_seconds + 60);
        Client e(b, tuple("198.51.100.7:5002"), bare, rest_password("s3cr3t", bare));
        REQUIRE(e.allocate().success());
        CHECK(b.server->find(e.five_tuple())->account.empty());
    }
    SUBCASE("a password made with another secret is refused") {
        Client e(b, tuple("198.51.100.7:5003"), user, rest_password("other", user));
        CHECK(e.allocate().code() == 401);
    }
}

TEST_CASE("byte quotas follow the accounted identity: REST users by user id, bare expiries share the realm's") {
    struct Gate : turn::QuotaGate {
        mutable std::vector<std::string> asked;
        bool over_quota(const tb::config::Realm&, const std::string& account) const override {
            asked.push_back(account);
            return account.empty();  // the realm's anonymous pool is used up
        }
    } gate;
    Bench b;
    b.cfg->realms["example.org"].quota_bytes = 1000;
    b.server = std::make_unique<turn::Server>(turn::SharedState{b.cfg, &b.nonces, &b.quota, 0, &gate}, b.binder);
    const std::string user = std::to_string(b.now.unix_seconds + 3600) + ":alice";
    Client c(b, tuple("198.51.100.7:5000"), user, rest_password("s3cr3t", user));
    CHECK(c.allocate().success());
    // A fresh bare-expiry credential must not start a quota of its own.
    const std::string bare = std::to_string(b.now.unix_seconds + 61);
    Client e(b, tuple("198.51.100.7:5001"), bare, rest_password("s3cr3t", bare));
    CHECK(e.allocate().code() == 486);
    CHECK(gate.asked == std::vector<std::string>{"alice", ""});
}

TEST_CASE("a reload changes credentials for new requests and keeps live allocations") {
    Bench b;
    Client c(b, tuple("198.51.100.7:5000"));
    REQUIRE(c.allocate().success());
    auto cfg = std::make_shared<tb::config::Config>(*b.cfg);
    cfg->realms["example.org"].users = {{"test", "changed"}};
    b.server->set_config(cfg);
    CHECK(b.server->allocation_count() == 1);
    Client fresh(b, tuple("198.51.100.7:5001"), "test", "changed");
    CHECK(fresh.allocate().success());
    Client stale(b, tuple("198.51.100.7:5002"), "test", "secret");
    CHECK(stale.allocate().code() == 401);
}

TEST_CASE("nonce minter: valid, stale after its lifetime, invalid when tampered") {
    turn::NonceMinter m(std::array<std::uint8_t, 32>{1}, std::chrono::seconds(10));
    const turn::Time t0 = turn::Time{} + std::chrono::hours(5);
    const auto ip = *tb::IpAddress::parse("203.0.113.9");
    const auto n = m.mint(t0, ip);
    CHECK(m.check(n, t0 + std::chrono::seconds(9), ip) == turn::NonceMinter::Check::Valid);
    CHECK(m.check(n, t0 + std::chrono::seconds(10), ip) == turn::NonceMinter::Check::Stale);
    CHECK(m.check(n, t0, *tb::IpAddress::parse("203.0.113.10")) == turn::NonceMinter::Check::Invalid);
    CHECK(m.check("obMatJos2wAAAshort", t0, ip) == turn::NonceMinter::Check::Invalid);
    CHECK(turn::NonceMinter::announces_password_algorithms(n));
    turn::NonceMinter other(std::array<std::uint8_t, 32>{2}, std::chrono::seconds(10));
    CHECK(other.check(n, t0, ip) == turn::NonceMinter::Check::Invalid);
}

TEST_CASE("the realm is the listener's (realm.X.listen), else default_realm") {
    Bench b;
    b.cfg->listen.push_back(*tb::Endpoint::parse("192.0.2.11:3478"));
    tb::config::Realm other;
    other.name = "other.example";
    other.users = {{"bob", "pw"}};
    other.listen = {*tb::Endpoint::parse("192.0.2.11:3478")};
    b.cfg->realms["other.example"] = other;
    b.restart();
    struct Row { const char* listener; const char* realm; const char* user; const char* password; };
    for (auto row : {Row{"192.0.2.10:3478", "example.org", "test", "secret"},
                     Row{"192.0.2.11:3478", "other.example", "bob", "pw"}}) {
        CAPTURE(row.listener);
        Client c(b, tuple("198.51.100.7:5000", tb::Transport::Udp, row.listener), row.user, row.password);
        c.learn_nonce();
        auto r = c.allocate();
        REQUIRE(r.success());
        CHECK(b.server->find(c.five_tuple())->realm == row.realm);
    }
    // A user of one realm cannot authenticate on the other realm's listener.
    Client wrong(b, tuple("198.51.100.7:5001", tb::Transport::Udp, "192.0.2.11:3478"), "test", "secret");
    CHECK(wrong.allocate().code() == 401);
}
