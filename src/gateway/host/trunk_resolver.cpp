// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/host/trunk_resolver.hpp"

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/loop_clock.hpp"

namespace turnbridge::gateway::host {

// One name's lookup: its SRV records' targets resolve in parallel; the last one reports.
struct TrunkResolver::Lookup {
    std::string name;
    std::vector<gateway::TrunkTarget> found;
    std::size_t pending = 0;
    std::string error;
};

TrunkResolver::TrunkResolver(uv_loop_t* loop, const std::vector<Endpoint>& dns_servers, std::function<void()> changed)
    : loop_(loop), changed_(std::move(changed)) {
    std::string why;
    dns_ = io::DnsResolver::create(loop_, dns_servers, why);
    if (!dns_) log::error("gateway: cannot start the DNS resolver (c-ares): {}; trunk names will not resolve", why);
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    open_ = true;
}

void TrunkResolver::set_names(const std::vector<gateway::TrunkName>& names) {
    hosts_.set_lookups(names);
    kick();
}

void TrunkResolver::kick() {
    if (!open_) return;
    const auto now = io::read_clock().mono;
    std::vector<std::string> due;
    hosts_.due(now, due);
    for (const auto& name : due) start(name);
    if (auto next = hosts_.next_wake()) {
        const auto ms = *next <= now ? 0 : std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
        uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<TrunkResolver*>(t->data)->kick(); },
                       static_cast<std::uint64_t>(ms), 0);
    } else {
        uv_timer_stop(&timer_);
    }
}

void TrunkResolver::start(const std::string& name) {
    const auto* how = hosts_.lookup(name);
    if (!dns_ || how == nullptr) {
        on_result(name, {}, "no resolver");
        return;
    }
    auto l = std::make_shared<Lookup>();
    l->name = name;
    const std::uint16_t port = how->port;
    auto plain = [this, l, port] {
        dns_->addresses(l->name, [this, l, port](std::vector<IpAddress> ips, const std::string& error) {
            std::vector<gateway::TrunkTarget> found;
            for (const auto& ip : ips) found.push_back({0, 0, Endpoint{ip, port}});
            on_result(l->name, std::move(found), error);
        });
    };
    if (how->service.empty()) return plain();
    // RFC 3263 §4.2: SRV for the transport; no records at all -> the name's A/AAAA (§4.2 end).
    dns_->srv(how->service + "." + name, [this, l, plain](std::vector<io::SrvRecord> records, const std::string&) {
        // RFC 2782: a single record with target "." says the service is not offered there.
        if (records.size() == 1 && (records[0].target.empty() || records[0].target == ".")) {
            on_result(l->name, {}, "SRV says no SIP service here");
            return;
        }
        if (records.empty()) return plain();
        resolve_targets(l, std::move(records));
    });
}

void TrunkResolver::resolve_targets(const std::shared_ptr<Lookup>& l, std::vector<io::SrvRecord> records) {
    l->pending = records.size();
    for (auto& r : records) {
        dns_->addresses(r.target, [this, l, r](std::vector<IpAddress> ips, const std::string& error) {
            for (const auto& ip : ips) l->found.push_back({r.priority, r.weight, Endpoint{ip, r.port}});
            if (ips.empty()) l->error = r.target + ": " + (error.empty() ? "no addresses" : error);
            if (--l->pending == 0) on_result(l->name, std::move(l->found), l->error);
        });
    }
}

void TrunkResolver::on_result(const std::string& name, std::vector<gateway::TrunkTarget> found,
                              const std::string& error) {
    if (!open_) return;
    const bool had = hosts_.state(name) == gateway::TrunkHosts::State::Ready;
    const bool none = found.empty();
    const std::string why = error.empty() ? "no addresses" : error;
    hosts_.on_targets(io::read_clock().mono, name, std::move(found), none ? why : std::string());
    if (none) {
        log::warn("gateway: cannot resolve trunk host {}: {}{}", name, why, had ? " (keeping its last addresses)" : "");
    } else {
        std::string list;
        for (const auto& t : hosts_.targets(name))
            list += fmt::format("{}{} (priority {}, weight {})", list.empty() ? "" : ", ", t.to.to_string(), t.priority,
                                t.weight);
        log::debug("gateway: trunk host {} is {}", name, list);
    }
    kick();
    changed_();
}

void TrunkResolver::close() {
    if (!open_) return;
    open_ = false;
    if (dns_) dns_->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

}  // namespace turnbridge::gateway::host
