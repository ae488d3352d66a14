// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/ice_lite.hpp"

#include <algorithm>
#include <array>

#include "turnbridge/stun/integrity.hpp"

namespace turnbridge::gateway {
namespace {

using stun::Bytes;

Bytes key_of(const std::string& pwd) { return {reinterpret_cast<const std::uint8_t*>(pwd.data()), pwd.size()}; }

// RFC 8489 §9.1.3: an error to an authenticated request is signed (the only kind we answer).
std::size_t error_response(const stun::Message& req, std::uint16_t code, std::string_view reason,
                           const std::string& sign_with, std::span<const std::uint16_t> unknown,
                           stun::MutableBytes out) {
    stun::MessageBuilder b(out, stun::method::Binding, stun::Class::Error, req.transaction_id());
    b.add_error_code(code, reason);
    if (!unknown.empty()) b.add_unknown_attributes(unknown);
    b.add_message_integrity(key_of(sign_with));
    b.add_fingerprint();
    return b.ok() ? b.size() : 0;
}

// RFC 8445 §7.3: "<our ufrag>:<their ufrag>".
bool username_matches(std::string_view user, const IceCredentials& local, const IceCredentials& remote) {
    const auto colon = user.find(':');
    if (colon == std::string_view::npos || user.substr(0, colon) != local.ufrag) return false;
    return remote.ufrag.empty() || user.substr(colon + 1) == remote.ufrag;
}

}  // namespace

IceLiteResponder::Outcome IceLiteResponder::on_stun(Time now, const Endpoint& from, stun::Bytes datagram,
                                                    stun::MutableBytes out) {
    Outcome o;
    auto msg = stun::Message::parse(datagram);
    // Only requests get answers; Binding indications are keepalives (RFC 8445 §11) and lite
    // agents send no checks, so responses are not ours either.
    if (!msg || msg->method() != stun::method::Binding || msg->cls() != stun::Class::Request) return o;
    // RFC 8445 §7.2.2: checks carry FINGERPRINT; a bad one means this was not STUN at all.
    if (!msg->find(stun::attr::Fingerprint) || !stun::check_fingerprint(*msg)) return o;
    const auto user = msg->get_string(stun::attr::Username);
    // Deviation (header): no 400/401 for a check without our credentials; nothing at all.
    if (!user || !msg->find(stun::attr::MessageIntegrity) || !username_matches(*user, local_, remote_) ||
        !stun::check_message_integrity(*msg, key_of(local_.pwd))) {
        o.rejected = true;
        return o;
    }
    // RFC 8489 §6.3.1: unknown comprehension-required attributes get 420.
    std::array<std::uint16_t, 8> unknown{};
    std::size_t n_unknown = 0;
    for (const auto& a : msg->attributes()) {
        switch (a.type) {
        case stun::attr::Username: case stun::attr::MessageIntegrity: case stun::attr::MessageIntegritySha256:
        case stun::attr::Priority: case stun::attr::UseCandidate: case stun::attr::Fingerprint:
            break;
        default:
            if (stun::attr::comprehension_required(a.type) && n_unknown < unknown.size()) unknown[n_unknown++] = a.type;
        }
    }
    if (n_unknown > 0) {
        o.response_size = error_response(*msg, 420, "Unknown Attribute", local_.pwd, {unknown.data(), n_unknown}, out);
        return o;
    }
    // RFC 8445 §7.3.1.1: both sides controlled is a conflict; a lite agent cannot take the
    // controlling role (§6.1.1), so it always answers 487 and the full agent switches.
    if (msg->find(stun::attr::IceControlled)) {
        o.response_size = error_response(*msg, kRoleConflict, "Role Conflict", local_.pwd, {}, out);
        return o;
    }
    o.valid = true;
    last_consent_ = now;
    if (!checked(from)) valid_[n_valid_++ % kMaxValid] = from;
    if (msg->find(stun::attr::UseCandidate) && msg->find(stun::attr::IceControlling)) {
        o.nominated = true;
        selected_ = from;
    }
    // RFC 8445 §7.3.1.2 / RFC 8489 §7.3.1: success with the source as XOR-MAPPED-ADDRESS.
    stun::MessageBuilder b(out, stun::method::Binding, stun::Class::Success, msg->transaction_id());
    b.add_xor_address(stun::attr::XorMappedAddress, from);
    b.add_message_integrity(key_of(local_.pwd));
    b.add_fingerprint();
    o.response_size = b.ok() ? b.size() : 0;
    return o;
}

bool IceLiteResponder::accepts(const Endpoint& from) const {
    return selected_ ? *selected_ == from : checked(from);
}

bool IceLiteResponder::checked(const Endpoint& from) const {
    const auto seen = valid_.begin() + static_cast<std::ptrdiff_t>(std::min(n_valid_, kMaxValid));
    return std::find(valid_.begin(), seen, from) != seen;
}

}  // namespace turnbridge::gateway
