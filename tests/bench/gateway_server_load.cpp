// SPDX-License-Identifier: Apache-2.0
// Gateway load through a real turnbridge process, for tests/bench/gateway_server_bench.py: N
// concurrent transcoded calls, each between a "browser" and a "trunk" played here (the peers of
// gateway_peers.hpp, shared with the in-process gateway_load.cpp), over loopback sockets.
//   browser: a WebSocket (RFC 6455) to ws_listen carrying SIP (RFC 7118); REGISTER answered after
//            its 401 and INVITE after its 407 (RFC 3261 §22.2/§22.3, digest of sip/digest.hpp);
//            its own user (PREFIX + index) and number (+1555 + index); then ICE (a Binding with
//            USE-CANDIDATE to the answer's media address), DTLS client, SRTP, one Opus frame of
//            a tone every 20 ms and a consent check every 5 s (RFC 7675 §5.1). With --turn, all
//            of its media goes through a TURN allocation of its own on that server (Allocate with
//            the 401 round, ChannelBind to the gateway's media address, ChannelData; RFC 8656),
//            as a browser with iceTransportPolicy "relay" does; without, straight to the gateway.
//   trunk:   a small SIP UAS on UDP (the server's `trunk`): answers INVITE 200 with PCMU at a
//            port of its own for each call, takes ACK, answers BYE; sends one PCMU frame of
//            another tone every 20 ms from that port. --trunk-codec g722: G.722 instead (the
//            server's codecs must list "g722").
// Calls are set up one after the other; then ticks run on an absolute 20 ms timer (timerfd).
// After --warmup-ticks the generator prints `measure-start`, after --seconds `measure-end` (the
// bench samples the server's /proc between the two lines); then it checks every call, hangs up
// every call with BYE (the trunk must see the gateway's BYE) and prints one JSON object.
//
// Checks per call (exit 1 when one fails): each end hears the other's tone within 2 %, no SRTP
// authentication failure, no unexpected packet, BYE answered 200 at both legs. Figures per direction (not checks: they are what load does): frames expected,
// heard, missing and out of sequence; the sender's frame period (fitted to the arrivals); frames
// late, i.e. arriving more than --late-ms behind the stream's schedule (the line fitted to
// sequence number and arrival time, moved to the earliest arrival): a stall or a queue behind a
// busy thread counts, a steady path delay or a sender's clock running slow does not. Toward the
// browser the gateway forwards what the trunk sent (expected: the trunk's frames); toward the
// trunk it sends one frame per tick of its own 20 ms timer (expected: one per 20 ms measured).
//
// --fault srtp flips a bit in every 50th SRTP packet on its way to the browser; --fault tone has
// each trunk play its neighbour's tone (crossed calls): both must make the checks fail. --fault
// stall has every trunk hold two frames every 2 s and send them with the third: frames late at
// the browsers must show it.
//
// Usage: gateway_server_load --ws HOST:PORT --trunk-port P --calls N [--turn HOST:PORT] [--seconds S]
//          [--warmup-ticks W] [--realm R] [--user-prefix U] [--password PW] [--late-ms L]
//          [--setup-timeout S] [--max-wall S] [--fault srtp|tone|stall] [--trunk-codec pcmu|g722]
// Loopback only: every address given must be in 127.0.0.0/8. Exit 0 when every call passed its
// checks, 1 when one did not, 2 when the load could not run (setup failed).
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>

#include <functional>
#include <map>
#include <random>

#include "frame_timing.hpp"
#include "gateway_peers.hpp"
#include "loopback_io.hpp"
#include "turnbridge/sip/digest.hpp"
#include "turnbridge/sip/message.hpp"
#include "turnbridge/stun/integrity.hpp"

namespace {

using namespace turnbridge;
using namespace turnbridge::bench;
using Clock = std::chrono::steady_clock;

double now_ms() { return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count(); }

std::mt19937_64 rng{std::random_device{}()};
const sip::Random kRandom = [] { return rng(); };
std::string hex(std::uint64_t v) {
    char b[17];
    std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
    return b;
}

// Sockets the load cannot go without: it stops when one fails.
int must_bind_udp(const Endpoint& at) {
    const int fd = udp_socket(at);
    if (fd < 0) die("cannot bind UDP " + at.to_string() + ": " + std::strerror(errno));
    return fd;
}
void must_connect(int fd, const Endpoint& to) {
    if (!connect_to(fd, to)) die("cannot connect to " + to.to_string() + ": " + std::strerror(errno));
}

// ---- one call --------------------------------------------------------------------------------

struct Call {
    std::size_t index = 0;
    std::string realm, user, number, call_id, from_tag, to_header, target, invite_branch, problem;
    WebSocketClient ws;
    int browser_fd = -1, trunk_fd = -1;
    Endpoint trunk_rtp, gateway_browser_media, gateway_trunk_media;
    BrowserPeer browser;
    TrunkPeer trunk;
    Arrivals at_browser, at_trunk;
    // Trunk side of SIP: the gateway's INVITE and our answer (resent on a retransmission).
    std::string trunk_call_id, trunk_answer_bytes;
    bool trunk_acked = false, trunk_bye = false, bye_ok = false, media_started = false;
    std::uint64_t consent_sent = 0, browser_sent = 0, trunk_sent = 0;
    std::uint32_t cseq = 0;
    // Through TURN (--turn): the allocation's relayed address, the last TURN response, and the
    // buffer that wraps every datagram toward the gateway as ChannelData (RFC 8656 §12.4).
    std::optional<Endpoint> relayed;
    std::string turn_nonce;
    std::vector<std::uint8_t> turn_reply;
    std::array<std::uint8_t, 4 + kMaxMediaDatagram> channel_tx{};

