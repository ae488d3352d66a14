// SPDX-License-Identifier: Apache-2.0
// Allocate load generator for tests/bench/relay_bench.py: many TURN allocations over UDP with
// the full long-term-credential flow (RFC 8656 §7.2, RFC 8489 §9.2), against any TURN server.
//
// Every allocation uses its own client socket (its own 5-tuple) and runs:
//   Allocate (no credentials) -> 401 with REALM and NONCE
//   Allocate (USERNAME, REALM, NONCE, MESSAGE-INTEGRITY) -> success
//   churn: Refresh LIFETIME=0 -> success (the allocation is deleted)
//   hold:  ChannelBind to --peer (one channel and its permission), then the allocation is
//          kept until stdin closes or --hold-seconds pass, so the caller can read the
//          server's RSS.
// The nonce is learnt per 5-tuple because coturn keeps one per session; a 438 (Stale Nonce)
// is answered once with the new nonce. Lost datagrams are retransmitted (RFC 8489 §6.2.1,
// RTO 500 ms, at most 4 times).
//
// Independent of turnbridge's own codec on purpose, so that a codec bug cannot hide itself.
// Loopback use only: the server address must be in 127.0.0.0/8.
//
// Output (one line, stdout): ok=N failed=N seconds=S allocs_per_s=R transactions=N retransmits=N
// In hold mode a line "held N" comes first, once every allocation is up.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kMagicCookie = 0x2112A442;
constexpr std::uint16_t kAllocate = 0x0003, kRefresh = 0x0004, kChannelBind = 0x0009;
constexpr std::uint16_t kAttrUsername = 0x0006, kAttrIntegrity = 0x0008, kAttrErrorCode = 0x0009,
                        kAttrChannelNumber = 0x000C, kAttrLifetime = 0x000D, kAttrPeer = 0x0012,
                        kAttrRealm = 0x0014, kAttrNonce = 0x0015, kAttrRequestedTransport = 0x0019;

struct Options {
    sockaddr_in server{};
    sockaddr_in peer{};
    std::string user = "bench", password = "bench";
    int count = 10000, concurrency = 256, threads = 1;
    bool hold = false;
    double timeout = 60, hold_seconds = 120;
};

// One STUN message under construction (RFC 8489 §5, §14).
class Message {
public:
    Message(std::uint16_t type, const std::uint8_t tid[12]) {
        put16(type);
        put16(0);
        put32(kMagicCookie);
        buf_.insert(buf_.end(), tid, tid + 12);
    }
    void attr(std::uint16_t type, const void* data, std::size_t len) {
        put16(type);
        put16(static_cast<std::uint16_t>(len));
        const auto* p = static_cast<const std::uint8_t*>(data);
        buf_.insert(buf_.end(), p, p + len);
        while (buf_.size() % 4) buf_.push_back(0);
    }
    void attr32(std::uint16_t type, std::uint32_t v) {
        const std::uint32_t n = htonl(v);
        attr(type, &n, 4);
    }
    void xor_address(std::uint16_t type, const sockaddr_in& a) {
        std::uint8_t v[8] = {0, 1};
        const std::uint16_t port = ntohs(a.sin_port) ^ (kMagicCookie >> 16);
        v[2] = port >> 8;
        v[3] = port & 0xFF;
        const std::uint32_t ip = htonl(ntohl(a.sin_addr.s_addr) ^ kMagicCookie);
        std::memcpy(v + 4, &ip, 4);
        attr(type, v, 8);
    }
    // MESSAGE-INTEGRITY: HMAC-SHA1 over the message with the length already covering it (§14.5).
    void sign(const std::uint8_t key[16]) {
        set_length(buf_.size() - 20 + 24);
        std::uint8_t mac[20];
        unsigned mac_len = 0;
        HMAC(EVP_sha1(), key, 16, buf_.data(), buf_.size(), mac, &mac_len);
        attr(kAttrIntegrity, mac, 20);
    }
    const std::vector<std::uint8_t>& finish() {
        set_length(buf_.size() - 20);
        return buf_;
    }

private:
    void put16(std::uint16_t v) { buf_.push_back(v >> 8), buf_.push_back(v & 0xFF); }
    void put32(std::uint32_t v) { put16(v >> 16), put16(v & 0xFFFF); }
    void set_length(std::size_t n) { buf_[2] = n >> 8, buf_[3] = n & 0xFF; }
    std::vector<std::uint8_t> buf_;
};

struct Response {
    std::uint16_t type = 0;
    int error = 0;
    std::string realm, nonce;
};

bool parse(const std::uint8_t* p, std::size_t n, const std::uint8_t tid[12], Response& r) {
    if (n < 20 || (p[0] & 0xC0) != 0) return false;
    const std::size_t len = (p[2] << 8) | p[3];
    if (20 + len > n || std::memcmp(p + 8, tid, 12) != 0) return false;
    r.type = (p[0] << 8) | p[1];
    for (std::size_t off = 20; off + 4 <= 20 + len;) {
        const std::uint16_t t = (p[off] << 8) | p[off + 1];
        const std::size_t l = (p[off + 2] << 8) | p[off + 3];
        const std::uint8_t* v = p + off + 4;
        if (off + 4 + l > 20 + len) return false;
        if (t == kAttrErrorCode && l >= 4) r.error = (v[2] & 0x7) * 100 + v[3];
        if (t == kAttrRealm) r.realm.assign(reinterpret_cast<const char*>(v), l);
        if (t == kAttrNonce) r.nonce.assign(reinterpret_cast<const char*>(v), l);
        off += 4 + ((l + 3) & ~std::size_t{3});
    }
    return true;
}

