// SPDX-License-Identifier: Apache-2.0
#pragma once
// The sans-I/O TURN/STUN server of one worker: datagrams and time in, actions out. It owns the
// worker's allocations. Nothing here opens a socket or reads a clock; see net/ for that.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <variant>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/base/auth_throttle.hpp"
#include "turnbridge/config/config.hpp"
#include "turnbridge/stun/message.hpp"
#include "turnbridge/turn/allocation.hpp"
#include "turnbridge/turn/clock.hpp"
#include "turnbridge/turn/deadline_heap.hpp"
#include "turnbridge/turn/nonce.hpp"
#include "turnbridge/turn/peer_policy.hpp"
#include "turnbridge/turn/quota.hpp"
#include "turnbridge/turn/lease_slot.hpp"
#include "turnbridge/turn/reflection_guard.hpp"
#include "turnbridge/turn/relay_binder.hpp"
#include "turnbridge/turn/shared_peers.hpp"

namespace turnbridge::turn {

// Send toward the client on its 5-tuple: `head` then `body` then `pad` zero bytes (ChannelData
// on TCP/TLS is padded to 4, RFC 8656 §12.5). Spans stay valid until the next call into Server.
struct ToClient {
    FiveTuple to;
    stun::Bytes head;
    stun::Bytes body;
    std::uint8_t pad = 0;
};

// Send `body` from relay socket `relay` to `peer`. `body` points into the caller's input.
struct ToPeer {
    RelayHandle relay = 0;
    Endpoint peer;
    stun::Bytes body;
    bool dont_fragment = false;
};

// The client leg of a stream 5-tuple must be closed (e.g. after its allocation was deleted by
// an admin, or on a framing error handled by net).
struct CloseClient {
    FiveTuple to;
};

// The gateway seam: a datagram for a peer that lives in this process (the gateway's media
// endpoint) is handed over instead of sent. The endpoint answers through on_peer_data() with the
// same relay handle, as if its reply had arrived on the relay socket; to the endpoint the
// datagram comes from `relayed`, the allocation's relayed address (the browser's relay candidate).
struct ToLocal {
    AllocationId allocation = 0;
    RelayHandle relay = 0;
    Endpoint relayed;
    Endpoint peer;
    stun::Bytes body;
};

// The gateway's media addresses (issue 4). Only allocations of gateway-enabled realms may use
// them as peers, even though they are the server's own (default-denied) addresses; every other
// realm keeps the peer policy, and no allocation reaches another port of that IP through them.
class LocalPeers {
public:
    virtual ~LocalPeers() = default;
    virtual bool is_local_ip(const IpAddress& ip) const = 0;  // the media IP
    virtual bool is_local(const Endpoint& peer) const = 0;    // the media IP and a media port
};

using Action = std::variant<ToClient, ToPeer, CloseClient, ToLocal>;

// Hears about allocations coming and going; the accounting seam. Optional.
class AllocationObserver {
public:
    virtual ~AllocationObserver() = default;
    virtual void on_created(const Allocation& a) = 0;
    virtual void on_closed(const Allocation& a, CloseReason why) = 0;
};

// Byte quotas (realm.X.quota_bytes per quota_period) are kept by accounting, which knows
// what each user relayed; the core only asks. Thread-safe; asked on Allocate and Refresh only.
class QuotaGate {
public:
    virtual ~QuotaGate() = default;
    virtual bool over_quota(const config::Realm& realm, const std::string& account) const = 0;
};

// Drain (issue 15): while the node drains, new allocations go elsewhere. Thread-safe (an
// immutable snapshot the control thread publishes); asked on Allocate only.
class DrainGate {
public:
    virtual ~DrainGate() = default;
    // nullopt: not draining. Otherwise where to send new allocations: a live node of the same
    // region (300 Try Alternate with ALTERNATE-SERVER), or none (403).
    virtual std::optional<std::optional<Endpoint>> redirect() const = 0;
};

// Shared by all workers: read-only or internally synchronised.
struct SharedState {
    std::shared_ptr<const config::Config> config;
    const NonceMinter* nonces = nullptr;
    QuotaTracker* quota = nullptr;
    unsigned worker = 0;  // high bits of AllocationId, so ids are unique across workers
    const QuotaGate* quota_gate = nullptr;  // null: no byte quotas
    AuthThrottle* auth = nullptr;           // security.auth_failures_per_minute; null: none
    const DrainGate* drain = nullptr;       // [fleet] drain; null: never drains
    LeaseGate* leases = nullptr;            // [fleet] byte quota leases; null: quotas per node
};

// Why an Allocate was refused, besides credentials and quotas (counted on their own below).
enum class AllocateRefusal : std::uint8_t { BadRequest, Mismatch, Family, Transport, Forbidden, Capacity, Other, Count };
std::string_view to_string(AllocateRefusal r);

struct Stats {
    std::uint64_t auth_failures = 0;   // wrong credentials, checked
    std::uint64_t auth_throttled = 0;  // 401 without a check: security.auth_failures_per_minute
    std::uint64_t quota_refusals = 0;
    // Of quota_refusals: the user already had server.max_allocations_per_user.
    std::uint64_t user_allocation_refusals = 0;
    // CreatePermission/ChannelBind answered 508: server.max_permissions_per_allocation or
    // max_channels_per_allocation reached.
    std::uint64_t permission_cap_refusals = 0;
    std::uint64_t channel_cap_refusals = 0;
    // Error responses to Allocate other than 401 (a challenge or bad credentials: auth_failures)
    // and 486 (quota_refusals), by kind.
    std::array<std::uint64_t, static_cast<std::size_t>(AllocateRefusal::Count)> allocate_refused{};
    std::uint64_t forbidden_peers = 0;
    // Unparseable client datagrams, and peer datagrams no allocation takes (on a shared relay
    // socket: from a peer address nobody claimed).
    std::uint64_t dropped_datagrams = 0;
    // server.relay_sharing: peer addresses refused on a shared relay socket (CreatePermission or
    // ChannelBind answered 508, or a Send dropped): claimed by another allocation, the relayed
    // address itself, or one more than kMaxSharedPeers.
    std::uint64_t shared_peer_refusals = 0;
    // Answers to unauthenticated requests not sent because their source was over
    // security.unauthenticated_rate (RFC 8656 §21).
    std::uint64_t unauthenticated_dropped = 0;
};

class Server {
public:
    Server(SharedState shared, RelayBinder& binder, AllocationObserver* observer = nullptr);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Peers served in-process (gateway mode); nullptr = none.
    void set_local_peers(const LocalPeers* local) { local_ = local; }