    std::string request(const std::string& method, const std::string& uri, std::uint32_t n, const std::string& to,
                        const std::string& extra = {}, const std::string& body = {}, std::string branch = {}) {
        if (branch.empty()) branch = "z9hG4bK" + hex(rng());
        if (method == "INVITE") invite_branch = branch;
        std::string m = method + " " + uri + " SIP/2.0\r\nVia: SIP/2.0/WS b" + std::to_string(index) +
                        ".invalid;branch=" + branch + "\r\nMax-Forwards: 70\r\nFrom: <sip:" + user + "@" + realm +
                        ">;tag=" + from_tag + "\r\nTo: " + to + "\r\nCall-ID: " + call_id + "\r\nCSeq: " +
                        std::to_string(n) + " " + method + "\r\nContact: <sip:" + user + "@b" + std::to_string(index) +
                        ".invalid;transport=ws>\r\n" + extra;
        if (!body.empty()) m += "Content-Type: application/sdp\r\n";
        m += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        return m;
    }
};

struct Options {
    Endpoint ws;
    std::optional<Endpoint> turn;
    int trunk_port = 0;
    std::size_t calls = 10;
    double seconds = 10, setup_timeout = 5, max_wall = 0, late_ms = 20;
    long warmup = 50;
    std::string realm = "example.org", user_prefix = "b", password = "bench", fault;
    bool trunk_g722 = false;  // --trunk-codec g722
};

Options parse_options(int argc, char** argv) {
    Options o;
    bool ws = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--ws") {
            const auto e = Endpoint::parse(v);
            if (!e) die("--ws: not HOST:PORT: " + v);
            o.ws = *e;
            ws = true;
        } else if (a == "--turn") {
            o.turn = Endpoint::parse(v);
            if (!o.turn || !loopback(*o.turn)) die("--turn: not a loopback HOST:PORT: " + v);
        } else if (a == "--trunk-port") o.trunk_port = std::atoi(v.c_str());
        else if (a == "--calls") o.calls = std::strtoul(v.c_str(), nullptr, 10);
        else if (a == "--seconds") o.seconds = std::atof(v.c_str());
        else if (a == "--warmup-ticks") o.warmup = std::atol(v.c_str());
        else if (a == "--realm") o.realm = v;
        else if (a == "--user-prefix") o.user_prefix = v;
        else if (a == "--password") o.password = v;
        else if (a == "--late-ms") o.late_ms = std::atof(v.c_str());
        else if (a == "--setup-timeout") o.setup_timeout = std::atof(v.c_str());
        else if (a == "--max-wall") o.max_wall = std::atof(v.c_str());
        else if (a == "--fault" && (v == "srtp" || v == "tone" || v == "stall")) o.fault = v;
        else if (a == "--trunk-codec" && (v == "pcmu" || v == "g722")) o.trunk_g722 = v == "g722";
        else die("unknown option " + a + " (see the header of gateway_server_load.cpp)");
    }
    if (argc % 2 == 0 || !ws || o.trunk_port <= 0 || o.trunk_port > 65535 || o.calls < 1 || o.calls > 2000 ||
        o.seconds <= 0 || o.seconds > 240 || o.warmup < 0)   // 240: within a permission's 300 s (RFC 8656 §9)
        die("bad arguments: --ws HOST:PORT --trunk-port P --calls 1..2000 [--seconds up to 240]");
    if (!loopback(o.ws)) die("--ws must be on loopback (127.0.0.0/8)");
    if (o.max_wall <= 0) o.max_wall = 2 * o.seconds + 10;
    return o;
}

// ---- the load --------------------------------------------------------------------------------

constexpr std::uint16_t kChannel = 0x4000;   // RFC 8656 §12: the first channel number

enum Kind : std::uint64_t { kWs = 1, kBrowser = 2, kTrunkRtp = 3, kTrunkSip = 4, kTimer = 5 };

