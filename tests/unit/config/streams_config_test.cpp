// SPDX-License-Identifier: Apache-2.0
// [streams]: connection and memory bounds on every stream listener (issue 11).
#include <doctest/doctest.h>

#include <string>

#include "config_errors.hpp"
#include "turnbridge/config/config.hpp"

using namespace turnbridge::config;

namespace {

constexpr const char* kPath = "/etc/turnbridge/turnbridge.toml";

// Line 1 is [server], line 2 its listener, line 3 [streams]: a row's own lines start at line 4.
std::string with_streams(const std::string& lines) {
    return "[server]\nlisten = [\"127.0.0.1:3478\"]\n[streams]\n" + lines +
           "\n[realm.\"example.org\"]\nusers = { test = \"secret\" }\n";
}

}  // namespace

TEST_SUITE_BEGIN("config");

TEST_CASE("Every [streams] key is read into its field") {
    auto r = load_string(with_streams("turn_max_connections = 100\nturn_max_connections_per_ip = 5\n"
                                      "turn_idle_timeout = 7\nws_max_connections = 200\nws_max_connections_per_ip = 6\n"
                                      "ws_idle_timeout = 8\nsip_max_connections = 300\nsip_max_connections_per_ip = 0\n"
                                      "sip_idle_timeout = 0\nadmin_max_connections = 20\nadmin_max_connections_per_ip = 4\n"
                                      "admin_idle_timeout = 9\nadmin_reserved_connections = 3\nhandshake_timeout = 2\n"
                                      "message_timeout = 3\nwrite_timeout = 4\nwrite_soft_limit = 2048\n"
                                      "write_hard_limit = 4096\nws_max_message = 8192\nws_max_fragments = 5"),
                         kPath);
    if (auto* e = std::get_if<ConfigError>(&r)) FAIL(e->to_string());
    const Streams& s = std::get<std::shared_ptr<const Config>>(r)->streams;
    CHECK(s.turn.max_connections == 100);
    CHECK(s.turn.max_connections_per_ip == 5);
    CHECK(s.turn.idle_timeout.count() == 7);
    CHECK(s.ws.max_connections == 200);
    CHECK(s.ws.max_connections_per_ip == 6);
    CHECK(s.ws.idle_timeout.count() == 8);
    CHECK(s.sip.max_connections == 300);
    CHECK(s.sip.max_connections_per_ip == 0);
    CHECK(s.sip.idle_timeout.count() == 0);
    CHECK(s.admin.max_connections == 20);
    CHECK(s.admin.max_connections_per_ip == 4);
    CHECK(s.admin.idle_timeout.count() == 9);
    CHECK(s.admin_reserved_connections == 3);
    CHECK(s.handshake_timeout.count() == 2);
    CHECK(s.message_timeout.count() == 3);
    CHECK(s.write_timeout.count() == 4);
    CHECK(s.write_soft_limit == 2048);
    CHECK(s.write_hard_limit == 4096);
    CHECK(s.ws_max_message == 8192);
    CHECK(s.ws_max_fragments == 5);
}

TEST_CASE("[streams] mistakes name the key") {
    test::check_errors({
        {with_streams("turn_max_connections = 0"), "streams.turn_max_connections", 4, ""},
        {with_streams("message_timeout = 0"), "streams.message_timeout", 4, ""},
        {with_streams("ws_max_fragments = 0"), "streams.ws_max_fragments", 4, ""},
        {with_streams("admin_reserved_connections = 64"), "streams.admin_reserved_connections", 4, "fewer than"},
        {with_streams("write_soft_limit = 8192\nwrite_hard_limit = 4096"), "streams.write_hard_limit", 5, "more than"},
        {with_streams("max_connections = 5"), "streams.max_connections", 4, ""},
    });
}

TEST_SUITE_END();
