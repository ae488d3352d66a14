// SPDX-License-Identifier: Apache-2.0
#pragma once
// Gateway media I/O (issue 4), on each worker's loop next to its GatewayHost (issue 12). Each call gets a
// gateway::CallMedia (the sans-I/O media of one call) and three UDP sockets on server.media_ip,
// ports from server.media_ports: the browser leg (our ICE-lite host candidate), the trunk leg
// (plain RTP) and the trunk leg's RTCP (issue 14; named in our SDP with a=rtcp, RFC 3605). One 20 ms timer ticks every call. Browser-leg datagrams arrive either on the
// browser socket (direct candidates) or from a TURN allocation of this process through the
// MediaExchange (relay candidates; no socket round trip); answers go back the way the browser's
// datagrams came, so relayed media is relayed and accounted by the allocation.
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <uv.h>
#include <vector>

#include "turnbridge/config/config.hpp"
#include "turnbridge/io/loop_clock.hpp"
#include "turnbridge/gateway/call_media.hpp"
#include "turnbridge/server/media_exchange.hpp"
#include "turnbridge/sip/call.hpp"

namespace turnbridge::gateway::host {

class GatewayMedia {
public:
    // A call's media failed (DTLS fingerprint mismatch, ICE consent lost...): the call must end.
    using Failed = std::function<void(const sip::MediaSdp* media, const std::string& why)>;

    // What a call's media leaves for its call record.
    struct Summary {
        std::string codecs;     // "opus/PCMU"; "" if never negotiated
        gateway::CallMedia::Stats stats;
        gateway::CallMedia::Quality quality;   // loss, jitter, MOS per leg and direction (issue 14)
        bool relayed = false;   // browser media came through one of our TURN allocations
        std::string failure;    // why the media failed or closed, "" otherwise
    };

    // `exchange`: null when no worker hands relayed media over (then only direct candidates).
    // `worker`: the worker whose loop this runs on (its inbox in the exchange, its media ports).
    GatewayMedia(uv_loop_t* loop, const config::Config& cfg, server::MediaExchange* exchange, unsigned worker, Failed failed);
    ~GatewayMedia();

    void start();   // the DTLS certificate, the timer, the exchange's inbox
    void close();   // every call's sockets, the timer, the inbox

    // The media of one new call of `realm`; nullptr (logged) when no browser and trunk ports are free (the trunk RTCP port is optional).
    std::unique_ptr<sip::MediaSdp> create(const config::Realm& realm);
    // Stops the call's media, releases its ports and returns what it did. Idempotent; media that is
    // not one of ours (the router's pass-through for a call nobody answers) gives an empty Summary.
    Summary finish(sip::MediaSdp* media);
    std::size_t calls() const { return calls_.size(); }
    // Datagrams dropped because their source was not the leg's peer (CallMedia::Stats), summed
    // over ended and live calls since start.
    struct Strangers {
        std::uint64_t browser = 0, trunk = 0;
    };
    Strangers strangers() const;

    class Call;   // one call's CallMedia and sockets (the sip::MediaSdp handed to the router)

private:
    struct Socket;
    friend class Call;
    Socket* open_socket(Call& call, bool browser_leg, Endpoint& bound);
    void on_datagram(Socket& s, const Endpoint& from, std::span<const std::uint8_t> bytes);
    void on_handoffs();
    void on_tick();
    void tick_calls(std::chrono::steady_clock::time_point now);
    void schedule_tick(std::chrono::steady_clock::time_point now);
    void send(Call& call, gateway::MediaOutput& out);
    void check(Call& call);
    void forget(Call& call);
    void arm();

    uv_loop_t* loop_;
    io::LoopClock clock_{loop_};   // per-datagram time from uv_now()
    IpAddress ip_;
    std::uint16_t port_min_, port_max_;
    std::uint32_t next_port_ = 0;   // cursor into the range, so ports are not reused at once
    server::MediaExchange* exchange_;
    unsigned worker_ = 0;
    Failed failed_;
    std::shared_ptr<const gateway::DtlsCertificate> certificate_;
    std::list<Call*> calls_;
    Strangers ended_strangers_;   // of calls already finished
    std::vector<Call*> ticking_calls_;
    std::unordered_map<std::uint16_t, Call*> by_browser_port_;
    uv_timer_t tick_{};
    uv_async_t wake_{};
    bool started_ = false, closed_ = false;
    bool ticking_ = false;
    // When the next 20 ms frame is due. Frames are counted from this monotonic schedule, not from
    // when the timer fired, so toward the trunk none is lost to timer drift.
    std::chrono::steady_clock::time_point next_frame_{};
    std::vector<server::MediaHandoff> inbox_;
    gateway::MediaOutput out_;
    std::array<std::uint8_t, 2048> rx_{};
};

}  // namespace turnbridge::gateway::host
