// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/host/trunk_resolver.hpp"

#include <algorithm>
#include <netdb.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/io/loop_clock.hpp"

namespace turnbridge::gateway::host {

struct TrunkResolver::Lookup {
    uv_getaddrinfo_t req{};
    TrunkResolver* owner = nullptr;   // nullptr once the resolver closed: drop the result
    std::string name;
};

TrunkResolver::TrunkResolver(uv_loop_t* loop, std::function<void()> changed)
    : loop_(loop), changed_(std::move(changed)) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    open_ = true;
}

void TrunkResolver::set_names(const std::vector<std::string>& names) {
    hosts_.set_names(names);
    kick();
}

void TrunkResolver::kick() {
    if (!open_) return;
    const auto now = io::read_clock().mono;
    std::vector<std::string> due;
    hosts_.due(now, due);
    for (auto& name : due) {
        auto* l = new Lookup{{}, this, std::move(name)};
        l->req.data = l;
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;   // one entry per address (not one per socket type)
        const int err = uv_getaddrinfo(loop_, &l->req, [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
            auto* l = static_cast<Lookup*>(req->data);
            if (l->owner != nullptr) {
                auto& r = l->owner->running_;
                r.erase(std::remove(r.begin(), r.end(), l), r.end());
                l->owner->on_result(l->name, status, res);
            }
            uv_freeaddrinfo(res);
            delete l;
        }, l->name.c_str(), nullptr, &hints);
        if (err != 0) {
            const std::string n = l->name;
            delete l;
            on_result(n, err, nullptr);
            continue;
        }
        running_.push_back(l);
    }
    if (auto next = hosts_.next_wake()) {
        const auto ms = *next <= now ? 0 : std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
        uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<TrunkResolver*>(t->data)->kick(); },
                       static_cast<std::uint64_t>(ms), 0);
    } else {
        uv_timer_stop(&timer_);
    }
}

void TrunkResolver::on_result(const std::string& name, int status, const addrinfo* res) {
    std::vector<IpAddress> found;
    for (const addrinfo* a = res; status == 0 && a != nullptr; a = a->ai_next)
        if (auto ep = Endpoint::from_sockaddr(a->ai_addr)) found.push_back(ep->ip);
    const bool had = hosts_.state(name) == gateway::TrunkHosts::State::Ready;
    const std::string why = status != 0 ? uv_strerror(status) : "no addresses";
    hosts_.on_resolved(io::read_clock().mono, name, found, found.empty() ? why : std::string());
    if (found.empty()) {
        log::warn("gateway: cannot resolve trunk host {}: {}{}", name, why, had ? " (keeping its last addresses)" : "");
    } else {
        std::string list;
        for (const auto& ip : hosts_.addresses(name)) list += (list.empty() ? "" : ", ") + ip.to_string();
        log::debug("gateway: trunk host {} is {}", name, list);
    }
    if (!open_) return;
    kick();
    changed_();
}

void TrunkResolver::close() {
    if (!open_) return;
    open_ = false;
    for (auto* l : running_) {
        l->owner = nullptr;
        uv_cancel(reinterpret_cast<uv_req_t*>(&l->req));   // fails harmlessly once it runs
    }
    running_.clear();
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

}  // namespace turnbridge::gateway::host
