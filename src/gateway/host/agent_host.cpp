// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/host/agent_host.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "turnbridge/base/base64.hpp"
#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/host/sip_tls.hpp"
#include "turnbridge/gateway/random.hpp"
#include "turnbridge/gateway/sdp.hpp"
#include "turnbridge/io/loop_clock.hpp"
#include "turnbridge/io/socket_util.hpp"
#include "turnbridge/io/stream_connection.hpp"
#include "turnbridge/io/udp_send.hpp"
#include "turnbridge/sip/websocket_frame.hpp"
#include "turnbridge/sip/websocket_handshake.hpp"

namespace turnbridge::gateway::host {
namespace {

constexpr std::uint64_t kTickMs = 20;

template <class T>
T random_of() {
    return gateway::random_value<T>(gateway::random_bytes);
}

std::array<std::uint8_t, 16> random16() {
    std::array<std::uint8_t, 16> r{};
    gateway::random_bytes(r);
    return r;
}

// RFC 6455 §5.3: a fresh, unpredictable key per frame.
sip::WsMaskKey mask_key() {
    sip::WsMaskKey k{};
    gateway::random_bytes(k);
    return k;
}

io::GuardLimits agent_guard(std::uint32_t connect_timeout_s) {
    io::GuardLimits g;
    g.handshake_ms = std::uint64_t{connect_timeout_s} * 1000;   // TCP and TLS; the upgrade: our deadline
    g.message_ms = 10'000;
    g.write_soft = AgentHost::kMaxUnsent;
    return g;
}

}  // namespace

// One agent call: the WebSocket toward the agent (this is its framer and event sink) and the
// RTP socket toward the trunk.
struct AgentHost::Session final : io::Framer, io::StreamEvents {
    Session(AgentHost& h, const gateway::AgentOpen& o)
        : host(h), key(o.key), url(o.url), authorization(o.authorization), record(o.record), realm(o.realm),
          from(o.from), to(o.to), user(o.user), parameters(o.parameters), connect_timeout_s(o.connect_timeout_s),
          playout_frames(o.playout_frames), format(o.format), ws_key(base64_encode(random16())),
          decoder(kMaxMessage, 64, [] { return mask_key(); }),
          conn(h.loop_, io::StreamKind::WebSocket, agent_guard(o.connect_timeout_s), nullptr, *this, *this) {}

    AgentHost& host;
    std::string key;
    config::AgentUrl url;
    std::string authorization;
    bool record;   // false: a browser's call, whose record the router writes
    std::string realm, from, to, user;   // for `start`'s customParameters
    std::vector<std::pair<std::string, std::string>> parameters;
    std::uint32_t connect_timeout_s, playout_frames;
    config::AgentMediaFormat format;   // mu-law or L16 toward the agent (agent_audio.hpp)
    gateway::TrunkLocal local;     // our RTP socket, for the SDP
    std::string ws_key;
    std::string http;             // the server's handshake response so far
    sip::WebSocketDecoder decoder;
    io::StreamConnection conn;
    uv_udp_t udp{};
    bool udp_open = false, udp_closing = false, conn_gone = false, upgraded = false, ended = false;
    std::uint64_t deadline_ms = 0;
    std::optional<gateway::AgentMedia> media;
    std::string answer_sdp;
    std::vector<std::string> to_agent;
    // Handed over (agent_relay.cpp): the agent's stream is stopped and the RTP socket relays
    // between the caller (media->media().remote) and relay_peer, once known.
    bool relaying = false;
    std::optional<Endpoint> relay_peer;
    void relay(const Endpoint& from, std::span<const std::uint8_t> datagram);

    void send_text(const std::string& text) {
        if (conn.closing() || conn.draining() || !upgraded) return;
        if (conn.unsent() > kMaxUnsent) {   // a slow agent: its messages go, others' calls do not wait
            ++host.counts_.messages_dropped;
            return;
        }
        conn.send(sip::websocket_client_frame(sip::WsOpcode::Text, text, mask_key()));
    }
    void flush() {
        for (const auto& t : to_agent) send_text(t);
        to_agent.clear();
    }
    void fail(const std::string& why) {
        if (ended) return;
        ++host.counts_.failed;
        host.failed_(key, why);   // the router ends the call: close_agent() follows at once
    }

