// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/host/gateway_media.hpp"

#include <unistd.h>

#include <algorithm>
#include <optional>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/loop_clock.hpp"
#include "turnbridge/io/socket_util.hpp"
#include "turnbridge/io/udp_send.hpp"

namespace turnbridge::gateway::host {
namespace {

constexpr std::chrono::milliseconds kFrame{20};   // one frame toward the trunk per tick (CallMedia::on_tick)
// After a stall (a busy machine) at most this many overdue frames are made at once; beyond it the
// schedule starts again from now, as a real-time source must (the trunk's jitter buffer conceals).
constexpr int kMaxCatchUp = 5;
// Relayed addresses one call answers through; a browser has one or two relay candidates, so
// anything beyond this is not a browser of ours.
constexpr std::size_t kMaxRoutes = 8;
// How long a call whose browser sent close_notify waits for the browser's BYE (check()).
constexpr std::chrono::seconds kCloseNotifyGrace{2};

// The browser-side codecs in their order; G.722 is the trunk's (CallMediaConfig::trunk_g722).
void set_codecs(const config::Gateway& g, gateway::CallMediaConfig& mc) {
    mc.codecs.clear();
    for (auto c : g.codecs) {
        switch (c) {
            case config::Codec::Opus: mc.codecs.push_back(gateway::AudioCodec::Opus); break;
            case config::Codec::Pcmu: mc.codecs.push_back(gateway::AudioCodec::Pcmu); break;
            case config::Codec::Pcma: mc.codecs.push_back(gateway::AudioCodec::Pcma); break;
            case config::Codec::G722: mc.trunk_g722 = true; break;
        }
    }
}

}  // namespace

struct GatewayMedia::Socket {
    uv_udp_t udp{};
    GatewayMedia* owner = nullptr;
    Call* call = nullptr;   // null once the call's media is finished (the handle is closing)
    bool browser_leg = false;
    bool rtcp = false;      // the trunk leg's RTCP socket (issue 14)
};

class GatewayMedia::Call final : public sip::MediaSdp {
public:
    explicit Call(GatewayMedia& owner) : owner(&owner) {}
    ~Call() override {
        if (owner != nullptr) owner->finish(this);
    }
    std::optional<std::string> map_offer(bool from_browser, const std::string& sdp) override {
        return media ? media->map_offer(from_browser, sdp) : std::nullopt;
    }
    std::optional<std::string> map_answer(bool from_browser, const std::string& sdp) override {
        return media ? media->map_answer(from_browser, sdp) : std::nullopt;
    }
    LocalAnswer answer_locally(bool from_browser, const std::string& sdp, bool force) override {
        return media ? media->answer_locally(from_browser, sdp, force) : LocalAnswer{LocalAnswer::Kind::Refused, {}};
    }
    std::optional<std::string> current_offer(bool to_browser) override {
        return media ? media->current_offer(to_browser) : std::nullopt;
    }
    bool take_answer(bool from_browser, const std::string& sdp) override {
        return media && media->take_answer(from_browser, sdp);
    }
    std::optional<LateAnswers> answer_late_offer(const std::string& trunk_offer) override {
        return media ? media->answer_late_offer(trunk_offer) : std::nullopt;
    }
    std::optional<std::string> new_browser_offer() override {
        return media ? media->new_browser_offer() : std::nullopt;
    }
    bool take_new_browser(const std::string& answer) override { return media && media->take_new_browser(answer); }
    bool join_trunk(sip::MediaSdp& other) override {   // issue 14, attended transfer: same worker
        auto* o = dynamic_cast<Call*>(&other);
        return media && o != nullptr && o->media && media->join_trunk(*o->media);
    }

