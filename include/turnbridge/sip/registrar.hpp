// SPDX-License-Identifier: Apache-2.0
#pragma once
// The location service for browsers registered over WebSocket (RFC 3261 §10.3, RFC 5626 for
// +sip.instance/reg-id): AOR "user@realm" -> bindings, each tied to the WebSocket connection
// it came on, so an inbound call forks to every connection of the routed users.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/sip/action.hpp"

namespace turnbridge::sip {

struct Binding {
    std::string contact;          // the Contact URI, e.g. "sip:kd3b3o1r@3b5kq2ugmd6u.invalid;transport=ws"
    TransportId transport = 0;    // the connection it registered on; requests go back on it (RFC 7118 §5)
    Time expires_at;
    std::string instance;         // +sip.instance, "" if none
    std::string reg_id;
    std::string call_id;          // §10.3 step 7: the last REGISTER that touched it
    std::uint32_t cseq = 0;
};

struct RegistrarConfig {
    std::chrono::seconds default_expires{600};   // when the REGISTER names none
    std::chrono::seconds min_expires{60};        // shorter (non-zero) gets 423 (§10.3 step 7)
    std::chrono::seconds max_expires{3600};      // longer is cut down
    // Bounds (issue 11): per AOR the binding closest to expiry makes room for a new one; in
    // total a new binding beyond the bound gets 503 (refreshes and removals still work).
    std::size_t max_bindings_per_aor = 10;
    std::size_t max_bindings = 10000;
};

class Registrar {
public:
    explicit Registrar(RegistrarConfig config = {}) : config_(config) {}
    void set_limits(std::size_t per_aor, std::size_t total) {
        config_.max_bindings_per_aor = per_aor == 0 ? 1 : per_aor;
        config_.max_bindings = total;
    }

    // An authenticated REGISTER (digest already checked) from `user` of `realm`: returns the
    // response to send. 403 if the To user is not the authenticated one (§10.3 step 4),
    // 423 with Min-Expires, 400 for "Contact: *" with a non-zero Expires, else 200 listing
    // the AOR's current bindings with their remaining expires.
    Message on_register(Time now, TransportId from, const Message& request, std::string_view user,
                        std::string_view realm, std::string_view to_tag);

    void on_timer(Time now);                     // drops expired bindings
    // When on_timer has work: never after the earliest expiry (it may come early, then on_timer
    // finds nothing and tells the true one).
    std::optional<Time> next_expiry() const;
    void on_transport_closed(TransportId transport);  // a WebSocket went away: its bindings go too
    // Every live binding of `aor` ("user@realm"), for forking an inbound INVITE.
    std::vector<Binding> lookup(std::string_view aor) const;
    // Every live binding with its AOR (fleet mode, issue 15: the shipper copies them to PostgreSQL).
    std::vector<std::pair<std::string, Binding>> all() const;
    std::size_t size() const { return count_; }
    // New bindings refused with 503 because the registrar held max_bindings.
    std::uint64_t refused() const { return refused_; }

private:
    void changed();   // recount and recompute next_ after the table changed

    RegistrarConfig config_;
    std::map<std::string, std::vector<Binding>, std::less<>> table_;
    std::size_t count_ = 0;
    std::optional<Time> next_;   // no later than the earliest expiry, so next_expiry() is O(1)
    std::uint64_t refused_ = 0;
};

}  // namespace turnbridge::sip
