// SPDX-License-Identifier: Apache-2.0
#pragma once
// The validated, immutable configuration snapshot. Workers hold a shared_ptr<const Config>;
// SIGHUP builds a new one and swaps it in (users, secrets, certificates).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "turnbridge/base/address.hpp"
#include "turnbridge/config/agent_url.hpp"

namespace turnbridge::config {

// Gateway mode of a realm ([realm."X".gateway], issue: WebRTC-to-SIP gateway).
enum class Codec { Opus, Pcmu, Pcma, G722 };  // G722: toward the trunk only (issue 14)
std::string_view to_string(Codec c);

// A SIP URI naming the trunk: sip:HOST[:PORT][;transport=udp|tcp|tls], or sips: (TLS).
struct SipTrunk {
    enum class Transport { Udp, Tcp, Tls };
    std::string uri;   // as written
    std::string host;  // an IP literal (no brackets) or a host name
    std::uint16_t port = 5060;
    Transport transport = Transport::Udp;
    bool sips = false;  // a sips: URI (TLS, and sips: in our Request-URIs and Contact)
    bool has_port = false;   // the URI named a port: no SRV lookup (RFC 3263 §4.2)
};
std::string_view to_string(SipTrunk::Transport t);

// One entry of [realm."X".gateway.agents] (issue 17): the agent's Media Streams WebSocket
// ("ws://..." or "wss://..."; see agent_url.hpp), the Authorization header value of its upgrade
// (its own `authorization`/`authorization_file`, else the gateway's agent_authorization), and
// static customParameters added to `start` after from, to, realm and user, and its media format
// (`media_format`, else the gateway's agent_media_format).
struct AgentEntry {
    AgentUrl url;
    std::string authorization;
    std::vector<std::pair<std::string, std::string>> parameters;
    AgentMediaFormat media_format = AgentMediaFormat::Mulaw;
};

struct Gateway {
    bool enabled = false;
    SipTrunk trunk;
    std::string trunk_username;  // digest auth toward the trunk (401/407); empty = none
    std::string trunk_password;
    // TLS trunks: the CA file (PEM) that signs the trunk's certificate; empty = the system CA
    // store. trunk_tls_verify = false accepts any certificate (testing only).
    std::filesystem::path trunk_ca;
    bool trunk_tls_verify = true;
    bool register_to_trunk = false;  // `register`: REGISTER so the trunk sends inbound calls
    std::string caller_id;           // From user toward the trunk; empty = the browser's user
    // Browser-side preference (opus, pcmu, pcma); g722 anywhere in the list lets the trunk leg
    // use G.722 (offered first, taken when the trunk offers it). Off by default: offers to
    // existing trunks stay as they were.
    std::vector<Codec> codecs{Codec::Opus, Codec::Pcmu, Codec::Pcma};
    std::map<std::string, std::vector<std::string>> routes;            // inbound DID -> users (or one "agent:ws://...")
    std::uint32_t agent_connect_timeout = 3;   // s: agent WebSocket up (TCP, TLS, upgrade) or 503 (issue 17)
    std::uint32_t agent_playout_frames = 500;  // agent audio buffered for playout, 20 ms frames (10 s)
    std::string agent_authorization;           // Authorization header value toward agents; "" = none
    std::uint32_t agent_outbound_max_calls = 10;   // POST /api/v1/calls in progress at once; 0 = API calls off
    std::uint32_t agent_ring_timeout = 30;     // s: an outbound agent call not answered by then is cancelled
    // Of agent: route targets, API calls and agents without their own media_format: mu-law 8 kHz
    // (Twilio's) or L16 16 kHz (agent_url.hpp).
    AgentMediaFormat agent_media_format = AgentMediaFormat::Mulaw;
    // [realm."X".gateway.agents] (issue 17): names a browser user dials -> an AI agent.
    std::map<std::string, AgentEntry> agents;
    // Live calls (issue 11): per browser user (0 = unlimited) and for the realm (0 = its share
    // of server.media_ports: the range's calls divided among the gateway realms).
    std::uint32_t max_calls_per_user = 4;
    std::uint32_t max_calls = 0;
    // RFC 4028 session timers on the trunk leg (issue 13): on by default, as chan_pjsip.
    bool session_timers = true;
    std::uint32_t session_expires = 1800;   // seconds we ask for; >= min_se
    std::uint32_t min_se = 90;              // seconds; RFC 4028 §4: at least 90
    bool late_offer = false;                // outbound INVITEs without SDP (the offer comes in the 200)
    bool rel100 = true;                     // RFC 3262 reliable provisionals with the trunk (PRACK)
    bool test_numbers = false;              // echo, 9196, tone, dtmf go to the built-in test line
    // Identity and number format toward the trunk (issue 13). caller_ids: numbers a browser may
    // put in its From to be the caller for one call (else caller_id); identity: where the caller
    // goes (From only, or also P-Asserted-Identity / Remote-Party-ID); user_phone: ";user=phone"
    // on URIs whose user is a number; e164_plus: "+" policy on numbers we send (unset = as
    // given); tech_prefix: put before the dialled number; national_prefix/national_digits: a
    // number of national_digits digits without "+" is national_prefix + it (inbound DIDs too).
    std::vector<std::string> caller_ids;
    enum class Identity { From, Pai, Rpid } identity = Identity::From;
    bool user_phone = false;
    std::optional<bool> e164_plus;
    std::string tech_prefix;
    std::string national_prefix;
    std::uint32_t national_digits = 10;
    // Blind transfer (issue 14, RFC 3515): a browser's target goes to the trunk in our REFER as
    // <sip:NUMBER@trunk-host> (Sip) or <tel:+E164> (Tel).
    enum class ReferTo { Sip, Tel } refer_to = ReferTo::Sip;
    // Inbound INVITEs (issue 14): accepted from these ranges; empty = the trunk's own addresses.
    std::vector<Cidr> trunk_allow;
    // More addresses of the same trunk ("IP:PORT"), tried in this order after the URI's own
    // targets (issue 14); same transport.
    std::vector<Endpoint> trunk_targets;
    // OPTIONS to each trunk target every this many seconds (3 unanswered: down); 0 = off. By
    // default only a trunk with several targets (something to fail over to) is probed; a
    // single-target trunk only when the key is set.
    std::uint32_t options_interval = 30;
    bool options_interval_set = false;
    // SRTP with SDES keys (RFC 4568) on the trunk leg (issue 14): optional = RFC 8643 opportunistic
    // (RTP/AVP with a=crypto; clear RTP when the trunk answers without keys); required = RTP/SAVP,
    // and a trunk without keys ends the call (never clear media).
    enum class Srtp { Off, Optional, Required } srtp = Srtp::Off;
    // Which trunk of the realm these trunk keys describe (issue 14): `name` of its
    // [[realm."X".gateway.trunks]] table ("default" for the single-trunk form), its index there
    // (0 = the default trunk) and the outbound number prefixes it takes (longest match wins;
    // a number no trunk's prefix matches goes to the default).
    std::string trunk_name = "default";
    std::size_t trunk_index = 0;
    std::vector<std::string> prefixes;
    std::string trunk_table;   // its dotted key, for messages: realm."X".gateway[.trunks[1]]
};

struct Realm {
    std::string name;
    std::map<std::string, std::string> users;  // static long-term credentials: name -> password
    std::string rest_secret;                   // TURN REST API shared secret; empty = off
    std::vector<Endpoint> listen;              // listeners that belong to this realm (realm.X.listen)
    std::uint32_t max_allocations_per_user = 0;  // 0 = use [server] value
    // Accounting and quotas (issue: bandwidth accounting).
    double price_per_gb = 0.0;                 // egress price per 10^9 bytes, for cost estimates
    std::string currency = "USD";
    std::uint64_t max_bitrate = 0;             // bits/s per allocation of a user; 0 = unlimited
    std::uint64_t quota_bytes = 0;             // relayed bytes per user per quota_period; 0 = none
    enum class QuotaPeriod { Day, Month } quota_period = QuotaPeriod::Month;
    Gateway gateway;                           // [realm."X".gateway]; off unless enabled
    // Its gateway's trunks (issue 14), each a copy of this realm whose `gateway` holds that
    // trunk's keys (the realm-wide ones are the same in all): the router and the host take a
    // trunk wherever they took a realm. trunks[0] is the default, and `gateway` above equals
    // trunks[0].gateway. One trunk ("default") for the single-trunk form; none without gateway.
    // The copies have no trunks of their own.
    std::vector<Realm> trunks;
};

struct Accounting {
    std::filesystem::path database;            // absolute; default "turnbridge.db" next to the config
    std::chrono::seconds flush_interval{5};
    // false: nothing reaches the store and the admin API sees no allocations (for measuring
    // what accounting costs; the core's counters are bumped either way).
    bool enabled = true;
};

// [fleet] (issue 15): many nodes sharing one PostgreSQL ledger. Off unless `database` is set.
struct Fleet {
    std::string database;                      // libpq conninfo or postgresql:// URI; "" = no fleet
    std::string node_id;                       // unique per node; default the host name
    std::string region;                        // drain sends new allocations to a node of the same region
    std::uint64_t spool_max_rows = 1'000'000;  // outbox rows kept locally while PostgreSQL is away
    std::chrono::seconds lease_ttl{30};        // a dead node's quota leases return after this
    // What a node does with quota users while PostgreSQL is unreachable.
    enum class QuotaOutage { FailClosed, Grace, FailOpen } quota_outage = QuotaOutage::Grace;
    std::uint64_t quota_grace_bytes = 10'000'000;  // per user per node, for Grace
    std::chrono::seconds drain_timeout{3600};  // a draining node exits after this at the latest
    bool enabled() const { return !database.empty(); }
};

struct Admin {
    std::optional<Endpoint> listen;            // none = no admin HTTP server
    std::string token;                         // bearer token; required unless listen is loopback
};

// [streams]: bounds on every stream listener (issue 11; turnbridge.toml(5)). Per kind: a global
// and a per-source-IP cap on open connections and an idle timeout (0 = none).
struct StreamKindLimits {
    std::uint32_t max_connections = 0;
    std::uint32_t max_connections_per_ip = 0;
    std::chrono::seconds idle_timeout{0};
};

struct Streams {
    // TURN over TCP/TLS: idle_timeout applies only while the connection has no allocation.
    StreamKindLimits turn{8192, 128, std::chrono::seconds(30)};
    StreamKindLimits ws{4096, 64, std::chrono::seconds(900)};    // ws_listen + wss_listen
    StreamKindLimits sip{1024, 32, std::chrono::seconds(900)};   // sip_listen TCP (inbound)
    StreamKindLimits admin{64, 16, std::chrono::seconds(30)};    // keep-alive idle
    std::uint32_t admin_reserved_connections = 8;  // slots only a request with the token may use
    std::chrono::seconds handshake_timeout{10};    // TLS handshake and WebSocket upgrade
    std::chrono::seconds message_timeout{10};      // a started message must be finished by then
    std::chrono::seconds write_timeout{30};        // unsent bytes over write_soft_limit this long
    std::uint32_t write_soft_limit = 256 * 1024;   // stop reading above, resume below
    std::uint32_t write_hard_limit = 4 * 1024 * 1024;  // close above
    std::uint32_t ws_max_message = 64 * 1024;      // RFC 6455 §10.4: a WebSocket message, fragments joined
    std::uint32_t ws_max_fragments = 64;           // frames of one unfinished message
};

struct Config {
    std::filesystem::path file;                // the file it came from (absolute)

