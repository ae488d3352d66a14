#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""aioice (Debian's python3-aioice, the ICE/TURN client inside aiortc) against turnbridge on
loopback: allocate over UDP, TCP and TLS, CreatePermission, then bytes both ways between the
relayed address and a plain asyncio UDP socket on 127.0.0.1, checked byte for byte:
peer -> client as a Data indication (before any channel), client -> peer and back over a
channel (aioice binds one on its first send). Also: a wrong password gets 401; TURN REST API
credentials work and an expired one is refused.

Run with /usr/bin/python3 (aioice is a Debian package, not a pip one).
"""
import asyncio
import base64
import hashlib
import hmac
import os
import ssl
import time

from aioice import stun
from aioice.turn import create_turn_endpoint

from harness import PASSWORD, REST_SECRET, USER, Turnbridge, main_guard
from stun_client import register_attributes

register_attributes()  # DATA and the other RFC 8656 attributes, for Data indications

STEP = 10.0  # seconds allowed for any one step
# Odd sizes on purpose: TCP/TLS pad ChannelData to 4 bytes (RFC 8656 §12.5) and the padding
# must not reach the peer.
SIZES = [1, 3, 100, 161, 1199]


def rest_credential(expires_at, user="alice", secret=REST_SECRET):
    """TURN REST API (draft-uberti-behave-turn-rest): username "expiry:user",
    password base64(HMAC-SHA1(secret, username))."""
    username = f"{int(expires_at)}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


class Collector(asyncio.DatagramProtocol):
    """Queues (data, addr) for every datagram; used for the peer and for the TURN client."""

    def __init__(self):
        self.queue = asyncio.Queue()

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.queue.put_nowait((data, addr))

    async def get(self):
        return await asyncio.wait_for(self.queue.get(), STEP)


def hook_data_indications(turn_transport):
    """aioice drops Data indications; capture them from its inner protocol."""
    inner = turn_transport._TurnTransport__inner_protocol
    queue = asyncio.Queue()
    original = inner.datagram_received

    def datagram_received(data, addr):
        if len(data) >= 20 and (data[0] & 0xC0) == 0:
            try:
                msg = stun.parse_message(data)
                if (msg.message_method == stun.Method.DATA
                        and msg.message_class == stun.Class.INDICATION):
                    queue.put_nowait((msg.attributes.get("DATA"),
                                      msg.attributes.get("XOR-PEER-ADDRESS")))
                    return
            except ValueError:
                pass
        original(data, addr)

    inner.datagram_received = datagram_received
    return inner, queue


async def create_permission(inner, peer):
    request = stun.Message(message_method=stun.Method.CREATE_PERMISSION,
                           message_class=stun.Class.REQUEST)
    request.attributes["XOR-PEER-ADDRESS"] = peer
    response, _ = await asyncio.wait_for(inner.request_with_retry(request), STEP)
    return response


async def open_endpoint(server, transport, username, password):
    tls = transport == "tls"
    ctx = None
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE   # the test's own self-signed certificate
    port = server.tls_port if tls else server.port
    return await asyncio.wait_for(
        create_turn_endpoint(Collector, ("127.0.0.1", port), username, password,
                             ssl=ctx if tls else False,
                             transport="tcp" if transport in ("tcp", "tls") else "udp"),
        STEP)


async def relay_both_ways(results, server, transport, username, password, label):
    loop = asyncio.get_running_loop()
    peer_t, peer = await loop.create_datagram_endpoint(Collector, local_addr=("127.0.0.1", 0))
    peer_addr = peer_t.get_extra_info("sockname")
    turn, client = await open_endpoint(server, transport, username, password)
    try:
        relayed = turn.get_extra_info("sockname")
        results.check(f"{label}: Allocate", relayed[0] == "127.0.0.1"
                      and server.relay_lo <= relayed[1] <= server.relay_hi, f"relayed {relayed}")
        inner, indications = hook_data_indications(turn)
        await create_permission(inner, peer_addr)
        results.check(f"{label}: CreatePermission", True)

        # Peer -> client before any channel: a Data indication naming the peer (RFC 8656 §11.6).
        payload = os.urandom(200)
        peer_t.sendto(payload, relayed)
        data, from_peer = await asyncio.wait_for(indications.get(), STEP)
        results.check(f"{label}: peer -> client as Data indication intact",
                      data == payload and tuple(from_peer) == tuple(peer_addr),
                      f"{len(data or b'')} bytes from {from_peer}")

        # Client -> peer (aioice binds a channel first) and peer -> client over that channel.
        ok_out = ok_back = True
        for size in SIZES:
            payload = os.urandom(size)
            turn.sendto(payload, peer_addr)
            data, src = await peer.get()
            ok_out &= data == payload and tuple(src) == tuple(relayed)
            echo = os.urandom(size)
            peer_t.sendto(echo, relayed)
            data, src = await client.get()
            ok_back &= data == echo and tuple(src) == tuple(peer_addr)
        results.check(f"{label}: client -> peer over a channel intact ({len(SIZES)} sizes)", ok_out)
        results.check(f"{label}: peer -> client over a channel intact ({len(SIZES)} sizes)", ok_back)

        # A burst: 100 datagrams each way, all must arrive in content (order may vary on UDP).
        sent = {os.urandom(64) for _ in range(100)}
        for p in sent:
            turn.sendto(p, peer_addr)
        got = set()
        for _ in sent:
            got.add((await peer.get())[0])
        results.check(f"{label}: burst of 100 client -> peer", got == sent, f"{len(got)} distinct")
        sent = {os.urandom(64) for _ in range(100)}
        for p in sent:
            peer_t.sendto(p, relayed)
        got = set()
        for _ in sent:
            got.add((await client.get())[0])
        results.check(f"{label}: burst of 100 peer -> client", got == sent, f"{len(got)} distinct")
    finally:
        turn.close()                    # Refresh with LIFETIME 0
        await asyncio.sleep(0.2)
        peer_t.close()


async def expect_refused(results, server, label, username, password, want=401):
    try:
        turn, _ = await open_endpoint(server, "udp", username, password)
    except stun.TransactionFailed as e:
        code = e.response.attributes.get("ERROR-CODE", (0, ""))[0]
        return results.check(f"{label}: refused with {want}", code == want, f"got {code}")
    except Exception as e:  # timeout or anything else is also a failure
        return results.check(f"{label}: refused with {want}", False, f"{type(e).__name__}: {e}")
    turn.close()
    await asyncio.sleep(0.1)
    return results.check(f"{label}: refused with {want}", False, "the allocation succeeded")


async def run(results, server):
    for transport in ("udp", "tcp", "tls"):
        await relay_both_ways(results, server, transport, USER, PASSWORD, f"{transport} static user")
    await expect_refused(results, server, "wrong password", USER, "not-the-secret")
    await expect_refused(results, server, "unknown user", "nobody", PASSWORD)

    username, password = rest_credential(time.time() + 3600)
    await relay_both_ways(results, server, "udp", username, password, "udp REST credential")
    await relay_both_ways(results, server, "tcp", username, password, "tcp REST credential")
    await expect_refused(results, server, "expired REST credential",
                         *rest_credential(time.time() - 60))
    expiry = time.time() + 3600
    await expect_refused(results, server, "REST credential with a wrong HMAC",
                         rest_credential(expiry)[0], rest_credential(expiry, secret="other")[1])


async def allocate_once(server, username, password):
    """0 if an allocation succeeds (and is released), else the error code."""
    try:
        turn, _ = await open_endpoint(server, "udp", username, password)
    except stun.TransactionFailed as e:
        return e.response.attributes.get("ERROR-CODE", (0, ""))[0]
    turn.close()
    await asyncio.sleep(0.1)
    return 0


async def run_reload(results, server):
    """SIGHUP picks up a changed password and user list; a broken file is refused and the
    running configuration stays."""
    server.users = {USER: "changed", "bob": "builder"}
    log = server.reload()
    results.check("SIGHUP: reload logged", "reloaded" in log, "" if "reloaded" in log else log[-300:])
    results.check("SIGHUP: new password accepted", await allocate_once(server, USER, "changed") == 0)
    code = await allocate_once(server, USER, PASSWORD)
    results.check("SIGHUP: old password refused with 401", code == 401, f"got {code}")
    results.check("SIGHUP: added user accepted", await allocate_once(server, "bob", "builder") == 0)

    server.users = {USER: PASSWORD}
    server.extra_server = "this is not TOML ="
    log = server.reload()
    ok = "reloaded" not in log and server.alive()
    results.check("SIGHUP with a broken file: refused, still running", ok, "" if ok else log[-300:])
    code = await allocate_once(server, USER, "changed")
    results.check("SIGHUP with a broken file: running configuration kept", code == 0, f"got {code}")
    server.extra_server = ""


def test(results):
    with Turnbridge() as server:
        asyncio.run(asyncio.wait_for(run(results, server), 180))
        asyncio.run(asyncio.wait_for(run_reload(results, server), 60))
        results.check("turnbridge still running", server.alive(), "" if server.alive() else server.log_tail(10))


if __name__ == "__main__":
    main_guard(test)