    // SIGHUP: new users, secrets and limits; live allocations stay.
    void set_config(std::shared_ptr<const config::Config> cfg);

    // A datagram (UDP) or one framed message (TCP/TLS) from a client. `local` in `from` is the
    // listener's address. Unparseable input produces no action (RFC 8489 §6.3).
    void on_client_data(const Clock& now, const FiveTuple& from, stun::Bytes bytes,
                        std::vector<Action>& out);
    // A datagram received on a relay socket from `peer` (RFC 8656 §11.3, §12.6).
    void on_peer_data(const Clock& now, RelayHandle relay, const Endpoint& peer, stun::Bytes bytes,
                      std::vector<Action>& out);
    // Client-leg bytes the core never sees: the TLS record overhead (header, tag) of records
    // carrying relayed data on `ft`. Added to the allocation's wire bytes, if it has one.
    void add_wire_overhead(const FiveTuple& ft, Direction d, std::size_t bytes);
    // The stream connection of `ft` closed: its allocation goes (RFC 8656 §5).
    void on_client_closed(const Clock& now, const FiveTuple& ft);
    // Expires allocations, permissions and channels. Call about once a second.
    void on_timer(const Clock& now);
    // Deletes every allocation (SIGTERM) or one by id (admin kick).
    void close_all(CloseReason why);
    bool close(AllocationId id, CloseReason why, std::vector<Action>& out);

    std::size_t allocation_count() const { return by_tuple_.size(); }
    std::size_t shared_peer_count() const { return shared_peers_.size(); }  // claims (server.relay_sharing)
    const Allocation* find(const FiveTuple& ft) const;
    template <class F> void for_each(F&& f) const {
        for (const auto& [ft, a] : by_tuple_) f(*a);
    }
    const Stats& stats() const { return stats_; }

