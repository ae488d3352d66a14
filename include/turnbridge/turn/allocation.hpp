// SPDX-License-Identifier: Apache-2.0
#pragma once
// One allocation's state (RFC 8656 §2.2, §5): relayed addresses, lifetime, permissions, channels
// and its traffic counters, which are the seam the accounting work reads.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/stun/message.hpp"
#include "turnbridge/turn/clock.hpp"
#include "turnbridge/turn/deadline_heap.hpp"
#include "turnbridge/turn/relay_binder.hpp"

namespace turnbridge::turn {

using AllocationId = std::uint64_t;
struct LeaseSlot;  // lease_slot.hpp

constexpr auto kPermissionLifetime = std::chrono::seconds(300);  // RFC 8656 §9
constexpr auto kChannelLifetime = std::chrono::seconds(600);     // RFC 8656 §12
constexpr auto kChannelQuarantine = std::chrono::seconds(300);   // RFC 8656 §12: no rebind for 5 min

// Directions of relayed traffic, as accounting names them.
enum class Direction : std::uint8_t { ClientToRelay = 0, RelayToPeer, PeerToRelay, RelayToClient };

struct Counters {
    // Payload: application bytes (Send/ChannelData data, peer datagrams). Wire: what crossed
    // the client leg including STUN/ChannelData headers (client-leg directions only).
    std::array<std::uint64_t, 4> packets{};
    std::array<std::uint64_t, 4> payload_bytes{};
    std::array<std::uint64_t, 4> wire_bytes{};
    std::uint64_t dropped_no_permission = 0;
    std::uint64_t dropped_rate = 0;  // over the realm's max_bitrate
    void add(Direction d, std::size_t payload, std::size_t wire) {
        const auto i = static_cast<std::size_t>(d);
        ++packets[i];
        payload_bytes[i] += payload;
        wire_bytes[i] += wire;
    }
};

// A token bucket per direction for realm.X.max_bitrate: packets beyond the rate are dropped
// and counted, never queued (a relay must not add delay). Plain arithmetic, no allocation.
class RateLimit {
public:
    void set_rate(std::uint64_t bits_per_second, Time now);
    // A reload changing the rate: the bucket keeps its clock and its tokens (up to the new burst).
    void change_rate(std::uint64_t bits_per_second);
    std::uint64_t rate() const { return rate_bps_; }
    bool unlimited() const { return rate_bps_ == 0; }
    // True when `bytes` fit now; takes the tokens then.
    bool allow(std::size_t bytes, Time now);

private:
    std::uint64_t rate_bps_ = 0;
    double tokens_bits_ = 0;
    double burst_bits_ = 0;
    Time last_{};
};

struct Permission {
    IpAddress peer;  // RFC 8656 §9: permissions match the IP address only, not the port
    Time expires;
};

struct Channel {
    std::uint16_t number = 0;
    Endpoint peer;
    Time expires;  // bound until then; then quarantined until expires + kChannelQuarantine
};

// RFC 8656 sets no limit on permissions or channels per allocation, so the per-packet lookups
// must not grow with them. Up to kLinearPeers entries a scan is fastest and costs no memory;
// past that the allocation keeps hash indexes into its vectors.
constexpr std::size_t kLinearPeers = 8;
struct PeerIndex {
    std::unordered_map<IpAddress, std::uint32_t> permission;  // position in `permissions`
    std::unordered_map<std::uint16_t, std::uint32_t> channel_number;  // position in `channels`
    std::unordered_map<Endpoint, std::uint32_t> channel_peer;
    std::size_t permissions_indexed = 0;  // entries [0, n) are in the maps
    std::size_t channels_indexed = 0;
};

struct Key {
    std::array<std::uint8_t, 32> bytes{};
    std::uint8_t size = 0;  // 16 for MD5, 32 for SHA-256
    stun::Bytes span() const { return {bytes.data(), size}; }
};

// Which integrity attribute the client used, so responses mirror it (RFC 8489 §9.2.4).
enum class IntegrityKind : std::uint8_t { Sha1, Sha256 };

enum class CloseReason : std::uint8_t { Expired, Refreshed0, ClientGone, Kicked, Shutdown, Quota };
std::string_view to_string(CloseReason r);

struct Allocation {
    AllocationId id = 0;
    FiveTuple five_tuple;
    std::string username;  // as sent (USERNAME)
    std::string account;   // who pays: static user, or REST "expiry:userid" -> userid
    std::string realm;
    Key key;
    IntegrityKind integrity = IntegrityKind::Sha1;
    std::array<RelaySocket, 2> relays{};
    std::uint8_t relay_count = 0;
    std::array<Endpoint, 2> advertised{};  // XOR-RELAYED-ADDRESS values (external_ip applied)
    Time created;
    Time expires;
    stun::TransactionId allocate_tid{};     // RFC 8656 §7.2: a retransmitted Allocate is answered again
    std::vector<std::uint8_t> allocate_response;
    std::vector<Permission> permissions;
    std::vector<Channel> channels;
    // Peer addresses (IP and port) this allocation claimed on its shared relay sockets
    // (server.relay_sharing; shared_peers.hpp). Each has a live permission or bound channel.
    std::vector<Endpoint> shared_peers;
    Counters counters;
    // [fleet] byte quotas (issue 15): the user's leases on this node; null when not leased.
    std::shared_ptr<LeaseSlot> lease;
    std::uint32_t peers_seen = 0;
    bool gateway_peer = false;  // permitted to the gateway's media addresses (gateway realm)
    RateLimit to_peer_rate;    // client -> peer
    RateLimit to_client_rate;  // peer -> client  // permissions installed for a new peer address (accounting)

    const RelaySocket* relay_for(Family f) const;
    bool has_permission(const IpAddress& peer, Time now) const;
    void install_permission(const IpAddress& peer, Time now);
    const Channel* channel_by_number(std::uint16_t number, Time now) const;
    const Channel* channel_by_peer(const Endpoint& peer, Time now) const;
    // Drops expired permissions and channels past quarantine.
    void expire(Time now);
    // When on_timer next has work here: the allocation's end, or the first permission to expire
    // or channel to leave quarantine (RFC 8656 §6, §9, §12).
    Time next_deadline() const;

    std::uint32_t heap_slot = kNotQueued;  // position in the server's DeadlineHeap

private:
    // The index when the vectors are long enough to need one, brought up to date first:
    // ChannelBind appends to `channels` directly, so entries past `channels_indexed` are new.
    // Mutable: a lookup cache on the worker's own thread.
    PeerIndex* index() const;
    mutable std::unique_ptr<PeerIndex> index_;
};

}  // namespace turnbridge::turn