enum class Step { Idle, Challenge, Allocate, Finish, Held };

struct Slot {
    int fd = -1;
    Step step = Step::Idle;
    std::uint8_t tid[12]{};
    std::vector<std::uint8_t> sent;
    Clock::time_point deadline;
    int retries = 0;
    bool stale_retried = false;
    std::string realm, nonce;
};

struct Totals {
    std::atomic<long> ok{0}, failed{0}, transactions{0}, retransmits{0}, held{0};
};

class Worker {
public:
    Worker(const Options& o, unsigned index, int count, int concurrency, Totals& t, unsigned seed)
        : o_(o), index_(index), remaining_(count), slots_(concurrency), totals_(t), rng_(seed) {}

    void run(Clock::time_point end) {
        ep_ = epoll_create1(0);
        for (std::size_t i = 0; i < slots_.size(); ++i) start(i);
        std::vector<epoll_event> events(256);
        std::uint8_t buf[2048];
        while (active_ > 0 && Clock::now() < end) {
            const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 20);
            for (int i = 0; i < n; ++i) {
                Slot& s = slots_[events[i].data.u32];
                for (;;) {
                    const ssize_t got = recv(s.fd, buf, sizeof buf, 0);
                    if (got <= 0) break;
                    Response r;
                    if (s.step != Step::Idle && s.step != Step::Held && parse(buf, got, s.tid, r)) {
                        on_response(events[i].data.u32, r);
                        break;
                    }
                }
            }
            retransmit_due();
        }
        for (Slot& s : slots_)
            if (s.fd >= 0 && s.step != Step::Held) ++failed_;
        totals_.ok += ok_;
        totals_.failed += failed_;
    }

    void close_all() {
        for (int fd : held_fds_) close(fd);
        for (Slot& s : slots_)
            if (s.fd >= 0) close(s.fd);
        close(ep_);
    }

private:
    void start(std::size_t i) {
        Slot& s = slots_[i];
        if (s.fd >= 0 && s.step == Step::Held) held_fds_.push_back(s.fd);
        else if (s.fd >= 0) close(s.fd);
        s = Slot{};
        if (remaining_ == 0) return;
        --remaining_;
        s.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        // A fresh source address per allocation, 127.<10+worker>.x.y: a recycled ephemeral
        // port would otherwise meet the 5-tuple of a just-deleted allocation that the server
        // still remembers (coturn answers 437 then).
        sockaddr_in local{};
        local.sin_family = AF_INET;
        local.sin_addr.s_addr = htonl((127u << 24) | ((10u + index_) << 16) | (next_source_++ & 0xFFFFu));
        if (s.fd < 0 || bind(s.fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0 || connect(s.fd, reinterpret_cast<const sockaddr*>(&o_.server), sizeof o_.server) != 0) {
            std::perror("alloc_load: socket");
            std::exit(1);
        }
        epoll_event ev{EPOLLIN, {}};
        ev.data.u32 = static_cast<std::uint32_t>(i);
        epoll_ctl(ep_, EPOLL_CTL_ADD, s.fd, &ev);
        ++active_;
        send_request(s, Step::Challenge);
    }

    void send_request(Slot& s, Step step) {
        for (auto& b : s.tid) b = static_cast<std::uint8_t>(rng_());
        const std::uint16_t type = step == Step::Finish ? (o_.hold ? kChannelBind : kRefresh) : kAllocate;
        Message m(type, s.tid);
        if (type == kAllocate) m.attr32(kAttrRequestedTransport, 17u << 24);
        if (type == kRefresh) m.attr32(kAttrLifetime, 0);
        if (type == kChannelBind) {
            m.attr32(kAttrChannelNumber, 0x4000u << 16);
            m.xor_address(kAttrPeer, o_.peer);
        }
        if (step != Step::Challenge) {
            m.attr(kAttrUsername, o_.user.data(), o_.user.size());
            m.attr(kAttrRealm, s.realm.data(), s.realm.size());
            m.attr(kAttrNonce, s.nonce.data(), s.nonce.size());
            m.sign(key(s.realm));
        }
        s.sent = m.finish();
        s.step = step;
        s.retries = 0;
        s.deadline = Clock::now() + std::chrono::milliseconds(500);
        ++totals_.transactions;
        send(s.fd, s.sent.data(), s.sent.size(), 0);
    }

    // The long-term key MD5(username ":" realm ":" password), cached for the one realm in use.
    const std::uint8_t* key(const std::string& realm) {
        if (realm != key_realm_) {
            const std::string k = o_.user + ":" + realm + ":" + o_.password;
            EVP_Digest(k.data(), k.size(), key_, nullptr, EVP_md5(), nullptr);
            key_realm_ = realm;
        }
        return key_;
    }

    void on_response(std::uint32_t i, const Response& r) {
        Slot& s = slots_[i];
        const bool success = (r.type & 0x0110) == 0x0100;
        if (s.step == Step::Challenge && r.error == 401 && !r.nonce.empty()) {
            s.realm = r.realm, s.nonce = r.nonce;
            return send_request(s, Step::Allocate);
        }
        if (r.error == 438 && !r.nonce.empty() && !s.stale_retried) {
            s.stale_retried = true;
            s.nonce = r.nonce;
            return send_request(s, s.step);
        }
        if (s.step == Step::Allocate && success) {
            ++ok_;
            return send_request(s, Step::Finish);
        }
        if (s.step == Step::Finish && success) {
            if (o_.hold) {
                epoll_ctl(ep_, EPOLL_CTL_DEL, s.fd, nullptr);
                s.step = Step::Held;
                ++totals_.held;
            }
            --active_;
            return start(i);
        }
        if (failed_ < 5) std::fprintf(stderr, "alloc_load: response 0x%04x error %d\n", r.type, r.error);
        ++failed_;
        if (s.step == Step::Finish) --ok_;
        --active_;
        start(i);
    }

    void retransmit_due() {
        const auto now = Clock::now();
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            Slot& s = slots_[i];
            if (s.fd < 0 || s.step == Step::Idle || s.step == Step::Held || now < s.deadline) continue;
            if (++s.retries > 4) {
                ++failed_;
                --active_;
                start(i);
                continue;
            }
            ++totals_.retransmits;
            s.deadline = now + std::chrono::milliseconds(500 << s.retries);
            send(s.fd, s.sent.data(), s.sent.size(), 0);
        }
    }

    const Options& o_;
    unsigned index_;
    std::uint32_t next_source_ = 1;
    int remaining_;
    std::vector<Slot> slots_;
    std::vector<int> held_fds_;
    Totals& totals_;
    std::minstd_rand rng_;
    int ep_ = -1, active_ = 0;
    long ok_ = 0, failed_ = 0;
    std::string key_realm_;
    std::uint8_t key_[EVP_MAX_MD_SIZE]{};
};