    // [server]
    std::vector<Endpoint> listen;              // UDP and TCP on each
    std::vector<Endpoint> tls_listen;          // TURN over TLS
    std::filesystem::path tls_cert;            // absolute (relative paths resolved to the file's dir)
    std::filesystem::path tls_key;
    std::vector<IpAddress> relay_ips;          // at most one per family
    std::optional<IpAddress> external_ip;      // advertised relay address (1:1 NAT); IPv4 relay only
    std::uint16_t relay_port_min = 49152;
    std::uint16_t relay_port_max = 65535;
    // Many UDP allocations per relay port, told apart by peer address and port (turn/shared_peers.hpp);
    // EVEN-PORT and RESERVATION-TOKEN allocations keep ports of their own.
    bool relay_sharing = false;
    std::uint32_t relay_shared_ports = 4;      // per worker and relay address, from relay_ports
    std::string default_realm = "example.org";
    unsigned threads = 0;                      // 0 = one worker per core
    std::string software = "turnbridge";       // SOFTWARE attribute; empty = omit
    std::chrono::seconds default_lifetime{600};  // RFC 8656 §3.2 default allocation lifetime
    std::chrono::seconds max_lifetime{3600};
    std::chrono::seconds nonce_lifetime{600};
    std::uint32_t max_allocations = 0;           // whole server; 0 = unlimited
    // Per user per realm, across all workers; 0 = unlimited. One user must not take every relay
    // port of a public server (issue 11).
    std::uint32_t max_allocations_per_user = 10;
    // RFC 8656 §9, §12 set no limit; a browser needs about one permission per remote candidate IP
    // and one channel per peer it sends to. 0 = unlimited.
    std::uint32_t max_permissions_per_allocation = 64;
    std::uint32_t max_channels_per_allocation = 64;
    std::string log_level = "info";
    std::string log_format = "text";           // "text" or "json" (one object a line, README "Logs")
    // Started as root: switch to this account once every listener is bound and the certificate
    // is loaded (group: the user's primary group unless set). Empty: stay who we are; as root,
    // that needs allow_root when any listener is off loopback.
    std::string user;
    std::string group;
    bool allow_root = false;
    // Gateway mode: SIP over WebSocket toward browsers (RFC 7118), SIP toward trunks, media.
    std::vector<Endpoint> ws_listen;           // HTTP + WebSocket, path /sip
    std::vector<Endpoint> wss_listen;          // the same over TLS (tls_cert, tls_key)
    std::vector<Endpoint> sip_listen;          // SIP over UDP and TCP
    std::optional<IpAddress> media_ip;         // ICE-lite host candidate and RTP toward trunks
    std::uint16_t media_port_min = 22000;
    std::uint16_t media_port_max = 22999;
    // Where trunk names are resolved (c-ares, issue 14); empty = /etc/resolv.conf.
    std::vector<Endpoint> dns_servers;
    // The gateway's SIP bounds toward outsiders (issue 11), turnbridge.toml(5).
    bool sip_hide_from_strangers = false;          // no answer at all over UDP to sources that are no trunk
    std::uint32_t sip_requests_per_second = 20;    // out-of-dialog requests per source IP (0 = unlimited)
    std::uint32_t sip_requests_burst = 40;
    std::uint32_t sip_udp_flows = 4096;            // SIP-over-UDP remote addresses remembered
    std::uint32_t sip_transactions = 8192;         // live server transactions
    std::uint32_t sip_registrations = 10000;       // browser bindings in total
    std::uint32_t sip_registrations_per_user = 10; // ... per user (AOR)
    bool any_gateway() const;
    // gateway.max_calls of `realm`, its default worked out.
    std::uint32_t realm_max_calls(const Realm& realm) const;