class Load {
public:
    explicit Load(const Options& o) : o_(o), shared_(false, o.trunk_g722) {
        epoll_ = epoll_create1(EPOLL_CLOEXEC);
        trunk_sip_ = must_bind_udp(*Endpoint::parse("127.0.0.1:" + std::to_string(o.trunk_port)));
        watch(trunk_sip_, kTrunkSip, 0);
        calls_.resize(o.calls);
        for (std::size_t i = 0; i < calls_.size(); ++i) {
            auto& c = calls_[i];
            c.index = c.browser.index = c.trunk.index = i;
            char num[32];
            std::snprintf(num, sizeof num, "+1555%07zu", i);
            c.number = num;
            c.user = o.user_prefix + std::to_string(i);
            c.realm = o.realm;
            by_number_[c.number] = i;
        }
    }

    // Pumps events until `done` or `seconds` pass; false on a timeout.
    bool wait_for(const std::function<bool()>& done, double seconds) {
        const double until = now_ms() + seconds * 1000;
        while (!done()) {
            const double left = until - now_ms();
            if (left <= 0) return false;
            pump(static_cast<int>(std::min(left, 50.0)) + 1);
        }
        return true;
    }

    // REGISTER, INVITE through the gateway to our trunk, ICE, DTLS: empty, or what went wrong.
    std::string setup(Call& c) {
        if (!c.ws.start(o_.ws, o_.ws.to_string())) return "no WebSocket: cannot connect to " + o_.ws.to_string();
        watch(c.ws.fd, kWs, c.index);
        if (!wait_for([&] { return c.ws.open || c.ws.closed || !c.problem.empty(); }, o_.setup_timeout) || !c.ws.open)
            return "no WebSocket: " + c.problem;
        // RFC 3261 §10.2: REGISTER, 401, REGISTER with credentials, 200.
        c.call_id = hex(rng()) + "r";
        c.from_tag = hex(rng()).substr(0, 8);
        const std::string reg_uri = "sip:" + o_.realm, aor = "<sip:" + c.user + "@" + o_.realm + ">";
        c.ws.send_text(c.request("REGISTER", reg_uri, ++c.cseq, aor, "Expires: 600\r\n"));
        auto r = response(c, "REGISTER");
        if (!r || r->status() != 401) return "REGISTER: expected 401, got " + status_of(r);
        auto auth = sip::answer_challenge(*r, "REGISTER", reg_uri, c.user, o_.password, kRandom);
        if (!auth) return "REGISTER: no usable challenge";
        c.ws.send_text(c.request("REGISTER", reg_uri, ++c.cseq, aor, "Expires: 600\r\nAuthorization: " + auth->value + "\r\n"));
        r = response(c, "REGISTER");
        if (!r || r->status() != 200) return "REGISTER with credentials: expected 200, got " + status_of(r);
        // The browser's media socket: toward the gateway's media address, or its TURN server.
        c.browser_fd = must_bind_udp(*Endpoint::parse("127.0.0.1:0"));
        watch(c.browser_fd, kBrowser, c.index);
        if (o_.turn) {
            must_connect(c.browser_fd, *o_.turn);
            if (auto bad = allocate(c); !bad.empty()) return bad;
        }
        // RFC 3261 §22.3: INVITE, 407, ACK, INVITE with Proxy-Authorization.
        c.call_id = hex(rng()) + "i";
        c.from_tag = hex(rng()).substr(0, 8);
        c.cseq = 0;
        const std::string uri = "sip:" + c.number + "@" + o_.realm, to = "<" + uri + ">";
        const auto offer = c.browser.offer(shared_);
        c.ws.send_text(c.request("INVITE", uri, ++c.cseq, to, {}, offer));
        r = response(c, "INVITE");
        if (!r || r->status() != 407) return "INVITE: expected 407, got " + status_of(r);
        c.ws.send_text(c.request("ACK", uri, c.cseq, r->to_header(), {}, {}, c.invite_branch));  // §17.1.1.3
        auth = sip::answer_challenge(*r, "INVITE", uri, c.user, o_.password, kRandom);
        if (!auth) return "INVITE: no usable challenge";
        c.ws.send_text(c.request("INVITE", uri, ++c.cseq, to, "Proxy-Authorization: " + auth->value + "\r\n", offer));
        r = response(c, "INVITE", 10);
        if (!r || r->status() != 200) return "INVITE with credentials: expected 200, got " + status_of(r);
        if (!c.trunk_acked && c.trunk_answer_bytes.empty()) return "the gateway answered without reaching the trunk";
        c.to_header = r->to_header();
        const auto contacts = r->contacts();
        c.target = contacts.empty() ? uri : contacts.front().uri;
        c.ws.send_text(c.request("ACK", c.target, c.cseq, c.to_header));
        const auto answer = r->body();
        const auto media = sdp_media(answer);
        if (!media || !loopback(*media)) return "the answer has no loopback media address:\n" + answer;
        if (auto bad = c.browser.take_answer(shared_, answer); !bad.empty()) return bad;
        c.gateway_browser_media = *media;
        if (!o_.turn) must_connect(c.browser_fd, *media);
        else if (auto bad = channel_bind(c); !bad.empty()) return bad;
        // ICE (RFC 8445 §7.2.2, the gateway is ICE-lite): our nomination from the browser socket
        // (or from the relayed address).
        const auto nomination = c.browser.nomination();
        double sent_at = 0;
        const auto nominated = [&] {   // RFC 8445 §14.3: checks are retransmitted, here every 500 ms
            if (c.browser.consent_answers > 0) return true;
            if (now_ms() - sent_at >= 500) send_media(c, nomination), sent_at = now_ms();
            return false;
        };
        if (!wait_for(nominated, o_.setup_timeout)) return "no answer to the ICE check";
        // DTLS client (RFC 5763 §5: the answerer is passive, so we are the client).
        c.browser.dtls->start(Clock::now(), c.browser.flight);
        flush_dtls(c);
        const auto handshake_done = [&] {
            // RFC 6347 §4.2.4: a flight lost to load is sent again when its timer runs out.
            if (const auto at = c.browser.dtls->next_timeout(); at && Clock::now() >= *at) {
                c.browser.dtls->on_timer(Clock::now(), c.browser.flight);
                flush_dtls(c);
            }
            return c.browser.connected() || c.browser.dtls->state() == DtlsSrtpEndpoint::State::Failed;
        };
        if (!wait_for(handshake_done, o_.setup_timeout))
            return "DTLS not connected in time";
        if (!c.browser.connected()) return "DTLS failed: " + c.browser.dtls->failure();
        if (!c.trunk_acked) wait_for([&] { return c.trunk_acked; }, 1);   // the gateway's ACK (§13.2.2.4)
        c.browser.consent_answers = c.browser.unexpected = 0;
        c.media_started = true;
        return {};
    }

