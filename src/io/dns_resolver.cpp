// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/io/dns_resolver.hpp"

#include <ares.h>
#include <arpa/nameser.h>
#include <map>
#include <netdb.h>

namespace turnbridge::io {

struct DnsResolver::Impl {
    uv_loop_t* loop = nullptr;
    ares_channel channel = nullptr;
    uv_timer_t* timer = nullptr;               // heap: closed (and freed) after the Impl may be gone
    std::map<ares_socket_t, uv_poll_t*> polls;
    bool closed = false;

    // c-ares asks us to watch a socket for reading/writing (or to stop: both false).
    static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
        auto* self = static_cast<Impl*>(data);
        auto it = self->polls.find(fd);
        if (!readable && !writable) {
            if (it == self->polls.end()) return;
            uv_close(reinterpret_cast<uv_handle_t*>(it->second), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
            self->polls.erase(it);
            return;
        }
        if (self->closed) return;
        uv_poll_t* p = nullptr;
        if (it == self->polls.end()) {
            p = new uv_poll_t{};
            if (uv_poll_init_socket(self->loop, p, fd) != 0) {
                delete p;
                return;   // the query times out through the timer instead
            }
            p->data = self;
            self->polls.emplace(fd, p);
        } else {
            p = it->second;
        }
        const int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
        uv_poll_start(p, events, [](uv_poll_t* h, int status, int ev) {
            auto* self = static_cast<Impl*>(h->data);
            ares_socket_t sock = ARES_SOCKET_BAD;
            for (const auto& [fd, poll] : self->polls)
                if (poll == h) sock = fd;
            if (sock == ARES_SOCKET_BAD) return;
            // An error on the socket: let c-ares read and write, so that it notices and retries.
            const bool r = status < 0 || (ev & UV_READABLE) != 0;
            const bool w = status < 0 || (ev & UV_WRITABLE) != 0;
            ares_process_fd(self->channel, r ? sock : ARES_SOCKET_BAD, w ? sock : ARES_SOCKET_BAD);
            self->arm();
        });
    }

    // c-ares' own timeouts (retransmission to the next server, giving up) on one timer.
    void arm() {
        if (closed) return;
        timeval buf{};
        const timeval* tv = ares_timeout(channel, nullptr, &buf);
        if (tv == nullptr) {
            uv_timer_stop(timer);
            return;
        }
        const std::uint64_t ms = static_cast<std::uint64_t>(tv->tv_sec) * 1000 + static_cast<std::uint64_t>(tv->tv_usec) / 1000;
        uv_timer_start(timer, [](uv_timer_t* t) {
            auto* self = static_cast<Impl*>(t->data);
            ares_process_fd(self->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            self->arm();
        }, ms, 0);
    }
};

namespace {

struct SrvQuery {
    DnsResolver::Impl* impl;
    DnsResolver::SrvDone done;
};
struct AddressQuery {
    DnsResolver::Impl* impl;
    DnsResolver::AddressesDone done;
};

}  // namespace

std::unique_ptr<DnsResolver> DnsResolver::create(uv_loop_t* loop, const std::vector<Endpoint>& servers, std::string& why) {
    static const int lib = ares_library_init(ARES_LIB_INIT_ALL);
    if (lib != ARES_SUCCESS) {
        why = ares_strerror(lib);
        return nullptr;
    }
    auto impl = std::make_unique<Impl>();
    impl->loop = loop;
    ares_options opts{};
    opts.sock_state_cb = &Impl::on_sock_state;
    opts.sock_state_cb_data = impl.get();
    // A trunk lookup should fail over to the next server quickly: 2 s per try, 2 tries per server.
    opts.timeout = 2000;
    opts.tries = 2;
    const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    if (const int rc = ares_init_options(&impl->channel, &opts, mask); rc != ARES_SUCCESS) {
        why = ares_strerror(rc);
        return nullptr;
    }
    if (!servers.empty()) {
        std::string csv;
        for (const auto& s : servers) csv += (csv.empty() ? "" : ",") + s.to_string();
        if (const int rc = ares_set_servers_ports_csv(impl->channel, csv.c_str()); rc != ARES_SUCCESS) {
            why = std::string("dns_servers: ") + ares_strerror(rc);
            ares_destroy(impl->channel);
            return nullptr;
        }
    }
    impl->timer = new uv_timer_t{};
    uv_timer_init(loop, impl->timer);
    impl->timer->data = impl.get();
    return std::unique_ptr<DnsResolver>(new DnsResolver(std::move(impl)));
}

DnsResolver::DnsResolver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DnsResolver::~DnsResolver() { close(); }

void DnsResolver::srv(const std::string& name, SrvDone done) {
    if (impl_->closed) return;
    auto* q = new SrvQuery{impl_.get(), std::move(done)};
    ares_query(impl_->channel, name.c_str(), ns_c_in, ns_t_srv,
               [](void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
                   auto* q = static_cast<SrvQuery*>(arg);
                   std::unique_ptr<SrvQuery> owned(q);
                   if (status == ARES_EDESTRUCTION || q->impl->closed) return;
                   std::vector<SrvRecord> records;
                   ares_srv_reply* reply = nullptr;
                   if (status == ARES_SUCCESS) status = ares_parse_srv_reply(abuf, alen, &reply);
                   for (auto* r = reply; r != nullptr; r = r->next)
                       records.push_back(SrvRecord{r->priority, r->weight, r->port, r->host});
                   if (reply != nullptr) ares_free_data(reply);
                   q->done(std::move(records), status == ARES_SUCCESS ? std::string() : ares_strerror(status));
               },
               q);
    impl_->arm();
}

void DnsResolver::addresses(const std::string& name, AddressesDone done) {
    if (impl_->closed) return;
    auto* q = new AddressQuery{impl_.get(), std::move(done)};
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;   // the order is ours to choose (the family of sip_listen)
    ares_getaddrinfo(impl_->channel, name.c_str(), nullptr, &hints,
                     [](void* arg, int status, int /*timeouts*/, ares_addrinfo* res) {
                         auto* q = static_cast<AddressQuery*>(arg);
                         std::unique_ptr<AddressQuery> owned(q);
                         std::vector<IpAddress> found;
                         for (auto* n = res ? res->nodes : nullptr; n != nullptr; n = n->ai_next)
                             if (auto ep = Endpoint::from_sockaddr(n->ai_addr)) found.push_back(ep->ip);
                         if (res != nullptr) ares_freeaddrinfo(res);
                         if (status == ARES_EDESTRUCTION || q->impl->closed) return;
                         q->done(std::move(found), status == ARES_SUCCESS ? std::string() : ares_strerror(status));
                     },
                     q);
    impl_->arm();
}

void DnsResolver::close() {
    if (!impl_ || impl_->closed) return;
    impl_->closed = true;
    ares_destroy(impl_->channel);   // runs every pending callback with ARES_EDESTRUCTION (dropped)
    for (auto& [fd, p] : impl_->polls)
        uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    impl_->polls.clear();
    uv_close(reinterpret_cast<uv_handle_t*>(impl_->timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

}  // namespace turnbridge::io