    // [security]
    std::vector<Cidr> allowed_peers;           // exempt from the default deny list
    std::vector<Cidr> denied_peers;            // always denied (beats allowed_peers)
    // RFC 8656 §21: answers to unauthenticated UDP requests that are larger
    // than the request, per source IP: `rate` per second (0 = unlimited), at most `burst` within
    // burst/rate seconds. Over the limit they are dropped silently.
    std::uint32_t unauthenticated_rate = 50;
    std::uint32_t unauthenticated_burst = 100;
    // Failed authentications (TURN, SIP digest, admin token) per source IP and per user: a bucket
    // this deep, refilled at this rate; while it is empty the password is not checked. 0 = off.
    std::uint32_t auth_failures_per_minute = 20;

    std::map<std::string, Realm> realms;

    Accounting accounting;                     // [accounting]
    Admin admin;                               // [admin]
    Streams streams;                           // [streams]
    Fleet fleet;                               // [fleet]

    const Realm* find_realm(std::string_view name) const;
    // The realm a listener belongs to (realm.X.listen), else default_realm.
    const Realm* realm_for_listener(const Endpoint& local) const;
    // Relay address of a family, if configured.
    std::optional<IpAddress> relay_ip(Family f) const;
};

// Where a configuration went wrong, for a message naming file, line and key.
struct ConfigError {
    std::string file;
    int line = 0;      // 0 when unknown (e.g. a missing required key)
    std::string key;   // dotted path, e.g. server.relay_ports
    std::string message;
    std::string to_string() const;  // "FILE:LINE: KEY: MESSAGE"
};

using LoadResult = std::variant<std::shared_ptr<const Config>, ConfigError>;

LoadResult load_file(const std::filesystem::path& path);
// For tests: parse from a string as if it were `path` (relative paths resolve next to it).
LoadResult load_string(std::string_view toml_text, const std::filesystem::path& path);

}  // namespace turnbridge::config
