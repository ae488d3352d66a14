// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/io/connection_gate.hpp"

namespace turnbridge::io {
namespace {

// One IPv6 host usually holds a whole /64 (RFC 4291 §2.5.4 interface identifiers), so the
// per-IP cap counts the /64: otherwise one host would get 2^64 times the cap.
IpAddress source_key(const IpAddress& ip) {
    if (ip.family == Family::V4) return ip;
    IpAddress k = ip;
    for (std::size_t i = 8; i < 16; ++i) k.bytes[i] = 0;
    return k;
}

}  // namespace

GateTicket& GateTicket::operator=(GateTicket&& o) noexcept {
    if (this != &o) {
        reset();
        gate_ = o.gate_;
        ip_ = o.ip_;
        o.gate_ = nullptr;
    }
    return *this;
}

void GateTicket::reset() {
    if (gate_ == nullptr) return;
    gate_->release(ip_);
    gate_ = nullptr;
}

void ConnectionGate::set_limits(GateLimits l) {
    std::lock_guard lock(mu_);
    limits_ = l;
}

GateLimits ConnectionGate::limits() const {
    std::lock_guard lock(mu_);
    return limits_;
}

GateTicket ConnectionGate::admit(const IpAddress& ip) {
    const IpAddress key = source_key(ip);
    {
        std::lock_guard lock(mu_);
        std::optional<Refusal> no;
        if (limits_.max_connections != 0 && open_ >= limits_.max_connections) no = Refusal::Global;
        auto it = per_ip_.find(key);
        if (!no && limits_.max_per_ip != 0 && it != per_ip_.end() && it->second >= limits_.max_per_ip)
            no = Refusal::PerIp;
        if (!no) {
            ++open_;
            if (it == per_ip_.end()) per_ip_.emplace(key, 1);
            else ++it->second;
            stats_.opened(kind_);
            return GateTicket(this, key);
        }
        stats_.refused(kind_, *no);
    }
    return {};
}

void ConnectionGate::release(const IpAddress& key) {
    std::lock_guard lock(mu_);
    if (open_ > 0) --open_;
    if (auto it = per_ip_.find(key); it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
    stats_.gone(kind_);
}

std::size_t ConnectionGate::open() const {
    std::lock_guard lock(mu_);
    return open_;
}

std::size_t ConnectionGate::open_from(const IpAddress& ip) const {
    std::lock_guard lock(mu_);
    auto it = per_ip_.find(source_key(ip));
    return it == per_ip_.end() ? 0 : it->second;
}

}  // namespace turnbridge::io