    void on_ready(io::StreamConnection&) override {
        conn.send(sip::websocket_client_request(url.host.find(':') != std::string::npos
                                                    ? fmt::format("[{}]:{}", url.host, url.port)
                                                    : fmt::format("{}:{}", url.host, url.port),
                                                url.target, ws_key,
                                                authorization.empty() ? std::string()
                                                                      : "Authorization: " + authorization + "\r\n"));
    }
    void on_closed(io::StreamConnection&) override {
        conn_gone = true;
        if (!ended && !relaying) fail(upgraded ? "the agent's connection closed" : "cannot connect to the agent");
        host.finish(*this);
    }
    std::size_t buffered() const override { return upgraded ? decoder.buffered() : 0; }
    bool on_bytes(std::string_view in) override {
        if (!upgraded) {
            http.append(in);
            const auto h = sip::websocket_client_response(http, ws_key);
            if (h.kind == sip::ClientHandshake::Kind::NeedMore) return true;
            if (h.kind == sip::ClientHandshake::Kind::Fail) {
                fail("the agent refused the WebSocket: " + h.reason);
                return true;
            }
            upgraded = true;
            conn.guard().established(uv_now(host.loop_));
            const std::string rest = http.substr(h.consumed);
            http.clear();
            media->open(io::read_clock().mono, to_agent);
            flush();
            host.answered_(key, answer_sdp);
            if (!rest.empty() && !ended) on_frames(rest);
            return true;
        }
        on_frames(in);
        return true;
    }
    void on_frames(std::string_view in) {
        std::vector<sip::WsEvent> events;
        decoder.feed(in, events);
        if (!events.empty()) conn.guard().on_message(uv_now(host.loop_));
        for (auto& e : events) {
            if (ended || relaying) return;   // after a hand-over the agent's words are not heard
            if (auto* m = std::get_if<sip::WsMessage>(&e)) {
                const auto before = media->stream().counters();
                if (auto t = media->on_agent(m->payload, to_agent)) {
                    log::info("agent: call {}: the agent asks to transfer the caller to {}", key, t->to);
                    if (host.transfer_) host.transfer_(key, t->to);   // may hand over: relaying
                    if (relaying || ended) return;
                }
                const auto& after = media->stream().counters();
                host.counts_.frames_dropped += after.frames_dropped - before.frames_dropped;
                host.counts_.bad_messages += after.bad_messages - before.bad_messages;
                flush();
            } else if (auto* r = std::get_if<sip::WsReply>(&e)) {
                conn.send(r->bytes);
            } else if (auto* c = std::get_if<sip::WsClosed>(&e)) {
                fail(fmt::format("the agent closed the stream ({} {})", c->code, c->reason));
            }
        }
    }
};

AgentHost::AgentHost(uv_loop_t* loop, IpAddress rtp_ip, Answered answered, Failed failed, Ended ended)
    : loop_(loop), rtp_ip_(rtp_ip), answered_(std::move(answered)), failed_(std::move(failed)), ended_(std::move(ended)) {
    uv_timer_init(loop_, &tick_);
    tick_.data = this;
}

AgentHost::~AgentHost() = default;

SSL_CTX* AgentHost::client_tls() {
    if (!tls_) {
        auto ctx = load_trunk_tls_context({}, true, "agent");
        if (auto* p = std::get_if<io::TlsContextPtr>(&ctx)) tls_ = *p;
        else log::warn("agent: no TLS client context: {}", std::get<io::TlsError>(ctx).message);
    }
    return tls_.get();
}

// The call's session and its RTP socket toward the trunk (one per call on the media address,
// any port); `local` is filled in for the SDP. nullptr: no socket.
AgentHost::Session* AgentHost::open_session(const gateway::AgentOpen& o, gateway::TrunkLocal& local) {
    if (closed_ || sessions_.contains(o.key)) return nullptr;
    auto s = std::make_unique<Session>(*this, o);
    const int fd = io::open_bound_socket(io::SocketKind::Udp, Endpoint{rtp_ip_, 0}, io::SocketOptions{});
    if (fd < 0) return nullptr;
    uv_udp_init(loop_, &s->udp);
    s->udp.data = s.get();
    if (uv_udp_open(&s->udp, fd) != 0) {
        ::close(fd);
        uv_close(reinterpret_cast<uv_handle_t*>(&s->udp), nullptr);
        return nullptr;
    }
    s->udp_open = true;
    sockaddr_storage ss{};
    int len = sizeof ss;
    uv_udp_getsockname(&s->udp, reinterpret_cast<sockaddr*>(&ss), &len);
    local.address = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).value_or(Endpoint{rtp_ip_, 0});
    local.preference = gateway::agent_trunk_codecs(o.format, o.g722);   // mu-law: PCMU first, passed through
    local.session_id = random_of<std::uint32_t>();
    s->local = local;
    auto* raw = s.get();
    sessions_.emplace(o.key, std::move(s));
    return raw;
}

