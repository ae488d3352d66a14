// SPDX-License-Identifier: Apache-2.0
#pragma once
// A sans-I/O test bench for turn::Server: a fake relay binder, a fake clock and a client that
// speaks the long-term credential dance. Nothing here opens a socket or reads a clock.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "turnbridge/stun/integrity.hpp"
#include "turnbridge/stun/message.hpp"
#include "turnbridge/turn/server.hpp"

namespace tb = turnbridge;
namespace turn = turnbridge::turn;
namespace stun = turnbridge::stun;

class FakeBinder : public turn::RelayBinder {
public:
    tb::Result<turn::RelaySocket> bind(tb::Family f, bool even_port, bool reserve_next, std::uint64_t& token) override {
        if (fail_next) {
            fail_next = false;
            return tb::Error{tb::StunCode::InsufficientCapacity, 0, "Insufficient Capacity"};
        }
        std::uint16_t port = next_port++;
        if (even_port && port % 2) port = next_port++;
        if (reserve_next) {
            token = 0xA1B2C3D4E5F60000ull + port;
            reserved[token] = static_cast<std::uint16_t>(port + 1);
            reserved_family[token] = f;
            next_port = static_cast<std::uint16_t>(port + 2);
        }
        return open(f, port);
    }
    tb::Result<turn::RelaySocket> claim(std::uint64_t token) override {
        auto it = reserved.find(token);
        if (it == reserved.end()) return tb::Error{tb::StunCode::InsufficientCapacity, 0, "Insufficient Capacity"};
        const auto port = it->second;
        const auto f = reserved_family[token];
        reserved.erase(it);
        return open(f, port);
    }
    // Like server::WorkerRelayBinder: up to `shared_ports` sockets per family, the least used first.
    tb::Result<turn::RelaySocket> bind_shared(tb::Family f) override {
        if (shared_ports == 0) return RelayBinder::bind_shared(f);
        auto& pool = shared[f];
        if (pool.size() < shared_ports) {
            turn::RelaySocket s = open(f, next_port++);
            open_handles.erase(s.handle);
            s.shared = true;
            pool.push_back(s);
            shared_users[s.handle] = 0;
        }
        auto best = pool.begin();
        for (auto it = pool.begin(); it != pool.end(); ++it)
            if (shared_users[it->handle] < shared_users[best->handle]) best = it;
        ++shared_users[best->handle];
        return *best;
    }
    void release(turn::RelayHandle h) override {
        if (auto it = shared_users.find(h); it != shared_users.end()) {
            CHECK_MESSAGE(it->second > 0, "released a shared handle more often than it was handed out: " << h);
            --it->second;
            return;
        }
        CHECK_MESSAGE(open_handles.erase(h) == 1, "released a handle twice or never opened: " << h);
    }
    std::uint32_t shared_in_use() const {
        std::uint32_t n = 0;
        for (const auto& [h, users] : shared_users) n += users;
        return n;
    }
    turn::RelaySocket open(tb::Family f, std::uint16_t port) {
        turn::RelaySocket s;
        s.handle = next_handle++;
        s.local.ip = *tb::IpAddress::parse(f == tb::Family::V4 ? "127.0.0.1" : "::1");
        s.local.port = port;
        open_handles.insert(s.handle);
        return s;
    }
    bool fail_next = false;
    std::size_t shared_ports = 0;  // 0: bind_shared() falls back to a dedicated socket
    std::map<tb::Family, std::vector<turn::RelaySocket>> shared;
    std::map<turn::RelayHandle, std::uint32_t> shared_users;
    std::uint16_t next_port = 61000;
    turn::RelayHandle next_handle = 1;
    std::set<turn::RelayHandle> open_handles;
    std::map<std::uint64_t, std::uint16_t> reserved;
    std::map<std::uint64_t, tb::Family> reserved_family;
};

inline std::shared_ptr<tb::config::Config> test_config() {
    auto cfg = std::make_shared<tb::config::Config>();
    cfg->listen = {*tb::Endpoint::parse("192.0.2.10:3478")};
    cfg->relay_ips = {*tb::IpAddress::parse("127.0.0.1"), *tb::IpAddress::parse("::1")};
    cfg->default_realm = "example.org";
    tb::config::Realm realm;
    realm.name = "example.org";
    realm.users = {{"test", "secret"}, {"other", "pass2"}};
    realm.rest_secret = "s3cr3t";
    cfg->realms["example.org"] = realm;
    cfg->allowed_peers = {};
    return cfg;
}

// A received message copied out of the server's buffer, so it outlives the next call.
struct Reply {
    std::vector<std::uint8_t> bytes;
    std::optional<stun::Message> msg;
    void set(stun::Bytes b) {
        bytes.assign(b.begin(), b.end());
        auto m = stun::Message::parse(bytes);
        REQUIRE_MESSAGE(m, "server sent an unparseable message");
        msg = *m;
    }
    const stun::Message* operator->() const { return &*msg; }
    std::uint16_t code() const { return msg->get_error_code().value_or(0); }
    bool success() const { return msg->cls() == stun::Class::Success; }
};

