#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The default peer deny list (the CVE-2020-26262 class): with `allowed_peers = []`,
CreatePermission and ChannelBind toward special-purpose addresses and toward the server's own
listen and relay addresses are refused with 403 (RFC 8656 §9.1, §11.2).

CreatePermission and ChannelBind only install state: this test never sends a packet to any
of these addresses (no Send indication, no ChannelData), and its only real traffic is to
turnbridge on loopback.
"""
from harness import PASSWORD, USER, Turnbridge, main_guard
from stun_client import FAMILY_IPV6, TurnClient, error_code

PEER_PORT = 3479  # any port: nothing is ever sent there

IPV4_PEERS = [
    ("this network", "0.0.0.1"),
    ("loopback", "127.0.0.1"),
    ("private 10/8", "10.1.2.3"),
    ("private 172.16/12", "172.16.0.1"),
    ("private 192.168/16", "192.168.1.1"),
    ("link-local", "169.254.1.1"),
    ("shared CGN 100.64/10", "100.64.0.1"),
    ("multicast", "224.0.0.1"),
    ("reserved 240/4", "240.0.0.1"),
]

IPV6_PEERS = [
    ("unspecified", "::"),
    ("loopback", "::1"),
    ("IPv4-mapped loopback", "::ffff:127.0.0.1"),
    ("IPv4-mapped private", "::ffff:10.0.0.1"),
    ("NAT64 of private", "64:ff9b::a00:1"),
    ("unique local", "fc00::1"),
    ("link-local", "fe80::1"),
    ("multicast", "ff02::1"),
]


def expect_403(results, client, label, peer, channel):
    resp = client.create_permission(peer)
    code = error_code(resp)
    results.check(f"CreatePermission {label} {peer[0]}:{peer[1]} -> 403", code == 403,
                  f"got {code or 'success'}")
    resp = client.channel_bind(channel, peer)
    code = error_code(resp)
    results.check(f"ChannelBind {label} {peer[0]}:{peer[1]} -> 403", code == 403,
                  f"got {code or 'success'}")


def run_family(results, server, listen_host, family_name, peers, own, family=None):
    client = TurnClient((listen_host, server.port), USER, PASSWORD)
    other = TurnClient((listen_host, server.port), USER, PASSWORD)
    try:
        relayed = client.allocate(family=family)
        other_relayed = other.allocate(family=family)
        results.check(f"{family_name} allocation via {listen_host}", True, f"relayed {relayed}")
        channel = 0x4000
        targets = [(label, (ip, PEER_PORT)) for label, ip in peers]
        targets += [("own relayed address", relayed), ("another allocation's relayed address",
                                                       other_relayed)]
        targets += own
        for label, peer in targets:
            expect_403(results, client, f"[{family_name}] {label}", peer, channel)
            channel += 1
        # The allocation still works after all those refusals (a 403 is not fatal).
        resp = client.refresh(600)
        results.check(f"[{family_name}] Refresh after refusals succeeds", error_code(resp) == 0,
                      f"got {error_code(resp)}")
        if family == FAMILY_IPV6:
            # RFC 3849 documentation range: not special-purpose for relaying, so allowed.
            # Only the permission is installed; nothing is ever sent to it.
            resp = client.create_permission(("2001:db8::1", PEER_PORT))
            results.check(f"[{family_name}] CreatePermission 2001:db8::1 (documentation) succeeds",
                          error_code(resp) == 0, f"got {error_code(resp) or 'success'}")
    finally:
        for c in (client, other):
            try:
                c.refresh(0)
            except Exception:
                pass
            c.close()


def test(results):
    with Turnbridge(allowed_peers=(), ipv6_listener=True) as server:
        own_v4 = [("own listen address", ("127.0.0.1", server.port)),
                  ("own TLS listen address", ("127.0.0.1", server.tls_port)),
                  ("own relay range", ("127.0.0.1", server.relay_lo))]
        own_v6 = [("own listen address", ("::1", server.port)),
                  ("own TLS listen address", ("::1", server.tls_port)),
                  ("own relay range", ("::1", server.relay_lo))]
        run_family(results, server, "127.0.0.1", "IPv4", IPV4_PEERS, own_v4)
        # RFC 8656 §7.2: REQUESTED-ADDRESS-FAMILY asks for an IPv6 relayed address over IPv4.
        run_family(results, server, "127.0.0.1", "IPv6", IPV6_PEERS, own_v6, family=FAMILY_IPV6)
        # The same through the [::1] listener.
        run_family(results, server, "::1", "IPv6", IPV6_PEERS, own_v6, family=FAMILY_IPV6)
        results.check("turnbridge still running", server.alive(), "" if server.alive() else server.log_tail(10))


if __name__ == "__main__":
    main_guard(test)