bool AgentHost::open_agent(const gateway::AgentOpen& o) {
    const auto offer = gateway::parse_sdp(o.offer_sdp);
    if (!offer) return false;
    gateway::TrunkLocal local;
    Session* raw = open_session(o, local);
    if (raw == nullptr) return false;
    auto accepted = gateway::answer_trunk_offer(*offer, local);
    if (!accepted) {   // no codec of agent_trunk_codecs() in the offer
        raw->ended = true;
        raw->conn_gone = true;
        close_udp(*raw);
        return false;
    }
    raw->answer_sdp = accepted->sdp;
    start_session(*raw, accepted->media);
    return true;
}

std::optional<std::string> AgentHost::offer_agent(const gateway::AgentOpen& o) {
    gateway::TrunkLocal local;
    if (open_session(o, local) == nullptr) return std::nullopt;
    return gateway::build_trunk_offer(local);
}

bool AgentHost::connect_agent(const std::string& key, const std::string& answer_sdp) {
    auto it = sessions_.find(key);
    if (it == sessions_.end() || it->second->ended || it->second->media) return false;
    Session& s = *it->second;
    const auto answer = gateway::parse_sdp(answer_sdp);
    if (!answer) return false;
    auto accepted = gateway::accept_trunk_answer(*answer, s.local);
    if (!accepted) return false;
    start_session(s, *accepted);
    return true;
}

// The media is agreed: RTP from the trunk is read, and the agent's WebSocket is connected.
void AgentHost::start_session(Session& s, const gateway::TrunkMedia& media) {
    gateway::AgentStart start{gateway::agent_sid("AC", random16()), gateway::agent_sid("CA", random16()),
                              gateway::agent_sid("MZ", random16()),
                              {{"from", s.from}, {"to", s.to}, {"realm", s.realm}}};
    if (!s.user.empty()) start.parameters.emplace_back("user", s.user);
    start.format = s.format;
    for (const auto& p : s.parameters) start.parameters.push_back(p);
    s.media.emplace(gateway::AgentStream(std::move(start), gateway::AgentLimits{s.playout_frames, 64}), media,
                    random_of<std::uint32_t>(), random_of<std::uint16_t>(), random_of<std::uint32_t>());
    s.deadline_ms = uv_now(loop_) + std::uint64_t{s.connect_timeout_s} * 1000;
    uv_udp_recv_start(
        &s.udp,
        [](uv_handle_t*, std::size_t, uv_buf_t* buf) {
            static thread_local char rx[2048];
            *buf = uv_buf_init(rx, sizeof rx);
        },
        [](uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned flags) {
            auto* s = static_cast<Session*>(h->data);
            if (addr == nullptr || nread <= 0 || (flags & UV_UDP_PARTIAL) != 0 || s->ended || !s->media) return;
            const auto from = Endpoint::from_sockaddr(addr);
            if (from && s->relaying)
                return s->relay(*from, {reinterpret_cast<const std::uint8_t*>(buf->base), static_cast<std::size_t>(nread)});
            if (!from || from->ip != s->media->media().remote.ip) return;   // the trunk's media address only
            s->media->on_rtp(io::read_clock().mono, {reinterpret_cast<const std::uint8_t*>(buf->base), static_cast<std::size_t>(nread)},
                             s->to_agent);
            s->flush();
        });
    ++counts_.calls;
    connect(s);
    arm();
}