struct Bench {
    std::shared_ptr<tb::config::Config> cfg = test_config();
    turn::NonceMinter nonces{std::array<std::uint8_t, 32>{7}, std::chrono::seconds(600)};
    turn::QuotaTracker quota;
    FakeBinder binder;
    std::unique_ptr<turn::Server> server;
    turn::Clock now{turn::Time{} + std::chrono::hours(1000), 1'800'000'000};
    std::vector<turn::Action> out;

    Bench() { restart(); }
    void restart() { server = std::make_unique<turn::Server>(turn::SharedState{cfg, &nonces, &quota, 0}, binder); }
    void advance(std::chrono::seconds s) {
        now.mono += s;
        now.unix_seconds += s.count();
    }
    void send(const tb::FiveTuple& from, stun::Bytes bytes) {
        out.clear();
        server->on_client_data(now, from, bytes, out);
    }
    void from_peer(turn::RelayHandle relay, const tb::Endpoint& peer, stun::Bytes bytes) {
        out.clear();
        server->on_peer_data(now, relay, peer, bytes, out);
    }
    // The single STUN reply in `out`, or fails the test.
    Reply reply() const {
        REQUIRE(out.size() == 1);
        const auto* tc = std::get_if<turn::ToClient>(&out[0]);
        REQUIRE(tc != nullptr);
        CHECK(tc->body.empty());
        Reply r;
        r.set(tc->head);
        return r;
    }
};

// A ChannelData message (RFC 8656 §12.4) as a client sends it over UDP.
inline std::vector<std::uint8_t> channel_data(std::uint16_t ch, const std::vector<std::uint8_t>& data) {
    std::vector<std::uint8_t> v = {std::uint8_t(ch >> 8), std::uint8_t(ch), std::uint8_t(data.size() >> 8),
                                   std::uint8_t(data.size())};
    v.insert(v.end(), data.begin(), data.end());
    return v;
}

inline tb::FiveTuple tuple(const char* client, tb::Transport t = tb::Transport::Udp,
                           const char* server = "192.0.2.10:3478") {
    return tb::FiveTuple{t, *tb::Endpoint::parse(client), *tb::Endpoint::parse(server)};
}

enum class ClientMac { None, Sha1, Sha256 };
struct ClientOptions {
    ClientMac mac = ClientMac::Sha1;
    bool sha256_key = false;       // PASSWORD-ALGORITHM SHA-256 (and echo PASSWORD-ALGORITHMS)
    bool userhash = false;
    bool fingerprint = false;
    std::optional<std::string> nonce_override;
};

// Builds requests; `auth` adds USERNAME/REALM/NONCE and integrity from the last challenge.
class Client {
public:
    Client(Bench& b, tb::FiveTuple ft, std::string user = "test", std::string password = "secret")
        : bench_(b), ft_(ft), user_(std::move(user)), password_(std::move(password)) {}

    struct Attr {
        std::uint16_t type;
        std::vector<std::uint8_t> value;
    };
    static Attr u32(std::uint16_t type, std::uint32_t v) {
        return {type, {std::uint8_t(v >> 24), std::uint8_t(v >> 16), std::uint8_t(v >> 8), std::uint8_t(v)}};
    }
    static Attr udp() { return {stun::attr::RequestedTransport, {17, 0, 0, 0}}; }
    static Attr family(std::uint8_t f) { return {stun::attr::RequestedAddressFamily, {f, 0, 0, 0}}; }

    using Mac = ClientMac;
    using Options = ClientOptions;

    std::vector<std::uint8_t> build(std::uint16_t method, const std::vector<Attr>& attrs, const Options& o,
                                    stun::Class cls = stun::Class::Request) {
        std::array<std::uint8_t, 2048> buf{};
        stun::TransactionId tid{};
        for (auto& x : tid) x = static_cast<std::uint8_t>(++tid_counter_ * 37);
        last_tid = tid;
        stun::MessageBuilder b(buf, method, cls, tid);
        for (const auto& a : attrs) b.add(a.type, a.value);
        if (o.mac != Mac::None) {
            if (o.userhash) {
                b.add(stun::attr::Userhash, stun::userhash(user_, realm_));
            } else {
                b.add_string(stun::attr::Username, user_);
            }
            b.add_string(stun::attr::Realm, realm_);
            b.add_string(stun::attr::Nonce, o.nonce_override.value_or(nonce_));
            if (o.sha256_key) {
                const std::uint8_t algs[] = {0, 1, 0, 0, 0, 2, 0, 0};
                b.add(stun::attr::PasswordAlgorithms, algs);
                const std::uint8_t alg[] = {0, 2, 0, 0};
                b.add(stun::attr::PasswordAlgorithm, alg);
            }
            if (o.mac == Mac::Sha256) {
                if (o.sha256_key)
                    b.add_message_integrity_sha256(stun::long_term_key_sha256(user_, realm_, password_));
                else
                    b.add_message_integrity_sha256(stun::long_term_key_md5(user_, realm_, password_));
            } else {
                if (o.sha256_key)
                    b.add_message_integrity(stun::long_term_key_sha256(user_, realm_, password_));
                else
                    b.add_message_integrity(stun::long_term_key_md5(user_, realm_, password_));
            }
        }
        if (o.fingerprint) b.add_fingerprint();
        REQUIRE(b.ok());
        return {b.bytes().begin(), b.bytes().end()};
    }