    struct Route {
        unsigned worker = 0;
        turn::RelayHandle relay = 0;
    };
    GatewayMedia* owner;
    std::unique_ptr<gateway::CallMedia> media;   // null once finished
    Socket* browser = nullptr;
    Socket* trunk = nullptr;
    Socket* trunk_rtcp = nullptr;   // optional: without it the call runs without RTCP toward the trunk
    Endpoint browser_ep, trunk_ep, trunk_rtcp_ep;
    std::unordered_map<Endpoint, Route> routes;  // relayed address -> the allocation it belongs to
    bool failure_reported = false;
    std::optional<std::chrono::steady_clock::time_point> closed_at;   // close_notify seen: the BYE's grace runs
    Summary summary;
};

GatewayMedia::GatewayMedia(uv_loop_t* loop, const config::Config& cfg, server::MediaExchange* exchange, unsigned worker,
                           Failed failed)
    : loop_(loop), ip_(cfg.media_ip.value_or(IpAddress{})), port_min_(cfg.media_port_min),
      port_max_(cfg.media_port_max), exchange_(exchange), worker_(worker), failed_(std::move(failed)) {}

GatewayMedia::~GatewayMedia() = default;

void GatewayMedia::start() {
    // One identity for every call: browsers pin it per call through a=fingerprint (RFC 8122).
    certificate_ = gateway::DtlsCertificate::generate();
    uv_timer_init(loop_, &tick_);
    tick_.data = this;
    uv_async_init(loop_, &wake_, [](uv_async_t* a) { static_cast<GatewayMedia*>(a->data)->on_handoffs(); });
    wake_.data = this;
    started_ = true;
    if (exchange_ != nullptr) exchange_->attach(exchange_->gateway_box(worker_), &wake_);
    log::info("gateway: media on {} ports {}-{}", ip_.to_string(), port_min_, port_max_);
}

void GatewayMedia::close() {
    if (closed_) return;
    closed_ = true;
    std::vector<Call*> live(calls_.begin(), calls_.end());
    for (Call* c : live) finish(c);
    if (!started_) return;
    if (exchange_ != nullptr) exchange_->detach(exchange_->gateway_box(worker_));
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
}

GatewayMedia::Socket* GatewayMedia::open_socket(Call& call, bool browser_leg, Endpoint& bound) {
    const std::uint32_t span = static_cast<std::uint32_t>(port_max_ - port_min_) + 1;
    for (std::uint32_t tried = 0; tried < span; ++tried) {
        // The cursor is shared by every worker's calls (a port another worker holds fails to bind).
        const std::uint32_t next = exchange_ != nullptr ? exchange_->next_port() : next_port_++;
        const auto port = static_cast<std::uint16_t>(port_min_ + (next % span));
        const Endpoint ep{ip_, port};
        const int fd = io::open_bound_socket(io::SocketKind::Udp, ep, io::SocketOptions{});
        if (fd < 0) continue;   // in use (another call, another process): try the next
        auto* s = new Socket;
        s->owner = this;
        s->call = &call;
        s->browser_leg = browser_leg;
        uv_udp_init(loop_, &s->udp);
        s->udp.data = s;
        if (uv_udp_open(&s->udp, fd) != 0) {
            ::close(fd);
            uv_close(reinterpret_cast<uv_handle_t*>(&s->udp), [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
            continue;
        }
        io::clear_reuse_addr(fd);
        uv_udp_recv_start(
            &s->udp,
            [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
                auto* s = static_cast<Socket*>(h->data);
                *buf = uv_buf_init(reinterpret_cast<char*>(s->owner->rx_.data()), static_cast<unsigned>(s->owner->rx_.size()));
            },
            [](uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned flags) {
                auto* s = static_cast<Socket*>(h->data);
                if (addr == nullptr || nread <= 0 || (flags & UV_UDP_PARTIAL) != 0 || s->call == nullptr) return;
                if (auto from = Endpoint::from_sockaddr(addr))
                    s->owner->on_datagram(*s, *from, {reinterpret_cast<const std::uint8_t*>(buf->base),
                                                      static_cast<std::size_t>(nread)});
            });
        bound = ep;
        return s;
    }
    return nullptr;
}

std::unique_ptr<sip::MediaSdp> GatewayMedia::create(const config::Realm& realm) {
    if (!started_ || closed_) return nullptr;
    gateway::CallMediaConfig mc;
    mc.certificate = certificate_;
    set_codecs(realm.gateway, mc);
    switch (realm.gateway.srtp) {
        case config::Gateway::Srtp::Off: mc.trunk_srtp = gateway::SrtpMode::Off; break;
        case config::Gateway::Srtp::Optional: mc.trunk_srtp = gateway::SrtpMode::Optional; break;
        case config::Gateway::Srtp::Required: mc.trunk_srtp = gateway::SrtpMode::Required; break;
    }
    // The sockets come first: CallMedia's SDP names their addresses.
    auto call = std::make_unique<Call>(*this);
    call->browser = open_socket(*call, true, call->browser_ep);
    if (call->browser != nullptr) call->trunk = open_socket(*call, false, call->trunk_ep);
    if (call->trunk == nullptr) {
        log::warn("realm {}: no free media ports in {}-{}; call refused", realm.name, port_min_, port_max_);
        return nullptr;   // ~Call releases what was opened
    }
    // RTCP toward the trunk (RFC 3550 §6) from a socket of its own, named in our SDP (RFC 3605).
    call->trunk_rtcp = open_socket(*call, false, call->trunk_rtcp_ep);
    if (call->trunk_rtcp != nullptr) {
        call->trunk_rtcp->rtcp = true;
        mc.trunk_rtcp_address = call->trunk_rtcp_ep;
    }
    mc.browser_address = call->browser_ep;
    mc.trunk_address = call->trunk_ep;
    call->media = std::make_unique<gateway::CallMedia>(std::move(mc));
    calls_.push_back(call.get());
    by_browser_port_.emplace(call->browser_ep.port, call.get());
    // Relayed media toward this port now comes to this worker (MediaExchange).
    if (exchange_ != nullptr) exchange_->set_port_owner(call->browser_ep.port, worker_);
    arm();
    return call;
}

GatewayMedia::Summary GatewayMedia::finish(sip::MediaSdp* media) {
    // Asked, not assumed: a call that never had media of ours (an inbound call to users with no
    // registration answers 480 over a pass-through object) must not be read as one (issue 11).
    auto* call = dynamic_cast<Call*>(media);
    if (call == nullptr || call->owner != this) return {};
    if (!call->media && call->browser == nullptr && call->trunk == nullptr && call->trunk_rtcp == nullptr) return call->summary;
    if (call->media) {
        call->summary.codecs = call->media->browser_codec() ? call->media->codec_names() : "";
        call->summary.stats = call->media->stats();
        call->summary.quality = call->media->quality();
        call->summary.relayed = !call->routes.empty();
        call->summary.failure = call->media->failure();
        ended_strangers_.browser += call->summary.stats.stranger_browser;
        ended_strangers_.trunk += call->summary.stats.stranger_trunk;
        call->media.reset();
    }
    for (Socket* s : {call->browser, call->trunk, call->trunk_rtcp}) {
        if (s == nullptr) continue;
        s->call = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(&s->udp), [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
    }
    call->browser = call->trunk = call->trunk_rtcp = nullptr;
    forget(*call);
    return call->summary;
}

GatewayMedia::Strangers GatewayMedia::strangers() const {
    Strangers s = ended_strangers_;
    for (const Call* c : calls_) {
        if (!c->media) continue;
        s.browser += c->media->stats().stranger_browser;
        s.trunk += c->media->stats().stranger_trunk;
    }
    return s;
}

void GatewayMedia::forget(Call& call) {
    calls_.remove(&call);
    if (auto it = by_browser_port_.find(call.browser_ep.port); it != by_browser_port_.end() && it->second == &call) {
        by_browser_port_.erase(it);
        if (exchange_ != nullptr) exchange_->clear_port_owner(call.browser_ep.port, worker_);
    }
    call.routes.clear();
    arm();
}

void GatewayMedia::on_datagram(Socket& s, const Endpoint& from, std::span<const std::uint8_t> bytes) {
    Call& call = *s.call;
    out_.clear();
    const auto now = clock_.now().mono;
    if (s.browser_leg) call.media->on_browser_datagram(now, from, bytes, out_);
    else if (s.rtcp) call.media->on_trunk_rtcp_datagram(now, from, bytes);
    else call.media->on_trunk_datagram(now, from, bytes, out_);
    send(call, out_);
    check(call);
}

void GatewayMedia::on_handoffs() {
    if (closed_ || exchange_ == nullptr) return;
    exchange_->take(exchange_->gateway_box(worker_), inbox_);
    const auto now = clock_.now().mono;
    for (const server::MediaHandoff& h : inbox_) {
        auto it = by_browser_port_.find(h.media.port);
        if (it == by_browser_port_.end() || !(it->second->browser_ep == h.media)) continue;   // no such call (any more)
        Call& call = *it->second;
        out_.clear();
        call.media->on_browser_datagram(now, h.relayed, h.bytes(), out_);
        // A way back only for a source that passed an authenticated ICE check: a stranger's
        // allocation must not take the slots of the browser's (issue 11).
        if (!call.routes.contains(h.relayed) && call.routes.size() < kMaxRoutes && call.media->ice_checked(h.relayed))
            call.routes.emplace(h.relayed, Call::Route{h.worker, h.relay});
        send(call, out_);
        check(call);
    }
    inbox_.clear();
}

void GatewayMedia::on_tick() {
    const auto now = clock_.now().mono;
    // A libuv timer re-armed every 20 ms fires a little late each time (loop time, whole
    // milliseconds), and the trunk would get 0.5-2.5 % fewer frames than it plays: every frame
    // due by the schedule is made now, then the timer is armed for the next one.
    int frames = 0;
    for (; next_frame_ <= now && frames < kMaxCatchUp; next_frame_ += kFrame, ++frames) tick_calls(now);
    if (next_frame_ <= now) next_frame_ = now + kFrame;   // too far behind: a fresh schedule
    schedule_tick(now);
}

void GatewayMedia::tick_calls(std::chrono::steady_clock::time_point now) {
    // A call may end (and leave calls_) while others tick: walk a copy, kept between ticks.
    ticking_calls_.assign(calls_.begin(), calls_.end());
    for (Call* c : ticking_calls_) {
        if (!c->media) continue;
        out_.clear();
        c->media->on_tick(now, out_);
        send(*c, out_);
        check(*c);
    }
}

void GatewayMedia::schedule_tick(std::chrono::steady_clock::time_point now) {
    // Rounded up: a timer that fires early finds no frame due and only re-arms.
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_frame_ - now).count();
    uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<GatewayMedia*>(t->data)->on_tick(); },
                   static_cast<std::uint64_t>(std::max<std::int64_t>(wait, 0)), 0);
}

void GatewayMedia::send(Call& call, gateway::MediaOutput& out) {
    for (std::size_t i = 0; i < out.size(); ++i) {
        const gateway::MediaPacket& p = out[i];
        if (p.leg == gateway::MediaLeg::Browser) {
            // Back the way the browser's datagrams came: through its TURN allocation, as if the
            // answer had arrived on the allocation's relay socket from our media address.
            if (auto r = call.routes.find(p.to); r != call.routes.end() && exchange_ != nullptr) {
                exchange_->post(r->second.worker, worker_, r->second.worker, r->second.relay, p.to, call.browser_ep, p.bytes());
                continue;
            }
        }
        Socket* s = p.leg == gateway::MediaLeg::Browser     ? call.browser
                    : p.leg == gateway::MediaLeg::TrunkRtcp ? call.trunk_rtcp
                                                            : call.trunk;
        if (s == nullptr) continue;
        sockaddr_storage sa{};
        p.to.to_sockaddr(sa);
        const uv_buf_t b = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(p.buf.data())),
                                       static_cast<unsigned>(p.size));
        io::udp_send(&s->udp, reinterpret_cast<const sockaddr*>(&sa), {&b, 1});
    }
    out.clear();
}

