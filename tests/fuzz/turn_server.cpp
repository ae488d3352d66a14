// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the whole sans-I/O request handler with a fake clock. The input is a script of
// records [op][len hi][len lo][bytes]; op "signed" re-signs a parsed message with valid
// credentials and nonce, so the fuzzer reaches the TURN handlers behind authentication.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "fuzz_binder.hpp"
#include "turnbridge/stun/integrity.hpp"
#include "turnbridge/turn/server.hpp"

using namespace turnbridge;

namespace {

std::shared_ptr<config::Config> make_config() {
    auto cfg = std::make_shared<config::Config>();
    cfg->listen = {*Endpoint::parse("192.0.2.10:3478")};
    cfg->relay_ips = {*IpAddress::parse("127.0.0.1"), *IpAddress::parse("::1")};
    cfg->allowed_peers = {*Cidr::parse("127.0.0.0/8")};
    cfg->max_allocations_per_user = 3;
    // Low enough that inputs reach the reflection guard's drops (RFC 8656 §21).
    cfg->unauthenticated_rate = 2;
    cfg->unauthenticated_burst = 3;
    config::Realm realm;
    realm.name = "example.org";
    realm.users = {{"test", "secret"}};
    realm.rest_secret = "s3cr3t";
    cfg->realms["example.org"] = realm;
    return cfg;
}

// Rebuilds `in` as the same method/class with its attributes, then valid credentials.
std::size_t sign(stun::Bytes in, const std::string& nonce, std::array<std::uint8_t, 2048>& buf) {
    auto m = stun::Message::parse(in);
    if (!m) return 0;
    stun::MessageBuilder b(buf, m->method(), m->cls(), m->transaction_id());
    for (const auto& a : m->attributes()) {
        using namespace stun::attr;
        if (a.type == MessageIntegrity || a.type == MessageIntegritySha256 || a.type == Fingerprint ||
            a.type == Username || a.type == Realm || a.type == Nonce || a.type == Userhash)
            continue;
        b.add(a.type, m->value(a));
    }
    b.add_string(stun::attr::Username, "test");
    b.add_string(stun::attr::Realm, "example.org");
    b.add_string(stun::attr::Nonce, nonce);
    b.add_message_integrity(stun::long_term_key_md5("test", "example.org", "secret"));
    return b.ok() ? b.size() : 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto nonces = turn::NonceMinter(std::array<std::uint8_t, 32>{5}, std::chrono::seconds(600));
    turn::QuotaTracker quota;
    fuzz::FuzzBinder binder;
    {
        turn::Server server(turn::SharedState{make_config(), &nonces, &quota, 1}, binder);
        turn::Clock now{turn::Time{} + std::chrono::hours(10), 1'700'000'000};
        std::vector<turn::Action> out;
        std::array<std::uint8_t, 2048> signed_buf{};
        const std::array<FiveTuple, 4> clients = {
            FiveTuple{Transport::Udp, *Endpoint::parse("198.51.100.1:1000"), *Endpoint::parse("192.0.2.10:3478")},
            FiveTuple{Transport::Udp, *Endpoint::parse("198.51.100.1:1001"), *Endpoint::parse("192.0.2.10:3478")},
            FiveTuple{Transport::Tcp, *Endpoint::parse("198.51.100.2:1000"), *Endpoint::parse("192.0.2.10:3478")},
            FiveTuple{Transport::Udp, *Endpoint::parse("[2001:db8::1]:1000"), *Endpoint::parse("192.0.2.10:3478")}};
        std::size_t pos = 0;
        while (pos + 3 <= size) {
            const std::uint8_t op = data[pos];
            const std::size_t len = std::min<std::size_t>(static_cast<std::size_t>(data[pos + 1] << 8 | data[pos + 2]),
                                                          size - pos - 3);
            stun::Bytes body(data + pos + 3, len);
            pos += 3 + len;
            const FiveTuple& ft = clients[(op >> 4) & 3];
            out.clear();
            switch (op & 0x0F) {
                case 0: server.on_client_data(now, ft, body, out); break;
                case 1: {
                    const auto n = sign(body, nonces.mint(now.mono, ft.client.ip), signed_buf);
                    if (n) server.on_client_data(now, ft, stun::Bytes(signed_buf.data(), n), out);
                    break;
                }
                case 2: {
                    Endpoint peer = *Endpoint::parse("127.0.0.1:40000");
                    if (len > 0) peer.port = static_cast<std::uint16_t>(40000 + body[0]);
                    server.on_peer_data(now, binder.any(), peer, body, out);
                    break;
                }
                case 3:
                    now.mono += std::chrono::seconds(len > 0 ? body[0] * 10 : 1);
                    now.unix_seconds += len > 0 ? body[0] * 10 : 1;
                    server.on_timer(now);
                    break;
                case 4: server.on_client_closed(now, ft); break;
                default: break;
            }
            for (const auto& a : out) {
                if (const auto* tc = std::get_if<turn::ToClient>(&a)) {
                    // Whatever we send must be a whole STUN message or ChannelData.
                    if (tc->head.empty() && tc->body.empty()) __builtin_trap();
                }
            }
        }
    }
    if (binder.open_count() != 0) __builtin_trap();  // every relay socket released at teardown
    if (quota.total() != 0) __builtin_trap();
    return 0;
}
