// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/registrar.hpp"

#include <algorithm>
#include <charconv>

namespace turnbridge::sip {
namespace {

std::optional<std::int64_t> seconds(std::optional<std::string> v) {
    if (!v || v->empty()) return std::nullopt;
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || p != v->data() + v->size() || n < 0) return std::nullopt;
    return n;
}

// "sip:alice@example.org;x" -> "alice"
std::string user_of(std::string_view uri) {
    const auto colon = uri.find(':');
    const auto at = uri.find('@');
    if (colon == std::string_view::npos || at == std::string_view::npos || at < colon) return {};
    return std::string(uri.substr(colon + 1, at - colon - 1));
}

// Same binding: RFC 5626 §6 (instance and reg-id) when the UA gave them, else the Contact URI.
bool same(const Binding& b, const NameAddr& c, const std::string& instance, const std::string& reg_id) {
    if (!instance.empty() || !b.instance.empty()) return b.instance == instance && b.reg_id == reg_id;
    return b.contact == c.uri;
}

}  // namespace

Message Registrar::on_register(Time now, TransportId from, const Message& req, std::string_view user,
                               std::string_view realm, std::string_view to_tag) {
    const auto to = req.to();
    if (!to || user_of(to->uri) != user) return Message::response(req, 403, "Forbidden (To is not the authenticated user)", to_tag);
    const std::string aor = std::string(user) + "@" + std::string(realm);
    const auto header_expires = seconds(req.header("Expires"));
    const auto contacts = req.contacts();
    on_timer(now);
    auto bindings = lookup(aor);  // a copy: an error response leaves the table untouched
    const std::size_t before = bindings.size();

    const bool star = std::any_of(contacts.begin(), contacts.end(), [](const NameAddr& c) { return c.uri == "*"; });
    if (star) {
        // §10.3 step 6: "*" only alone and only with Expires: 0.
        if (contacts.size() != 1 || header_expires != 0) return Message::response(req, 400, "Contact: * needs Expires: 0", to_tag);
        bindings.clear();
    }
    for (const auto& c : star ? std::vector<NameAddr>{} : contacts) {
        auto expires = seconds(c.param("expires"));
        if (!expires) expires = header_expires;
        const std::int64_t want = expires.value_or(config_.default_expires.count());
        if (want != 0 && want < config_.min_expires.count()) {
            auto r = Message::response(req, 423, {}, to_tag);
            r.add_header("Min-Expires", std::to_string(config_.min_expires.count()));
            return r;
        }
        const std::string instance = c.param("+sip.instance").value_or("");
        const std::string reg_id = c.param("reg-id").value_or("");
        auto it = std::find_if(bindings.begin(), bindings.end(), [&](const Binding& b) { return same(b, c, instance, reg_id); });
        // §10.3 step 7: the same Call-ID must come with a higher CSeq.
        if (it != bindings.end() && it->call_id == req.call_id() && it->cseq >= req.cseq())
            return Message::response(req, 500, "CSeq out of order", to_tag);
        if (want == 0) {
            if (it != bindings.end()) bindings.erase(it);
            continue;
        }
        Binding b{c.uri, from, now + std::chrono::seconds(std::min<std::int64_t>(want, config_.max_expires.count())),
                  instance, reg_id, req.call_id(), req.cseq()};
        if (it != bindings.end()) {
            *it = std::move(b);
        } else if (count_ >= config_.max_bindings) {
            // The registrar is full (issue 11): RFC 3261 §21.5.4, no new binding now.
            ++refused_;
            auto r = Message::response(req, 503, "Too Many Registrations", to_tag);
            r.add_header("Retry-After", "60");
            return r;
        } else {
            if (bindings.size() >= config_.max_bindings_per_aor) {
                // Keep the table bounded: the binding closest to expiry makes room.
                bindings.erase(std::min_element(bindings.begin(), bindings.end(),
                                                [](const Binding& x, const Binding& y) { return x.expires_at < y.expires_at; }));
            }
            bindings.push_back(std::move(b));
        }
    }
    auto ok = Message::response(req, 200, {}, to_tag);
    for (const auto& b : bindings) {
        const auto left = std::chrono::duration_cast<std::chrono::seconds>(b.expires_at - now).count();
        std::string v = "<" + b.contact + ">;expires=" + std::to_string(left);
        if (!b.instance.empty()) v += ";+sip.instance=" + b.instance + ";reg-id=" + b.reg_id;
        ok.add_contact(v);
    }
    // O(this AOR) bookkeeping: next_ may stay earlier than the true earliest expiry (a binding
    // that was the earliest got refreshed or removed); on_timer then walks once and recomputes.
    count_ = count_ - before + bindings.size();
    for (const auto& b : bindings)
        if (!next_ || b.expires_at < *next_) next_ = b.expires_at;
    if (bindings.empty()) table_.erase(aor);
    else table_[aor] = std::move(bindings);
    return ok;
}

void Registrar::on_timer(Time now) {
    if (!next_ || *next_ > now) return;   // nothing due: no walk over the table
    for (auto it = table_.begin(); it != table_.end();) {
        auto& v = it->second;
        v.erase(std::remove_if(v.begin(), v.end(), [&](const Binding& b) { return b.expires_at <= now; }), v.end());
        it = v.empty() ? table_.erase(it) : std::next(it);
    }
    changed();
}

std::optional<Time> Registrar::next_expiry() const { return next_; }

void Registrar::changed() {
    count_ = 0;
    next_.reset();
    for (const auto& [aor, v] : table_)
        for (const auto& b : v) {
            ++count_;
            if (!next_ || b.expires_at < *next_) next_ = b.expires_at;
        }
}

void Registrar::on_transport_closed(TransportId transport) {
    for (auto it = table_.begin(); it != table_.end();) {
        auto& v = it->second;
        v.erase(std::remove_if(v.begin(), v.end(), [&](const Binding& b) { return b.transport == transport; }), v.end());
        it = v.empty() ? table_.erase(it) : std::next(it);
    }
    changed();
}

std::vector<std::pair<std::string, Binding>> Registrar::all() const {
    std::vector<std::pair<std::string, Binding>> out;
    out.reserve(count_);
    for (const auto& [aor, v] : table_)
        for (const auto& b : v) out.emplace_back(aor, b);
    return out;
}

std::vector<Binding> Registrar::lookup(std::string_view aor) const {
    auto it = table_.find(aor);
    return it == table_.end() ? std::vector<Binding>{} : it->second;
}

}  // namespace turnbridge::sip