void GatewayMedia::check(Call& call) {
    if (!call.media || !call.media->ended() || call.failure_reported) return;
    // A browser that hangs up sends its BYE on its WebSocket and close_notify on the media
    // path, and either may arrive first. close_notify ends the media at once (nothing more is
    // relayed) but the call is hung up only if no BYE came within kCloseNotifyGrace, so that a
    // normal hang-up is recorded as the BYE it is ("bye-browser"), not as a media failure.
    if (call.media->state() == gateway::CallMedia::State::Closed) {
        const auto now = clock_.now().mono;
        if (!call.closed_at) call.closed_at = now;
        if (now - *call.closed_at < kCloseNotifyGrace) return;
    }
    call.failure_reported = true;
    const std::string why = call.media->failure();
    if (call.media->state() == gateway::CallMedia::State::Failed)
        log::warn("gateway: call media on {} failed: {}", call.browser_ep.to_string(), why);
    else
        log::info("gateway: call media on {} closed by the browser: {}", call.browser_ep.to_string(), why);
    if (failed_) failed_(&call, why);
}

void GatewayMedia::arm() {
    if (!started_ || closed_) return;
    const bool want = !calls_.empty();
    if (want == ticking_) return;
    ticking_ = want;
    if (want) {
        const auto now = clock_.now().mono;
        next_frame_ = now + kFrame;
        schedule_tick(now);
    } else {
        uv_timer_stop(&tick_);
    }
}

}  // namespace turnbridge::gateway::host
