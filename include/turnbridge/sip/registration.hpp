// SPDX-License-Identifier: Apache-2.0
#pragma once
// Our own registration at the operator's trunk (RFC 3261 §10.2) when [gateway] register is on:
// REGISTER, answer 401/407 with digest, obey 423 Min-Expires, refresh at half the granted
// time, retry after failures. Drives a TransactionLayer; the caller routes our responses back.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/sip/dialog.hpp"
#include "turnbridge/sip/transaction.hpp"

namespace turnbridge::sip {

struct RegistrationConfig {
    std::string registrar_uri;              // Request-URI, e.g. "sip:127.0.0.1:5070;transport=udp"
    std::string aor;                        // To and From, e.g. "sip:gw-user@trunk.example"
    std::string username, password;         // trunk_username / trunk_password
    LocalAddress local;                     // Via sent-by and our Contact
    std::chrono::seconds expires{3600};
    std::chrono::seconds retry_after{60};   // after a failure or timeout
};

class Registration {
public:
    enum class State { Idle, Registering, Registered, Failed, Unregistering };

    Registration(RegistrationConfig config, Random random);

    void start(Time now, TransportId to, bool reliable, TransactionLayer& layer, std::vector<Action>& out);
    // Unregister (Expires: 0); Idle once the registrar confirms.
    void stop(Time now, TransactionLayer& layer, std::vector<Action>& out);
    // Feed every ResponseIn / TransactionTimeout; returns true if it was this registration's.
    bool on_response(Time now, const std::string& tx, const Message& response, TransactionLayer& layer,
                     std::vector<Action>& out);
    bool on_timeout(Time now, const std::string& tx);
    void on_timer(Time now, TransactionLayer& layer, std::vector<Action>& out);
    std::optional<Time> next_wake() const;

    State state() const { return state_; }
    std::chrono::seconds granted() const { return granted_; }
    int last_status() const { return last_status_; }   // for logs: why it failed

private:
    void send(Time now, TransactionLayer& layer, std::vector<Action>& out);
    void fail(Time now, int status);

    RegistrationConfig config_;
    Random random_;
    State state_ = State::Idle;
    std::string call_id_, from_tag_, tx_;
    std::uint32_t cseq_ = 0;
    TransportId transport_ = 0;
    bool reliable_ = false;
    bool unregister_ = false;
    std::chrono::seconds expires_;
    std::chrono::seconds granted_{0};
    std::optional<Message> challenge_;   // the last 401/407, answered again on each refresh
    std::uint32_t nc_ = 0;
    std::string answered_nonce_;         // nonce our last request answered
    std::optional<Time> wake_;
    int last_status_ = 0;
};

}  // namespace turnbridge::sip