    void tick(long n, bool measuring) {
        shared_.encode_tick();
        for (auto& c : calls_) {
            if (!c.media_started) continue;
            if ((n + static_cast<long>(c.index) * 7) % kConsentTicks == 0) {   // consent checks, spread over calls
                send_media(c, c.browser.consent_check);
                c.consent_sent += measuring;
            }
            c.browser.make_packet(shared_);
            c.browser_sent += send_media(c, {c.browser.to_gateway.data(), c.browser.to_gateway_size});
            // The stall fault: every 2 s the trunks hold two frames and send them with the third.
            const bool hold = o_.fault == "stall" && (n % 100 == 50 || n % 100 == 51);
            for (int k = 0; k < (o_.fault == "stall" && n % 100 == 52 ? 3 : hold ? 0 : 1); ++k) {
                c.trunk.make_packet(shared_, o_.fault == "tone");
                c.trunk_sent += ::send(c.trunk_fd, c.trunk.to_gateway.data(), c.trunk.to_gateway.size(), 0) > 0;
            }
        }
    }

    void start_measuring() {
        measuring_ = true;
        for (auto& c : calls_) {
            c.at_browser = {};
            c.at_trunk = {};
            c.browser.consent_answers = c.browser.unexpected = c.browser.auth_failures = c.browser.sequence_gaps = 0;
            c.trunk.unexpected = c.trunk.sequence_gaps = 0;
            c.consent_sent = c.browser_sent = c.trunk_sent = 0;
        }
    }
    void stop_measuring() { measuring_ = false; }

    // RFC 3261 §15.1.1: BYE from the browser; the gateway answers it and sends BYE to the trunk.
    // Every call at once, then one bounded wait for all the answers; the calls that ended well.
    long hang_up_all() {
        std::vector<Call*> live;
        for (auto& c : calls_) {
            if (!c.media_started || c.ws.closed) continue;
            c.ws.send_text(c.request("BYE", c.target, ++c.cseq, c.to_header));
            live.push_back(&c);
        }
        std::vector<std::optional<sip::Message>> answers(live.size());
        wait_for(
            [&] {
                bool all = true;
                for (std::size_t i = 0; i < live.size(); ++i) {
                    if (!answers[i]) answers[i] = take_final(*live[i], "BYE");
                    all = all && (answers[i] || live[i]->ws.closed) && live[i]->trunk_bye;
                }
                return all;
            },
            5 + 0.02 * static_cast<double>(live.size()));
        long ended = 0;
        for (std::size_t i = 0; i < live.size(); ++i) {
            live[i]->bye_ok = answers[i] && answers[i]->status() == 200;
            ended += live[i]->bye_ok && live[i]->trunk_bye;
        }
        return ended;
    }

    void close_all() {
        for (auto& c : calls_)
            for (int fd : {c.ws.fd, c.browser_fd, c.trunk_fd})
                if (fd >= 0) ::close(fd);
        ::close(trunk_sip_);
        ::close(epoll_);
    }