    // Sends once without credentials to learn the nonce (expects 401), like every real client.
    void learn_nonce() {
        auto req = build(stun::method::Allocate, {udp()}, Options{ClientMac::None});
        bench_.send(ft_, req);
        auto r = bench_.reply();
        REQUIRE(r.code() == 401);
        nonce_ = std::string(*r->get_string(stun::attr::Nonce));
        realm_ = std::string(*r->get_string(stun::attr::Realm));
    }

    Reply request(std::uint16_t method, const std::vector<Attr>& attrs, const Options& o = {}) {
        if (nonce_.empty() && o.mac != Mac::None) learn_nonce();
        last_request = build(method, attrs, o);
        bench_.send(ft_, last_request);
        auto r = bench_.reply();
        if (r.code() == 438 && !o.nonce_override) {  // like real clients: take the fresh nonce, retry once
            nonce_ = std::string(*r->get_string(stun::attr::Nonce));
            last_request = build(method, attrs, o);
            bench_.send(ft_, last_request);
            r = bench_.reply();
        }
        return r;
    }
    Reply allocate(std::vector<Attr> attrs = {udp()}, const Options& o = {}) {
        return request(stun::method::Allocate, attrs, o);
    }
    Reply with_peers(std::uint16_t method, std::vector<const char*> peers, std::vector<Attr> extra = {}, bool retry = true) {
        if (nonce_.empty()) learn_nonce();
        // Build once to fix the tid, then encode the XOR addresses with it.
        std::array<std::uint8_t, 2048> buf{};
        stun::TransactionId tid{};
        for (auto& x : tid) x = static_cast<std::uint8_t>(++tid_counter_ * 41);
        stun::MessageBuilder b(buf, method, stun::Class::Request, tid);
        for (const auto& a : extra) b.add(a.type, a.value);
        for (const char* p : peers) b.add_xor_address(stun::attr::XorPeerAddress, *tb::Endpoint::parse(p));
        b.add_string(stun::attr::Username, user_);
        b.add_string(stun::attr::Realm, realm_);
        b.add_string(stun::attr::Nonce, nonce_);
        b.add_message_integrity(stun::long_term_key_md5(user_, realm_, password_));
        REQUIRE(b.ok());
        bench_.send(ft_, b.bytes());
        auto r = bench_.reply();
        if (r.code() == 438 && retry) {
            nonce_ = std::string(*r->get_string(stun::attr::Nonce));
            return with_peers(method, std::move(peers), std::move(extra), false);
        }
        return r;
    }
    Reply create_permission(std::vector<const char*> peers) {
        return with_peers(stun::method::CreatePermission, std::move(peers));
    }
    Reply channel_bind(std::uint16_t channel, const char* peer) {
        return with_peers(stun::method::ChannelBind, {peer}, {u32(stun::attr::ChannelNumber, std::uint32_t(channel) << 16)});
    }
    Reply refresh(std::optional<std::uint32_t> lifetime) {
        std::vector<Attr> attrs;
        if (lifetime) attrs.push_back(u32(stun::attr::Lifetime, *lifetime));
        return request(stun::method::Refresh, attrs);
    }
    std::vector<std::uint8_t> send_indication(const char* peer, std::vector<std::uint8_t> data, bool df = false) {
        std::array<std::uint8_t, 2048> buf{};
        stun::TransactionId tid{};
        tid[0] = static_cast<std::uint8_t>(++tid_counter_);
        stun::MessageBuilder b(buf, stun::method::Send, stun::Class::Indication, tid);
        b.add_xor_address(stun::attr::XorPeerAddress, *tb::Endpoint::parse(peer));
        b.add(stun::attr::Data, data);
        if (df) b.add(stun::attr::DontFragment, {});
        return {b.bytes().begin(), b.bytes().end()};
    }
    std::array<std::uint8_t, 16> md5_key() const { return stun::long_term_key_md5(user_, realm_, password_); }

    const tb::FiveTuple& five_tuple() const { return ft_; }
    std::string& nonce() { return nonce_; }
    stun::TransactionId last_tid{};
    std::vector<std::uint8_t> last_request;

private:
    Bench& bench_;
    tb::FiveTuple ft_;
    std::string user_, password_;
    std::string realm_ = "example.org";
    std::string nonce_;
    int tid_counter_ = 0;
};