    struct Request;  // a parsed, authenticated request being handled (server_internal.hpp)

private:
    // Dispatch and the STUN parts (server.cpp).
    void on_stun(const Clock& now, const FiveTuple& from, const stun::Message& m,
                 std::vector<Action>& out);
    void on_request(const Clock& now, Request& req, std::vector<Action>& out);
    void on_binding(const Request& req, std::vector<Action>& out);
    // Takes back the answers queued from `first` on when they would amplify toward a source
    // over its reflection limit (RFC 8656 §21).
    void limit_reflection(const Clock& now, const Request& req, std::size_t first, std::vector<Action>& out);
    // Authentication (auth.cpp): true if `req` is authenticated; otherwise the challenge or
    // error has been sent.
    bool authenticate(const Clock& now, Request& req, std::vector<Action>& out);
    // TURN methods, one file each.
    void on_allocate(const Clock& now, Request& req, std::vector<Action>& out);
    void on_refresh(const Clock& now, Request& req, std::vector<Action>& out);
    void on_create_permission(const Clock& now, Request& req, std::vector<Action>& out);
    void on_channel_bind(const Clock& now, Request& req, std::vector<Action>& out);
    // Data path (relay.cpp).
    void on_send_indication(const Clock& now, const FiveTuple& from, const stun::Message& m,
                            std::vector<Action>& out);
    void on_channel_data(const Clock& now, const FiveTuple& from, stun::Bytes bytes,
                         std::vector<Action>& out);
    void relay_to_peer(Allocation& a, const RelaySocket& relay, const Endpoint& peer, stun::Bytes body,
                       bool dont_fragment, std::vector<Action>& out);

    // Responses (response.cpp): built into response_buf_.
    void send_error(const Request& req, StunCode code, std::string_view reason,
                    std::vector<Action>& out, bool with_integrity = true);
    friend class ResponseWriter;

    Allocation* find_mut(const FiveTuple& ft);
    // The allocation on the request's 5-tuple, if it belongs to the requesting user; otherwise
    // 437 or 441 has been sent (RFC 8656 §7.3, §9, §12).
    Allocation* owned_allocation(const Request& req, std::vector<Action>& out);
    // Sends 443 or 403 and returns true when `peer` may not be used by `a` (RFC 8656 §9.1).
    // A gateway realm's allocation may use the gateway's media addresses (LocalPeers) and is marked.
    bool refuse_peer(const Request& req, Allocation& a, const Endpoint& peer, std::vector<Action>& out);
    // server.max_permissions_per_allocation: would installing permissions for `peers` pass it?
    bool over_permission_cap(const Allocation& a, std::span<const Endpoint> peers) const;
    // Sends 420 listing unknown comprehension-required attributes (RFC 8489 §6.3.1), if any.
    bool refuse_unknown_attributes(const Request& req, std::vector<Action>& out, bool with_integrity);
    // realm.X.quota_bytes used up by the requesting user (counts and logs a refusal).
    bool over_byte_quota(const Request& req);
    // server.relay_sharing (shared_relay.cpp). The allocation a peer datagram on `relay` is for.
    Allocation* allocation_on(RelayHandle relay, const Endpoint& peer);
    // Sends 508 and returns true when `peer` may not be claimed by `a` on its shared socket.
    enum class SharedRefusal : std::uint8_t { None, OwnAddress, Held, TooMany };
    SharedRefusal shared_refusal(const Allocation& a, const RelaySocket& relay, const Endpoint& peer,
                                 const Allocation* holder) const;
    bool refuse_shared_peer(const Request& req, const Allocation& a, const Endpoint& peer, std::vector<Action>& out);
    // Claims `peer` for `a` on its shared socket of that family (a no-op on a dedicated socket);
    // false, counted, when refuse_shared_peer would refuse it.
    bool claim_peer(Allocation& a, const Endpoint& peer);
    // Drops `a`'s claims no longer covered by a permission or bound channel at `now`.
    void release_stale_peers(Allocation& a, Time now);
    void release_all_peers(Allocation& a);
    void destroy(Allocation& a, CloseReason why);
    // Requeues the allocation on `ft` (if any) after a request changed its deadlines.
    void reschedule(const FiveTuple& ft);

    SharedState shared_;
    PeerPolicy policy_;
    ReflectionGuard reflection_;
    RelayBinder& binder_;
    AllocationObserver* observer_;
    const LocalPeers* local_ = nullptr;
    std::unordered_map<FiveTuple, std::unique_ptr<Allocation>> by_tuple_;
    std::unordered_map<RelayHandle, Allocation*> by_relay_;  // dedicated relay sockets
    SharedPeerTable shared_peers_;                          // shared ones, by peer address
    DeadlineHeap<Allocation> expiry_;  // every allocation, keyed by its next_deadline()
    AllocationId next_id_ = 1;
    std::uint64_t next_indication_ = 1;  // transaction IDs of Data indications
    std::array<std::uint8_t, 1500> response_buf_{};
    std::array<std::uint8_t, 64> head_buf_{};
    Stats stats_;
};

}  // namespace turnbridge::turn