    std::vector<Call>& calls() { return calls_; }
    int epoll() const { return epoll_; }
    void watch(int fd, Kind kind, std::size_t index) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = kind << 32 | index;
        epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    }
    // One round of events; timer expirations are returned (0 if none).
    std::uint64_t pump(int timeout_ms) {
        epoll_event evs[256];
        const int n = epoll_wait(epoll_, evs, 256, timeout_ms);
        std::uint64_t ticks = 0;
        for (int i = 0; i < n; ++i) {
            const auto kind = evs[i].data.u64 >> 32;
            const auto index = static_cast<std::size_t>(evs[i].data.u64 & 0xffffffffu);
            if (kind == kTimer) {
                std::uint64_t expirations = 0;
                if (::read(timer_fd, &expirations, sizeof expirations) == sizeof expirations) ticks += expirations;
            } else if (kind == kTrunkSip) {
                on_trunk_sip();
            } else if (kind == kWs) {
                auto& c = calls_[index];
                if (auto bad = c.ws.on_readable(); !bad.empty()) c.problem = bad;
                if (c.ws.closed) epoll_ctl(epoll_, EPOLL_CTL_DEL, c.ws.fd, nullptr);
            } else if (kind == kBrowser) {
                on_browser(calls_[index]);
            } else if (kind == kTrunkRtp) {
                on_trunk_rtp(calls_[index]);
            }
        }
        return ticks;
    }
    int timer_fd = -1;