// The agent's address: an IP literal or localhost at once, a host name through DNS (A/AAAA,
// server.dns_servers); the connect deadline (agent_connect_timeout) covers the lookup too.
void AgentHost::connect(Session& s) {
    auto ip = IpAddress::parse(s.url.host);
    if (!ip && (s.url.host == "localhost" || s.url.host == "LOCALHOST")) ip = IpAddress::parse("127.0.0.1");
    if (ip) return connect_to(s, Endpoint{*ip, s.url.port});
    if (!dns_) {
        std::string why;
        dns_ = io::DnsResolver::create(loop_, dns_servers_, why);
        if (!dns_) {   // the deadline ends the call (failing here would re-enter the router)
            log::warn("agent: call {}: cannot resolve {}: {}", s.key, s.url.host, why);
            return;
        }
    }
    Session* raw = &s;
    dns_->addresses(s.url.host, [this, raw, key = s.key](std::vector<IpAddress> found, const std::string& error) {
        auto it = sessions_.find(key);
        if (it == sessions_.end() || it->second.get() != raw || raw->ended) return;   // gone meanwhile
        if (found.empty())
            return raw->fail(fmt::format("cannot resolve {}: {}", raw->url.host, error.empty() ? "no address" : error));
        // IPv4 first when there is one: the agent's listener is most often there.
        auto pick = std::find_if(found.begin(), found.end(), [](const IpAddress& a) { return a.family == Family::V4; });
        connect_to(*raw, Endpoint{pick != found.end() ? *pick : found.front(), raw->url.port});
    });
}

void AgentHost::connect_to(Session& s, const Endpoint& to) {
    const auto& url = s.url;
    io::TlsClient tls;
    if (url.secure) {
        tls.ctx = client_tls();
        tls.server_name = url.host;
    }
    s.conn.set_name("agent " + url.text);
    if ((url.secure && tls.ctx == nullptr) || !s.conn.connect(to, url.secure ? &tls : nullptr)) {
        // on_closed() follows from the loop and reports the failure then.
        log::warn("agent: call {}: cannot start connecting to {}", s.key, url.text);
    }
}

void AgentHost::close_agent(const std::string& key, const gateway::CallSummary& summary) {
    auto it = sessions_.find(key);
    if (it == sessions_.end()) return;
    Session& s = *it->second;
    if (s.ended) return;
    s.ended = true;
    if (s.relaying) {   // the agent had its `stop` at the hand-over
        if (!s.conn_gone && !s.conn.closing() && !s.conn.draining()) s.conn.close();
    } else if (s.upgraded && s.media && !s.conn.closing()) {
        s.send_text(s.media->stop());
        s.conn.send(s.decoder.close(sip::ws_close::Normal));
        s.conn.close_after_write(2000);
    } else if (!s.conn_gone) {
        s.conn.close();
    }
    if (s.media) {
        const auto& c = s.media->stream().counters();
        log::info("agent: call {} ended ({}): {} frames played, {} dropped, {} bad messages", key, summary.end_reason,
                  c.frames_played, c.frames_dropped, c.bad_messages);
    }
    if (s.record) ended_(summary, s.media ? s.media->stats() : gateway::AgentLegStats{});
    close_udp(s);
    arm();
}

void AgentHost::close_udp(Session& s) {
    if (!s.udp_open || s.udp_closing) return;
    s.udp_closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&s.udp), [](uv_handle_t* h) {
        auto* s = static_cast<Session*>(h->data);
        s->udp_open = false;
        s->host.finish(*s);
    });
}

void AgentHost::finish(Session& s) {
    if (!s.ended || !s.conn_gone || s.udp_open) return;
    // Deferred: we may be inside the connection's own callback; erase after this turn.
    const std::string key = s.key;
    auto it = sessions_.find(key);
    if (it == sessions_.end() || it->second.get() != &s) return;
    auto* req = new uv_idle_t;
    struct Doomed {
        AgentHost* host;
        std::unique_ptr<Session> s;
    };
    req->data = new Doomed{this, std::move(it->second)};
    sessions_.erase(it);
    uv_idle_init(loop_, req);
    uv_idle_start(req, [](uv_idle_t* h) {
        delete static_cast<Doomed*>(h->data);
        uv_idle_stop(h);
        uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
    });
    arm();
}

void AgentHost::arm() {
    const bool want = !closed_ && !sessions_.empty();
    if (want == ticking_) return;
    ticking_ = want;
    if (want) {
        origin_ns_ = uv_hrtime();
        ticks_ = 0;
        schedule();
    } else {
        uv_timer_stop(&tick_);
    }
}

