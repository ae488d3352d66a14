// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the gateways of all workers share (issue 12: a GatewayHost on every worker). Each worker
// has its own listeners (SO_REUSEPORT: the kernel spreads connections and UDP 4-tuples), its own
// SipRouter, transactions, UDP flow table, per-source rate limits and GatewayMedia; a source's
// UDP 4-tuple and a connection always land on one worker, so those stay per worker. Shared here:
//  - where each SIP message is handled (sip::Placement, by Call-ID), and the mailboxes that carry
//    a message to that worker, and its answers back to the worker owning the flow. These are
//    signalling, not the media packet path: a mutex-protected queue and a wake-up per worker
//    (the host's uv_async);
//  - the registrar (one for the process, so an inbound call forks to every browser binding
//    wherever its WebSocket lives; REGISTER is rare, so a mutex guards it);
//  - live calls per realm, per user (gateway.max_calls, max_calls_per_user count process-wide)
//    and per worker (the placement's load).
// A TransportId names the worker that owns its flow in its top bits (flow_id()/flow_owner()).
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/gateway/fleet_locations.hpp"
#include "turnbridge/base/address.hpp"
#include "turnbridge/gateway/trunk_health.hpp"
#include "turnbridge/sip/placement.hpp"
#include "turnbridge/sip/registrar.hpp"

namespace turnbridge::gateway {

// The flow a SIP message came on, as the router sees it (defined in sip_router.hpp).
struct SipFlow;

// A TransportId of worker `worker`'s flow number `n`.
constexpr sip::TransportId flow_id(unsigned worker, std::uint64_t n) {
    return (static_cast<sip::TransportId>(worker) << 48) | (n & ((1ULL << 48) - 1));
}
constexpr unsigned flow_owner(sip::TransportId id) { return static_cast<unsigned>(id >> 48); }

// A piece of SIP work for another worker's gateway.
struct SipMail {
    enum class Kind {
        Message,   // `bytes` came on `flow` (of another worker): handle it
        Send,      // write `bytes` on our flow `transport`
        Closed,    // flow `transport` (of another worker) closed
    };
    Kind kind = Kind::Message;
    sip::TransportId transport = 0;
    bool websocket = false, secure = false, reliable = true;
    IpAddress peer;
    std::optional<Endpoint> local;
    // A UDP datagram: the receiver handles it on its own flow toward `remote` (any worker's
    // sip_listen socket sends from the same address), socket index `udp_socket`.
    std::optional<Endpoint> udp_remote;
    std::uint32_t udp_socket = 0;
    std::string bytes;
};

class GatewayShared {
public:
    // `placements`: the placement table's bound (entries live about as long as transactions).
    GatewayShared(unsigned workers, std::size_t placements);
    unsigned workers() const { return workers_; }

    // The worker that handles a message with `call_id` (sip::Placement). `user` ("alice@realm",
    // a browser's initial INVITE): issue 14, attended transfer joins two calls of one user on
    // one worker, so a user's new call goes to the worker of their other live call, if any.
    unsigned route(sip::Time now, std::string_view call_id, bool initial_invite, std::string_view user = {});
    // The worker a Call-ID is placed on (nullopt: none known); for a REFER naming another call.
    std::optional<unsigned> placed(std::string_view call_id) const;
    void set_placements(std::size_t n);

    // Live calls: a call of `realm` started on `worker`; its user is known (or becomes known:
    // add_user, an inbound call answered); it ended. `call_id`: the placement to keep or release.
    void call_started(unsigned worker, const std::string& realm, const std::string& user, const std::string& call_id);
    void add_user(unsigned worker, const std::string& realm, const std::string& user);
    // A call no longer counts for its user (issue 14: joined to another by an attended transfer,
    // the user has left it); its realm's count and its placement stay until call_ended().
    void drop_user(unsigned worker, const std::string& realm, const std::string& user);
    void call_ended(sip::Time now, unsigned worker, const std::string& realm, const std::string& user,
                    const std::string& call_id);
    // A proxied INVITE (issue 15, fleet_proxy.cpp): its worker keeps its Call-ID, as a call's,
    // until the fork ends, so that a late answer finds the fork; no live call is counted.
    void hold_placement(const std::string& call_id);
    void release_placement(sip::Time now, const std::string& call_id);
    // Live calls of `realm`, and of `user` in it (process-wide).
    std::pair<std::uint32_t, std::uint32_t> live(const std::string& realm, const std::string& user) const;
    std::uint32_t load(unsigned worker) const { return load_[worker].load(std::memory_order_relaxed); }

    // Trunk targets' health (issue 14), under its lock: probed by the worker that registers to
    // trunks (worker 0), read by every worker when a call picks its targets.
    template <class F> auto with_health(F&& f) {
        std::lock_guard lock(health_mu_);
        return f(health_);
    }

    // The registrar, under its lock.
    template <class F> auto with_registrar(F&& f) {
        std::lock_guard lock(registrar_mu_);
        return f(registrar_);
    }

    // Fleet mode (issue 15): other nodes' registrations, published by the fleet shipper.
    FleetLocations& fleet() { return fleet_; }

    // Worker `w`'s mailbox calls `wake` (thread-safe, e.g. uv_async_send) when mail arrives in an
    // empty box; detach before closing what it wakes (posts then are dropped).
    void attach(unsigned w, std::function<void()> wake);
    void detach(unsigned w);
    // Bounded like a socket buffer (kMaxMail messages, kMaxMailBytes bytes): beyond, a stalled
    // worker's signalling is dropped (SIP retransmits over UDP) and counted in dropped().
    static constexpr std::size_t kMaxMail = 65536;
    static constexpr std::size_t kMaxMailBytes = 16u << 20;
    void post(unsigned w, SipMail mail);
    std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
    void take(unsigned w, std::vector<SipMail>& into);

private:
    unsigned workers_;
    mutable std::mutex placement_mu_;
    sip::Placement placement_;
    std::vector<std::uint32_t> loads_;   // scratch for route(), under placement_mu_
    std::unique_ptr<std::atomic<std::uint32_t>[]> load_;
    mutable std::mutex live_mu_;
    std::map<std::string, std::uint32_t, std::less<>> realm_calls_, user_calls_;   // user: "user@realm"
    // Live calls of each "user@realm" by worker (route()'s affinity), under live_mu_.
    std::map<std::string, std::vector<std::uint32_t>, std::less<>> user_workers_;
    void count_user(unsigned worker, const std::string& key, int delta);   // under live_mu_
    std::mutex registrar_mu_;
    std::mutex health_mu_;
    TrunkHealth health_;
    sip::Registrar registrar_;
    FleetLocations fleet_;
    struct Box {
        std::mutex mu;
        std::function<void()> wake;
        std::vector<SipMail> mail;
        std::size_t bytes = 0;   // of the SIP messages in `mail`
    };
    std::unique_ptr<Box[]> boxes_;
    std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace turnbridge::gateway
