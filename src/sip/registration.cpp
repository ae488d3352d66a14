// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/registration.hpp"

#include <charconv>

#include "text.hpp"
#include "turnbridge/sip/digest.hpp"

namespace turnbridge::sip {
namespace {

std::optional<std::int64_t> seconds(const std::optional<std::string>& v) {
    if (!v || v->empty()) return std::nullopt;
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || p != v->data() + v->size() || n < 0) return std::nullopt;
    return n;
}

// The nonce and stale flag of a 401/407's first Digest challenge.
std::pair<std::string, bool> nonce_of(const Message& r) {
    for (const auto& h : r.auth_headers(r.status() == 407 ? AuthHeader::ProxyAuthenticate : AuthHeader::WwwAuthenticate))
        if (auto p = parse_digest(h)) return {(*p)["nonce"], text::iequal((*p)["stale"], "true")};
    return {"", false};
}

}  // namespace

Registration::Registration(RegistrationConfig config, Random random)
    : config_(std::move(config)), random_(std::move(random)), expires_(config_.expires) {
    call_id_ = config_.local.call_id_prefix + new_call_id(random_, "turnbridge");  // §10.2: one Call-ID for all our REGISTERs
    from_tag_ = new_tag(random_);
}

void Registration::start(Time now, TransportId to, bool reliable, TransactionLayer& layer, std::vector<Action>& out) {
    transport_ = to;
    reliable_ = reliable;
    unregister_ = false;
    state_ = State::Registering;
    send(now, layer, out);
}

void Registration::stop(Time now, TransactionLayer& layer, std::vector<Action>& out) {
    if (state_ == State::Idle) return;
    unregister_ = true;
    state_ = State::Unregistering;
    send(now, layer, out);
}

void Registration::send(Time now, TransactionLayer& layer, std::vector<Action>& out) {
    auto m = std::move(*Message::request("REGISTER", config_.registrar_uri));
    m.push_via(config_.local.transport, config_.local.sent_by, new_branch(random_));
    m.set_from("<" + config_.aor + ">;tag=" + from_tag_);
    m.set_to("<" + config_.aor + ">");
    m.set_call_id(call_id_);
    m.set_cseq(++cseq_, "REGISTER");
    m.add_contact(config_.local.contact);
    m.add_header("Expires", std::to_string(unregister_ ? 0 : expires_.count()));
    m.set_max_forwards(70);
    answered_nonce_.clear();
    if (challenge_) {
        // Answer the last challenge again with the next nonce-count (RFC 2617 §3.2.2), saving a round trip.
        if (auto a = answer_challenge(*challenge_, "REGISTER", config_.registrar_uri, config_.username,
                                      config_.password, random_, ++nc_)) {
            m.add_auth_header(a->header, a->value);
            answered_nonce_ = nonce_of(*challenge_).first;
        }
    }
    wake_.reset();
    tx_ = layer.send_request(now, transport_, reliable_, std::move(m), out);
}

void Registration::fail(Time now, int status) {
    last_status_ = status;
    state_ = unregister_ ? State::Idle : State::Failed;
    tx_.clear();
    if (!unregister_) wake_ = now + config_.retry_after;
}

bool Registration::on_response(Time now, const std::string& tx, const Message& r, TransactionLayer& layer,
                               std::vector<Action>& out) {
    if (tx.empty() || tx != tx_) return false;
    const int status = r.status();
    if (status < 200) return true;
    last_status_ = status;
    if (status == 401 || status == 407) {
        const auto [nonce, stale] = nonce_of(r);
        // The same nonce refused again, not as stale: the password is wrong; don't loop.
        if (nonce.empty() || (nonce == answered_nonce_ && !stale)) {
            fail(now, status);
            return true;
        }
        challenge_.emplace(r.clone());
        nc_ = 0;
        send(now, layer, out);
        return true;
    }
    if (status == 423) {
        // §10.2.8: retry with the registrar's Min-Expires.
        const auto min = seconds(r.header("Min-Expires"));
        if (!min || *min <= expires_.count()) {
            fail(now, status);
            return true;
        }
        expires_ = std::chrono::seconds(*min);
        send(now, layer, out);
        return true;
    }
    if (status >= 300) {
        fail(now, status);
        return true;
    }
    tx_.clear();
    if (unregister_) {
        state_ = State::Idle;
        wake_.reset();
        return true;
    }
    // §10.2.4: the registrar's expires for our Contact wins, then the Expires header.
    std::optional<std::int64_t> granted;
    const auto& contact = config_.local.contact;  // "<sip:...>": compare the URI inside
    const auto open = contact.find('<'), close = contact.find('>');
    const std::string our_uri = open != std::string::npos && close > open ? contact.substr(open + 1, close - open - 1) : contact;
    for (const auto& c : r.contacts())
        if (c.uri == our_uri) granted = seconds(c.param("expires"));
    if (!granted) granted = seconds(r.header("Expires"));
    granted_ = std::chrono::seconds(granted.value_or(expires_.count()));
    state_ = State::Registered;
    wake_ = now + std::max<Duration>(granted_ / 2, std::chrono::seconds(1));
    return true;
}

bool Registration::on_timeout(Time now, const std::string& tx) {
    if (tx.empty() || tx != tx_) return false;
    fail(now, 408);
    return true;
}

void Registration::on_timer(Time now, TransactionLayer& layer, std::vector<Action>& out) {
    if (!wake_ || now < *wake_) return;
    if (state_ == State::Registered || state_ == State::Failed) {
        state_ = State::Registering;
        send(now, layer, out);
    }
}

std::optional<Time> Registration::next_wake() const { return wake_; }

}  // namespace turnbridge::sip
