// SPDX-License-Identifier: Apache-2.0
#pragma once
// A relay binder for fuzzing: hands out handles and ports, never touches a socket.
#include <map>
#include <set>

#include "turnbridge/turn/relay_binder.hpp"

namespace turnbridge::fuzz {

class FuzzBinder : public turn::RelayBinder {
public:
    Result<turn::RelaySocket> bind(Family f, bool even, bool reserve, std::uint64_t& token) override {
        if (open_.size() > 64) return Error{StunCode::InsufficientCapacity, 0, "full"};
        std::uint16_t port = next_port_++;
        if (even && port % 2) port = next_port_++;
        if (reserve) {
            token = 0x1000 + port;
            reserved_[token] = {f, static_cast<std::uint16_t>(port + 1)};
            ++next_port_;
        }
        return open(f, port);
    }
    Result<turn::RelaySocket> claim(std::uint64_t token) override {
        auto it = reserved_.find(token);
        if (it == reserved_.end()) return Error{StunCode::InsufficientCapacity, 0, "no token"};
        auto [f, port] = it->second;
        reserved_.erase(it);
        return open(f, port);
    }
    void release(turn::RelayHandle h) override {
        if (open_.erase(h) != 1) __builtin_trap();  // double release is a bug
    }
    std::size_t open_count() const { return open_.size(); }
    turn::RelayHandle any() const { return open_.empty() ? 0 : *open_.begin(); }

private:
    Result<turn::RelaySocket> open(Family f, std::uint16_t port) {
        turn::RelaySocket s;
        s.handle = next_handle_++;
        s.local.ip = *IpAddress::parse(f == Family::V4 ? "127.0.0.1" : "::1");
        s.local.port = port;
        open_.insert(s.handle);
        return s;
    }
    std::uint16_t next_port_ = 50000;
    turn::RelayHandle next_handle_ = 1;
    std::set<turn::RelayHandle> open_;
    std::map<std::uint64_t, std::pair<Family, std::uint16_t>> reserved_;
};

}  // namespace turnbridge::fuzz