// Ticks keep to an absolute 20 ms grid from origin_ns_ (a repeating uv timer drifts by each
// callback's lateness); a tick that comes late by whole frames plays them all (at most 3).
void AgentHost::schedule() {
    const std::uint64_t next_ns = origin_ns_ + (ticks_ + 1) * kTickMs * 1'000'000;
    const std::uint64_t now_ns = uv_hrtime();
    const std::uint64_t wait_ms = next_ns > now_ns ? (next_ns - now_ns + 500'000) / 1'000'000 : 0;
    uv_timer_start(&tick_, [](uv_timer_t* t) {
        auto* h = static_cast<AgentHost*>(t->data);
        const std::uint64_t due = (uv_hrtime() - h->origin_ns_) / (kTickMs * 1'000'000);
        for (int n = 0; h->ticks_ < due && n < 3; ++n, ++h->ticks_) h->on_tick();
        if (h->ticks_ < due) h->ticks_ = due;   // hopelessly late: skip, do not burst
        if (h->ticking_) h->schedule();
    }, wait_ms, 0);
}

void AgentHost::on_tick() {
    const auto now = io::read_clock().mono;
    const std::uint64_t now_ms = uv_now(loop_);
    std::vector<Session*> due;
    for (auto& [key, s] : sessions_) due.push_back(s.get());
    for (Session* s : due) {
        if (s->ended || !s->media || s->relaying) continue;
        if (!s->upgraded) {
            if (now_ms >= s->deadline_ms) s->fail("no answer from the agent in time");
            continue;
        }
        s->conn.sweep(now_ms);
        const auto packet = s->media->on_tick(now, s->to_agent);
        if (!packet.empty() && s->udp_open) {
            sockaddr_storage ss{};
            s->media->media().remote.to_sockaddr(ss);
            const uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(packet.data())),
                                             static_cast<unsigned>(packet.size()));
            io::udp_send(&s->udp, reinterpret_cast<const sockaddr*>(&ss), {&buf, 1});
        }
        s->flush();
    }
}

// Hand-over (issue 17, gateway/agent_transfer.cpp): `stop` to the agent, its stream closed;
// the socket the caller sends to stays and relays. The caller's RTP is the SDP's address (by
// IP, as before); the browser call's media is the one endpoint relay_to() named.
std::optional<std::string> AgentHost::hand_over(const std::string& key) {
    auto it = sessions_.find(key);
    if (it == sessions_.end()) return std::nullopt;
    Session& s = *it->second;
    if (s.ended || s.relaying || !s.upgraded || !s.media || s.conn.closing()) return std::nullopt;
    s.relaying = true;
    s.send_text(s.media->stop());
    s.conn.send(s.decoder.close(sip::ws_close::Normal));
    s.conn.close_after_write(2000);
    log::info("agent: call {}: handed over; the agent's stream is stopped, its RTP socket relays", key);
    return s.answer_sdp;
}

void AgentHost::relay_to(const std::string& key, const std::string& sdp) {
    auto it = sessions_.find(key);
    if (it == sessions_.end() || !it->second->relaying) return;
    const auto answer = gateway::parse_sdp(sdp);
    if (!answer) return;
    for (const auto& m : answer->media) {
        const auto ip = IpAddress::parse(m.connection);
        if (m.media != "audio" || m.port == 0 || !ip) continue;
        it->second->relay_peer = Endpoint{*ip, m.port};
        return;
    }
}

void AgentHost::Session::relay(const Endpoint& from, std::span<const std::uint8_t> datagram) {
    const Endpoint caller = media->media().remote;
    std::optional<Endpoint> to;
    if (relay_peer && from == *relay_peer) to = caller;
    else if (from.ip == caller.ip && relay_peer) to = relay_peer;
    if (!to || !udp_open || udp_closing) return;
    sockaddr_storage ss{};
    to->to_sockaddr(ss);
    const uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(datagram.data())),
                                     static_cast<unsigned>(datagram.size()));
    io::udp_send(&udp, reinterpret_cast<const sockaddr*>(&ss), {&buf, 1});
}

void AgentHost::close() {
    if (closed_) return;
    closed_ = true;
    if (dns_) dns_->close();
    uv_timer_stop(&tick_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    for (auto& [key, s] : sessions_) {
        s->ended = true;
        if (!s->conn_gone) s->conn.close();
        if (s->udp_open && !s->udp_closing) {   // not twice: close_agent() may have begun it
            s->udp_closing = true;
            uv_close(reinterpret_cast<uv_handle_t*>(&s->udp), nullptr);
        }
    }
}

}  // namespace turnbridge::gateway::host