bool parse_endpoint(const char* text, sockaddr_in& out) {
    std::string s(text);
    const auto colon = s.rfind(':');
    if (colon == std::string::npos) return false;
    out.sin_family = AF_INET;
    out.sin_port = htons(static_cast<std::uint16_t>(std::atoi(s.c_str() + colon + 1)));
    if (inet_pton(AF_INET, s.substr(0, colon).c_str(), &out.sin_addr) != 1) return false;
    return (ntohl(out.sin_addr.s_addr) >> 24) == 127;  // loopback only
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: alloc_load --server 127.0.0.1:PORT [--user U] [--password P] [--count N]\n"
                 "       [--concurrency C] [--threads T] [--timeout S] [--hold --peer 127.0.0.1:PORT\n"
                 "       [--hold-seconds S]]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    bool have_server = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "--hold") { o.hold = true; continue; }
        if (!v) usage();
        ++i;
        if (a == "--server") have_server = parse_endpoint(v, o.server);
        else if (a == "--peer") { if (!parse_endpoint(v, o.peer)) usage(); }
        else if (a == "--user") o.user = v;
        else if (a == "--password") o.password = v;
        else if (a == "--count") o.count = std::atoi(v);
        else if (a == "--concurrency") o.concurrency = std::atoi(v);
        else if (a == "--threads") o.threads = std::atoi(v);
        else if (a == "--timeout") o.timeout = std::atof(v);
        else if (a == "--hold-seconds") o.hold_seconds = std::atof(v);
        else usage();
    }
    if (!have_server || o.count < 1 || o.threads < 1 || o.threads > 200 || o.concurrency < o.threads ||
        (o.hold && o.peer.sin_family != AF_INET))
        usage();

    Totals totals;
    std::vector<Worker> workers;
    workers.reserve(o.threads);
    for (int t = 0; t < o.threads; ++t)
        workers.emplace_back(o, static_cast<unsigned>(t), o.count / o.threads + (t < o.count % o.threads),
                             o.concurrency / o.threads, totals, std::random_device{}());
    const auto t0 = Clock::now();
    const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout));
    std::vector<std::thread> threads;
    for (auto& w : workers) threads.emplace_back([&w, end] { w.run(end); });
    for (auto& t : threads) t.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();

    if (o.hold) {
        std::printf("held %ld\n", totals.held.load());
        std::fflush(stdout);
        pollfd in{0, POLLIN, 0};
        poll(&in, 1, static_cast<int>(o.hold_seconds * 1000));  // until stdin closes or time is up
    }
    for (auto& w : workers) w.close_all();
    std::printf("ok=%ld failed=%ld seconds=%.3f allocs_per_s=%.1f transactions=%ld retransmits=%ld\n",
                totals.ok.load(), totals.failed.load(), seconds, totals.ok.load() / seconds,
                totals.transactions.load(), totals.retransmits.load());
    return totals.failed.load() == 0 ? 0 : 1;
}