private:
    static std::string status_of(const std::optional<sip::Message>& r) {
        return r ? std::to_string(r->status()) + " " + r->reason() : "nothing";
    }

    // The final response to our `method` on the call's current Call-ID; in-dialog requests from
    // the server are answered 200 meanwhile.
    std::optional<sip::Message> response(Call& c, const std::string& method, double seconds = 5) {
        std::optional<sip::Message> found;
        wait_for(
            [&] {
                found = take_final(c, method);
                return found.has_value() || c.ws.closed;
            },
            seconds);
        return found;
    }
    // What the call's WebSocket brought so far, up to that final response.
    std::optional<sip::Message> take_final(Call& c, const std::string& method) {
        while (!c.ws.inbox.empty()) {
            auto m = sip::Message::parse(c.ws.inbox.front());
            c.ws.inbox.pop_front();
            if (!m) continue;
            if (m->is_request()) {
                if (m->method() != "ACK") c.ws.send_text(sip::Message::response(*m, 200).serialize());
                continue;
            }
            if (m->call_id() == c.call_id && m->cseq_method() == method && m->status() >= 200) return std::move(*m);
        }
        return std::nullopt;
    }

    // A datagram of the browser toward the gateway: direct, or as ChannelData through its allocation.
    bool send_media(Call& c, std::span<const std::uint8_t> bytes) {
        if (!o_.turn) return ::send(c.browser_fd, bytes.data(), bytes.size(), 0) > 0;
        auto& tx = c.channel_tx;
        tx[0] = kChannel >> 8, tx[1] = kChannel & 255;
        tx[2] = static_cast<std::uint8_t>(bytes.size() >> 8), tx[3] = static_cast<std::uint8_t>(bytes.size() & 255);
        std::memcpy(tx.data() + 4, bytes.data(), std::min(bytes.size(), tx.size() - 4));
        return ::send(c.browser_fd, tx.data(), 4 + bytes.size(), 0) > 0;
    }

    // One TURN transaction: the request `build` writes (with long-term credentials once the
    // server's realm and nonce are known), and its response.
    std::optional<stun::Message> turn_transaction(Call& c, std::uint16_t method,
                                                  const std::function<void(stun::MessageBuilder&)>& attributes,
                                                  std::vector<std::uint8_t>& reply) {
        std::array<std::uint8_t, 512> buf{};
        stun::TransactionId tid{};
        for (auto& b : tid) b = static_cast<std::uint8_t>(rng());
        stun::MessageBuilder b(buf, method, stun::Class::Request, tid);
        attributes(b);
        if (!c.turn_nonce.empty()) {   // RFC 8489 §9.2.4
            b.add_string(stun::attr::Username, c.user);
            b.add_string(stun::attr::Realm, o_.realm);
            b.add_string(stun::attr::Nonce, c.turn_nonce);
            const auto key = stun::long_term_key_md5(c.user, o_.realm, o_.password);
            b.add_message_integrity(key);
        }
        b.add_fingerprint();
        if (!b.ok()) die("cannot build a TURN request");
        c.turn_reply.clear();
        ::send(c.browser_fd, buf.data(), b.size(), 0);
        if (!wait_for([&] { return !c.turn_reply.empty(); }, o_.setup_timeout)) return std::nullopt;
        reply = std::move(c.turn_reply);
        auto m = stun::Message::parse(reply);
        if (!m || m->transaction_id() != tid) return std::nullopt;
        return std::move(*m);
    }

    // RFC 8656 §7.1: Allocate, 401 with realm and nonce, Allocate with credentials.
    std::string allocate(Call& c) {
        const auto udp = [](stun::MessageBuilder& b) { b.add_u32(stun::attr::RequestedTransport, 17u << 24); };
        std::vector<std::uint8_t> reply;
        auto m = turn_transaction(c, stun::method::Allocate, udp, reply);
        if (!m || m->cls() != stun::Class::Error || m->get_error_code() != 401 || !m->get_string(stun::attr::Nonce))
            return "TURN Allocate: no 401 challenge";
        c.turn_nonce = std::string(*m->get_string(stun::attr::Nonce));
        std::vector<std::uint8_t> reply2;
        m = turn_transaction(c, stun::method::Allocate, udp, reply2);
        if (!m || m->cls() != stun::Class::Success) return "TURN Allocate with credentials refused";
        c.relayed = m->get_xor_address(stun::attr::XorRelayedAddress);
        return c.relayed ? std::string() : "TURN Allocate: no XOR-RELAYED-ADDRESS";
    }

    // RFC 8656 §11: a channel to the gateway's media address (it also installs the permission).
    std::string channel_bind(Call& c) {
        std::vector<std::uint8_t> reply;
        const auto m = turn_transaction(
            c, stun::method::ChannelBind,
            [&](stun::MessageBuilder& b) {
                b.add_u32(stun::attr::ChannelNumber, static_cast<std::uint32_t>(kChannel) << 16);
                b.add_xor_address(stun::attr::XorPeerAddress, c.gateway_browser_media);
            },
            reply);
        if (!m || m->cls() != stun::Class::Success)
            return "TURN ChannelBind to " + c.gateway_browser_media.to_string() + " refused" +
                   (m && m->get_error_code() ? " (" + std::to_string(*m->get_error_code()) + ")" : "");
        return {};
    }

    void flush_dtls(Call& c) {
        for (const auto& d : c.browser.flight) send_media(c, d);
        c.browser.flight.clear();
    }

    void on_browser(Call& c) {
        std::array<std::uint8_t, 2048> buf{};
        for (int k = 0; k < 64; ++k) {
            const auto n = ::recv(c.browser_fd, buf.data(), buf.size(), 0);
            if (n <= 0) break;
            const double t = now_ms();
            std::span<const std::uint8_t> bytes{buf.data(), static_cast<std::size_t>(n)};
            if (o_.turn) {   // RFC 8656 §12: ChannelData from the relay, or a response of the TURN server
                if (stun::looks_like_stun(bytes)) {
                    c.turn_reply.assign(bytes.begin(), bytes.end());
                    continue;
                }
                const auto length = bytes.size() >= 4 ? static_cast<std::size_t>(bytes[2] << 8 | bytes[3]) : 0;
                if (bytes.size() < 4 || (bytes[0] << 8 | bytes[1]) != kChannel || length > bytes.size() - 4) {
                    ++c.browser.unexpected;
                    continue;
                }
                bytes = bytes.subspan(4, length);
            }
            const auto seq = c.browser.on_datagram(Clock::now(), bytes, shared_.browser_pt(), o_.fault == "srtp" && measuring_);
            if (seq) c.at_browser.on_packet(t, *seq, measuring_);
            if (!c.browser.flight.empty()) flush_dtls(c);
        }
    }

    void on_trunk_rtp(Call& c) {
        std::array<std::uint8_t, 2048> buf{};
        sockaddr_storage from{};
        for (int k = 0; k < 64; ++k) {
            socklen_t len = sizeof from;
            const auto n = ::recvfrom(c.trunk_fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (n <= 0) break;
            const double t = now_ms();
            const auto src = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&from));
            if (!src || !(*src == c.gateway_trunk_media)) {
                ++c.trunk.unexpected;
                continue;
            }
            if (const auto seq = c.trunk.receive(shared_, {buf.data(), static_cast<std::size_t>(n)}))
                c.at_trunk.on_packet(t, *seq, measuring_);
        }
    }

    // The trunk: a UAS on UDP for the gateway's INVITE, ACK and BYE (RFC 3261 §17.2).
    void on_trunk_sip() {
        std::array<char, 8192> buf{};
        sockaddr_storage from{};
        for (int k = 0; k < 64; ++k) {
            socklen_t len = sizeof from;
            const auto n = ::recvfrom(trunk_sip_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (n <= 0) break;
            auto m = sip::Message::parse({buf.data(), static_cast<std::size_t>(n)});
            if (!m || !m->is_request()) continue;
            const auto reply = [&](const std::string& bytes) {
                ::sendto(trunk_sip_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
            };
            const auto method = m->method();
            Call* c = nullptr;
            if (method == "INVITE") {
                const auto ruri = m->request_uri();
                const auto colon = ruri.find(':'), at = ruri.find('@');
                const auto it = colon != std::string::npos && at != std::string::npos
                                    ? by_number_.find(ruri.substr(colon + 1, at - colon - 1)) : by_number_.end();
                if (it == by_number_.end()) {
                    reply(sip::Message::response(*m, 404).serialize());
                    continue;
                }
                c = &calls_[it->second];
                if (c->trunk_call_id == m->call_id() && !c->trunk_answer_bytes.empty()) {
                    reply(c->trunk_answer_bytes);   // a retransmission: the same answer
                    continue;
                }
                const auto offer = m->body();
                const auto media = sdp_media(offer);
                if (!media || !loopback(*media)) {
                    reply(sip::Message::response(*m, 488).serialize());
                    continue;
                }
                c->trunk_call_id = m->call_id();
                c->gateway_trunk_media = *media;
                if (c->trunk_fd < 0) {
                    c->trunk_fd = must_bind_udp(*Endpoint::parse("127.0.0.1:0"));
                    c->trunk_rtp = local_endpoint(c->trunk_fd);
                    watch(c->trunk_fd, kTrunkRtp, c->index);
                }
                must_connect(c->trunk_fd, *media);   // RTP to the offer's address, and only from it
                int te = 101;
                if (const auto p = offer.find(" telephone-event/8000"); p != std::string::npos) {
                    const auto line = offer.rfind("a=rtpmap:", p);
                    if (line != std::string::npos) te = std::atoi(offer.c_str() + line + 9);
                }
                auto ok = sip::Message::response(*m, 200, {}, hex(rng()).substr(0, 10));
                ok.add_contact("<sip:trunk@127.0.0.1:" + std::to_string(o_.trunk_port) + ">");
                ok.set_body("application/sdp", trunk_answer(c->trunk_rtp, te, o_.trunk_g722));
                c->trunk_answer_bytes = ok.serialize();
                reply(c->trunk_answer_bytes);
                continue;
            }
            for (auto& k2 : calls_)
                if (k2.trunk_call_id == m->call_id()) c = &k2;
            if (method == "ACK") {
                if (c) c->trunk_acked = true;
                continue;
            }
            if (method == "BYE" && c) c->trunk_bye = true;
            reply(sip::Message::response(*m, c || method == "OPTIONS" ? 200 : 481).serialize());
        }
    }

    const Options& o_;
    PeerShared shared_;
    int epoll_ = -1, trunk_sip_ = -1;
    bool measuring_ = false;
    std::vector<Call> calls_;
    std::map<std::string, std::size_t> by_number_;
};

double process_cpu_ms() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return (static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3);
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse_options(argc, argv);
    Load load(o);
    const double wall_start = now_ms();
    const double hard_stop = wall_start + o.max_wall * 1000 + o.calls * o.setup_timeout * 1000;

    // Set-up, one call after the other.
    std::size_t connected = 0;
    std::string first_setup_error;
    Series setup_ms;
    for (auto& c : load.calls()) {
        const double t0 = now_ms();
        const auto bad = load.setup(c);
        if (!bad.empty()) {
            if (first_setup_error.empty()) first_setup_error = "call " + std::to_string(c.index) + ": " + bad;
            break;   // the server refused or is stuck: measuring fewer calls would mislead
        }
        setup_ms.v.push_back(now_ms() - t0);
        ++connected;
        if (now_ms() > hard_stop) break;
    }
    std::printf("setup %zu/%zu calls in %.0f ms%s%s\n", connected, o.calls, now_ms() - wall_start,
                first_setup_error.empty() ? "" : ": ", first_setup_error.c_str());
    std::fflush(stdout);

    // Ticks on an absolute 20 ms timer.
    long measured = 0, behind = 0, ticks = 0;
    bool cut_short = false;
    double gen_cpu_ms = 0, measured_wall_ms = 0;
    if (connected == o.calls) {
        load.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        itimerspec its{};
        its.it_interval.tv_nsec = 20'000'000;
        its.it_value.tv_nsec = 20'000'000;
        timerfd_settime(load.timer_fd, 0, &its, nullptr);
        load.watch(load.timer_fd, kTimer, 0);
        const long total = o.warmup + std::lround(o.seconds * 50);
        const double tick_limit = now_ms() + o.max_wall * 1000;
        double m0 = 0, c0 = 0;
        while (ticks < total) {
            if (now_ms() > tick_limit) {
                cut_short = true;
                break;
            }
            const auto due = load.pump(25);
            if (due > 1) behind += static_cast<long>(due - 1);   // the generator itself fell behind
            for (std::uint64_t k = 0; k < due && ticks < total; ++k) {
                if (ticks == o.warmup) {
                    load.start_measuring();
                    std::printf("measure-start\n");
                    std::fflush(stdout);
                    m0 = now_ms();
                    c0 = process_cpu_ms();
                }
                load.tick(ticks, ticks >= o.warmup);
                ++ticks;
            }
        }
        // The last tick's packets come back within a few ms.
        load.wait_for([] { return false; }, 0.06);
        measured = std::max(0L, ticks - o.warmup);
        measured_wall_ms = now_ms() - m0;
        gen_cpu_ms = process_cpu_ms() - c0;
        load.stop_measuring();
        std::printf("measure-end\n");
        std::fflush(stdout);
        ::close(load.timer_fd);
    }

    // Checks of every call, and the figures of each direction.
    long bad = 0, auth_failures = 0, unexpected = 0, consent_missing = 0, hung_up = 0;
    double worst_browser = 0, worst_trunk = 0;
    Flow to_browser, to_trunk;
    std::string first_error = first_setup_error;
    for (auto& c : load.calls()) {
        if (!c.media_started) continue;
        c.at_browser.finish(o.late_ms);
        c.at_trunk.finish(o.late_ms);
        const double at_browser = c.browser.heard_hz(false), at_trunk = c.trunk.heard_hz();
        const double dev_b = tone_error(at_browser, trunk_tone(c.index)), dev_t = tone_error(at_trunk, browser_tone(c.index));
        worst_browser = std::max(worst_browser, dev_b);
        worst_trunk = std::max(worst_trunk, dev_t);
        // The gateway forwards toward the browser what the trunk sent, and sends the trunk one
        // frame per tick of its own 20 ms timer: that is what each end should have heard.
        to_browser.add(static_cast<long>(c.trunk_sent), c.at_browser, c.browser.sequence_gaps);
        to_trunk.add(measured, c.at_trunk, c.trunk.sequence_gaps);
        const long call_unexpected = static_cast<long>(c.browser.unexpected + c.trunk.unexpected);
        auth_failures += static_cast<long>(c.browser.auth_failures);
        unexpected += call_unexpected;
        consent_missing += static_cast<long>(c.consent_sent) - static_cast<long>(c.browser.consent_answers);
        // Unanswered consent checks are a figure, not a failure: an answer lost to load is what
        // RFC 7675 §5.1 allows 30 s for.
        const bool ok = c.browser.auth_failures == 0 && call_unexpected == 0 && c.at_browser.packets > 0 &&
                        c.at_trunk.packets > 0 && dev_b <= kTolerance && dev_t <= kTolerance;
        if (!ok && bad++ == 0 && first_error.empty()) {
            char b[500];
            std::snprintf(b, sizeof b,
                          "call %zu: browser heard %.0f Hz (trunk sent %.0f), trunk heard %.0f Hz (browser sent %.0f), "
                          "packets at browser %llu of %llu and at trunk %llu of %ld, auth failures %llu, "
                          "unexpected %ld, consent %llu/%llu",
                          c.index, at_browser, trunk_tone(c.index), at_trunk, browser_tone(c.index),
                          static_cast<unsigned long long>(c.at_browser.packets), static_cast<unsigned long long>(c.trunk_sent),
                          static_cast<unsigned long long>(c.at_trunk.packets), measured,
                          static_cast<unsigned long long>(c.browser.auth_failures), call_unexpected,
                          static_cast<unsigned long long>(c.browser.consent_answers),
                          static_cast<unsigned long long>(c.consent_sent));
            first_error = b;
        }
    }
    hung_up = load.hang_up_all();
    load.close_all();

    const bool ok = connected == o.calls && bad == 0 && hung_up == static_cast<long>(o.calls) && !cut_short;
    if (first_error.empty() && hung_up != static_cast<long>(o.calls))
        first_error = std::to_string(o.calls - static_cast<std::size_t>(hung_up)) + " calls did not end with BYE 200 at both legs";
    const double seconds = static_cast<double>(measured) * 0.02;
    std::printf("{\"calls\": %zu, \"connected\": %zu, \"fault\": \"%s\", \"warmup_ticks\": %ld, \"ticks\": %ld, "
                "\"measured_wall_ms\": %.1f, \"cut_short\": %s, \"generator_behind_ticks\": %ld, "
                "\"generator_cpu_ms\": %.1f, \"setup_ms_per_call\": %s, \"late_ms\": %.1f,\n"
                " \"to_browser\": %s,\n \"to_trunk\": %s,\n"
                " \"check\": {\"calls_bad\": %ld, \"srtp_auth_failures\": %ld, \"unexpected_packets\": %ld, "
                "\"unanswered_consent_checks\": %ld, \"worst_browser_tone_error_pct\": %.2f, "
                "\"worst_trunk_tone_error_pct\": %.2f, \"hung_up\": %ld, \"first_error\": %s}}\n",
                o.calls, connected, o.fault.c_str(), o.warmup, measured, measured_wall_ms, cut_short ? "true" : "false",
                behind, gen_cpu_ms, setup_ms.json().c_str(), o.late_ms, to_browser.json(seconds, connected).c_str(),
                to_trunk.json(seconds, connected).c_str(), bad, auth_failures, unexpected, consent_missing,
                worst_browser * 100, worst_trunk * 100, hung_up, json_string(first_error).c_str());
    if (connected != o.calls) return 2;
    return ok ? 0 : 1;
}
