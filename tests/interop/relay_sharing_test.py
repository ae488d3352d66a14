#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""server.relay_sharing: many UDP allocations on a few shared relay ports, demultiplexed by the
peer's exact address and port. turnbridge runs on loopback with 2 workers and
relay_shared_ports = 1: 2 shared ports in all.

- 200 allocations from our own client (stun_client.py) in one process with relay_ports of 20
  ports: they share 2 relayed addresses (one per worker) and each relays both ways to its own
  peer socket, byte for byte.
- A peer address another allocation holds on the same port: CreatePermission and ChannelBind
  get 508 and a Send to it does not leave; a datagram from an unclaimed port is dropped (an
  EVEN-PORT allocation, which keeps a dedicated port, still gets it: IP-only permissions);
  when the holder's allocation ends, the address is free again.
- coturn's turnutils_uclient (channels and Send indications) toward turnutils_peer on
  127.0.0.1-127.0.0.6: every session relays both ways, those without EVEN-PORT (uclient picks
  at random) through the 2 shared ports; sessions toward one peer address collide and get 508.
- Accounting: allocations of their own users on the shared ports; `turnbridge report` equals
  what went through each (accounting_test.py's ground truth, payload and wire bytes).
- aioice (the ICE/TURN client of aiortc): endpoints on the shared ports relay both ways
  (Data indications, then channels); one asking for another's peer address gets 508.

interop-timeout: 240 (read by scripts/test)
"""
import asyncio
import os
import re
import socket
import subprocess
import time

from aioice import stun

from accounting_test import FLUSH, compare, exchange
from aioice_test import Collector, create_permission, hook_data_indications, open_endpoint
from harness import PASSWORD, USER, Turnbridge, main_guard, relay_range, report, turnutils_peer
from stun_client import UDP_TRANSPORT, TurnClient, error_code

ALLOCATIONS = 200
RELAY_PORTS = 20
WORKERS = 2          # harness.py runs every turnbridge with threads = 2
SHARE_USERS = {f"share{k}": f"pw{k}" for k in range(4)}  # 4 allocations on 2 shared ports
PEER_HOSTS = [f"127.0.0.{i}" for i in range(1, 7)]
RUN_TIMEOUT = 60     # seconds for one turnutils_uclient run
STEP = 10.0          # seconds for one aioice step
SHARED_OPEN = re.compile(r"shared relay socket 127\.0\.0\.1:(\d+) open")
DELETED = re.compile(r"allocation deleted .* relay=127\.0\.0\.1:(\d+) reason=\S+ sent=(\d+)p/\d+B received=(\d+)p")
CREATED = re.compile(r"allocation created id=(\w+) .* relay=127\.0\.0\.1:(\d+) ")


def addr(a):
    return (a[0], a[1])


def peer_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2.0)
    return s


def quiet(sock, timeout=0.5):
    """True when nothing arrives on `sock` within `timeout`."""
    sock.settimeout(timeout)
    try:
        sock.recvfrom(65536)
        return False
    except socket.timeout:
        return True


def turn_client(server, like=None):
    """A UDP TurnClient; with `like`, it reuses that client's nonce and key (the nonce is bound
    to the source IP only), so it skips the 401 round that security.unauthenticated_rate would
    limit for hundreds of clients from 127.0.0.1."""
    c = TurnClient(("127.0.0.1", server.port), USER, PASSWORD)
    if like is not None:
        c.realm, c.nonce, c.key = like.realm, like.nonce, like.key
    return c


def nothing_for(client, timeout=0.5):
    try:
        client.receive(timeout)
        return False
    except TimeoutError:
        return True


# ---------------------------------------------------------------------------------------------
# 200 allocations, our own client

def many_allocations(results, server):
    clients, peers, relayed = [], [], []
    try:
        for _ in range(ALLOCATIONS):
            c = turn_client(server, clients[0] if clients else None)
            clients.append(c)
            relayed.append(addr(c.allocate()))
            peers.append(peer_socket())
        ports = {r[1] for r in relayed}
        results.check(f"{ALLOCATIONS} allocations on a relay range of {RELAY_PORTS} ports",
                      len(relayed) == ALLOCATIONS
                      and all(server.relay_lo <= p <= server.relay_hi for p in ports),
                      f"relayed ports {sorted(ports)}")
        results.check(f"they share at most {WORKERS} relayed addresses (relay_shared_ports = 1 per worker)",
                      1 <= len(ports) <= WORKERS, f"{len(ports)} distinct")

        ok = all(error_code(c.create_permission(p.getsockname())) == 0 for c, p in zip(clients, peers))
        results.check(f"CreatePermission for {ALLOCATIONS} distinct peer addresses", ok)

        # Client -> peer (Send indications), then peer -> client (Data indications).
        out_ok = back_ok = 0
        for i, c in enumerate(clients):
            c.send_indication(peers[i].getsockname(), b"out-%d" % i)
        for i, p in enumerate(peers):
            try:
                data, src = p.recvfrom(65536)
                out_ok += data == b"out-%d" % i and src == relayed[i]
            except socket.timeout:
                pass
        for i, p in enumerate(peers):
            p.sendto(b"back-%d" % i, relayed[i])
        for i, c in enumerate(clients):
            try:
                kind, peer, data = c.receive(2.0)
                back_ok += kind == "data" and addr(peer) == peers[i].getsockname() and data == b"back-%d" % i
            except TimeoutError:
                pass
        results.check("client -> peer from the shared relayed address, each to its own peer",
                      out_ok == ALLOCATIONS, f"{out_ok}/{ALLOCATIONS}")
        results.check("peer -> client reaches the allocation that permitted that peer address",
                      back_ok == ALLOCATIONS, f"{back_ok}/{ALLOCATIONS}")

        conflicts(results, server, clients, peers, relayed)
    finally:
        for c in clients:
            try:
                c.refresh(0)
            except Exception:
                pass
            c.close()
        for p in peers:
            p.close()


def conflicts(results, server, clients, peers, relayed):
    # Two allocations on the same relayed address: j asks for i's peer address.
    by_port = {}
    for k, r in enumerate(relayed):
        by_port.setdefault(r, []).append(k)
    i, j = next(v for v in by_port.values() if len(v) >= 2)[:2]
    taken = peers[i].getsockname()
    code = error_code(clients[j].create_permission(taken))
    results.check("CreatePermission for a peer address another allocation holds on the port: 508", code == 508,
                  f"got {code}")
    code = error_code(clients[j].channel_bind(0x4000, taken))
    results.check("ChannelBind for it: 508", code == 508, f"got {code}")
    # j holds a permission for 127.0.0.1 (IP only, RFC 8656 §9), but the port is i's.
    clients[j].send_indication(taken, b"intruder")
    results.check("a Send to it does not leave the shared port", quiet(peers[i]))

    # A peer-first datagram from an unclaimed port of a permitted IP: dropped on a shared port...
    stranger = peer_socket()
    try:
        stranger.sendto(b"who?", relayed[i])
        results.check("a datagram from an unclaimed peer port is dropped (port-dependent filtering)",
                      nothing_for(clients[i]))
        # ...but delivered to an EVEN-PORT allocation, which keeps a dedicated port.
        even = turn_client(server, clients[j])
        try:
            resp = even.request(stun.Method.ALLOCATE, {"LIFETIME": 600, "REQUESTED-TRANSPORT": UDP_TRANSPORT,
                                                       "EVEN-PORT": b"\x00"})
            own = addr(resp.attributes.get("XOR-RELAYED-ADDRESS", ("", 0)))
            results.check("EVEN-PORT gets a dedicated even port", error_code(resp) == 0 and own[1] % 2 == 0
                          and own not in by_port, f"{own}")
            even.create_permission(peers[i].getsockname())
            stranger.sendto(b"who?", own)
            try:
                kind, peer, data = even.receive(2.0)
                got = kind == "data" and data == b"who?" and addr(peer) == stranger.getsockname()
            except TimeoutError:
                got = False
            results.check("on it, the same unclaimed port is delivered (IP-only permission)", got)
            even.refresh(0)
        finally:
            even.close()
    finally:
        stranger.close()

    # The holder ends its allocation: the address is free for j.
    results.check("holder deletes its allocation (Refresh 0)", error_code(clients[i].refresh(0)) == 0)
    code = error_code(clients[j].create_permission(taken))
    results.check("the freed peer address can be permitted by the other allocation", code == 0, f"got {code}")
    peers[i].sendto(b"now-j", relayed[j])
    try:
        kind, peer, data = clients[j].receive(2.0)
        ok = data == b"now-j" and addr(peer) == taken
    except TimeoutError:
        ok = False
    results.check("and its datagrams now reach that allocation", ok)


# ---------------------------------------------------------------------------------------------
# coturn's turnutils_uclient and turnutils_peer

TOTALS = re.compile(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", re.M)


def uclient(server, peer_host, peer_port, flags, sessions=1, messages=50):
    cmd = ["turnutils_uclient", "-u", USER, "-w", PASSWORD, "-e", peer_host, "-r", str(peer_port),
           "-p", str(server.port), "-n", str(messages), "-m", str(sessions), "-l", "160", "-z", "5",
           "-c", *flags, "127.0.0.1"]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def collect(proc, log_path):
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    text = out.decode(errors="replace")
    log_path.write_text(" ".join(proc.args) + "\n" + text)
    totals = TOTALS.findall(text)
    return (tuple(map(int, totals[-1])) if totals else None), text


def with_turnutils(results, server):
    with turnutils_peer(server, hosts=PEER_HOSTS) as peer_port:
        if not results.check("turnutils_peer started on 127.0.0.1-6", peer_port is not None):
            return
        # One session per peer address, all at once, half over channels, half with Send. uclient
        # -c asks for EVEN-PORT at random (coturn's startuclient.c), which keeps a port of its own:
        # up to 3 rounds until some sessions have relayed through a shared port.
        ok, details, through_shared, stray, shared = True, [], 0, [], set()
        for _ in range(3):
            log_before = len(server.log_path.read_bytes())
            procs = [uclient(server, h, peer_port, ["-s"] if k % 2 else []) for k, h in enumerate(PEER_HOSTS)]
            for k, p in enumerate(procs):
                totals, _ = collect(p, server.dir / f"uclient-{k}.log")
                ok &= totals is not None and totals[0] > 0 and totals[1] >= totals[0]
                details.append(f"{PEER_HOSTS[k]}: {totals}")
            time.sleep(0.2)
            log = server.log_path.read_bytes()[log_before:].decode(errors="replace")
            shared |= {int(p) for p in SHARED_OPEN.findall(log)}  # opened by the first allocations
            # Every allocation not on a shared port asked for EVEN-PORT: its port is even.
            stray += [int(p) for _, p in CREATED.findall(log) if int(p) not in shared and int(p) % 2]
            through_shared += sum(1 for p, sent, recv in DELETED.findall(log)
                                  if int(p) in shared and int(sent) >= 50 and int(recv) >= 50)
            if through_shared >= 2 or not ok:
                break
        results.check("turnutils_uclient sessions relay both ways", ok, "; ".join(details))
        results.check(f"some relayed all 50 packets both ways through the {len(shared)} shared ports",
                      through_shared >= 2 and len(shared) <= WORKERS, f"{through_shared} sessions on {sorted(shared)}")
        results.check("every other uclient allocation asked for EVEN-PORT", not stray, f"odd dedicated ports {stray}")

        # 16 sessions of one uclient toward one peer address: about half are on the 2 shared
        # ports, so two meet on one port and the second ChannelBind gets 508 (uclient exits).
        log_before = len(server.log_path.read_bytes())
        totals, text = collect(uclient(server, PEER_HOSTS[0], peer_port, [], sessions=16, messages=5),
                               server.dir / "uclient-conflict.log")
        refused = server.log_path.read_bytes()[log_before:].decode(errors="replace").count("refused to allocation")
        results.check("sessions toward one peer address on one shared port: ChannelBind gets 508",
                      refused >= 1 and "error 508" in text, f"{refused} refusals logged; uclient totals {totals}")


# ---------------------------------------------------------------------------------------------
# aioice

async def aioice_endpoints(results, server, count=4):
    loop = asyncio.get_running_loop()
    ends = []
    try:
        for _ in range(count):
            peer_t, peer = await loop.create_datagram_endpoint(Collector, local_addr=("127.0.0.1", 0))
            turn, client = await open_endpoint(server, "udp", USER, PASSWORD)
            inner, indications = hook_data_indications(turn)
            ends.append((peer_t, peer, turn, client, inner, indications))
        relayed = [addr(e[2].get_extra_info("sockname")) for e in ends]
        results.check(f"aioice: {count} allocations on at most {WORKERS} relayed addresses",
                      len({r[1] for r in relayed}) <= WORKERS, f"{relayed}")
        ok = True
        for k, (peer_t, peer, turn, client, inner, indications) in enumerate(ends):
            peer_addr = addr(peer_t.get_extra_info("sockname"))
            await create_permission(inner, peer_addr)
            first = os.urandom(100)
            peer_t.sendto(first, relayed[k])
            data, from_peer = await asyncio.wait_for(indications.get(), STEP)
            ok &= data == first and addr(from_peer) == peer_addr
            payload = os.urandom(161)
            turn.sendto(payload, peer_addr)           # aioice binds a channel first
            data, src = await peer.get()
            ok &= data == payload and addr(src) == relayed[k]
            echo = os.urandom(99)
            peer_t.sendto(echo, relayed[k])
            data, src = await client.get()
            ok &= data == echo and addr(src) == peer_addr
        results.check("aioice: each relays both ways (Data indication, then a channel)", ok)

        pair = next(((a, b) for a in range(count) for b in range(count) if a != b and relayed[a] == relayed[b]), None)
        if results.check("aioice: two allocations on one relayed address", pair is not None):
            a, b = pair
            taken = addr(ends[a][0].get_extra_info("sockname"))
            try:
                await create_permission(ends[b][4], taken)
                code = 0
            except stun.TransactionFailed as e:
                code = e.response.attributes.get("ERROR-CODE", (0, ""))[0]
            results.check("aioice: CreatePermission for the other's peer address gets 508", code == 508,
                          f"got {code}")
    finally:
        for peer_t, _, turn, *_ in ends:
            turn.close()
            peer_t.close()
        await asyncio.sleep(0.2)


# ---------------------------------------------------------------------------------------------
# Accounting on shared ports

def accounting_exact(results, server):
    """Known packets through allocations of their own users, alive together on the 2 shared
    ports; `turnbridge report` must show exactly them per allocation (accounting_test.py's
    ground truth: packets, payload and wire bytes in each direction)."""
    truths = {}
    clients = []
    for k, (user, password) in enumerate(SHARE_USERS.items()):
        c = TurnClient(("127.0.0.1", server.port), user, password)
        clients.append(c)
        truths[user] = exchange(c, "udp", k % 2 == 1, [1, 160, 161, 1199] * 3, [5, 160, 1200] * 3)
    log = server.log_path.read_text(errors="replace")
    ports = {u: p for u, p in re.findall(r"allocation created .* user=(share\d) .* relay=127\.0\.0\.1:(\d+) ", log)}
    results.check("accounting: the allocations share relayed addresses", len(set(ports.values())) < len(ports),
                  f"{ports}")
    for c in clients:
        c.refresh(0)
        c.close()
    time.sleep(FLUSH * 2.5)
    for user, truth in truths.items():
        rows = report(server, user)
        if results.check(f"accounting: one allocation reported for {user}", len(rows) == 1, f"{len(rows)} rows"):
            compare(results, f"accounting: {user} on a shared port is exact", rows[0], truth)


def sharing_server(relay_ports=None):
    users = {USER: PASSWORD, **SHARE_USERS}
    server = Turnbridge(users=users, extra_server="relay_sharing = true\nrelay_shared_ports = 1\n"
                        f"[accounting]\nflush_interval = {FLUSH}\n")
    if relay_ports:
        server.relay_lo, server.relay_hi = relay_range(relay_ports)
    return server


def test(results):
    with sharing_server(RELAY_PORTS) as server:
        many_allocations(results, server)
        rc = server.stop()
        results.check("turnbridge stops cleanly on SIGTERM", rc == 0, f"exit code {rc}")
    # uclient asks for EVEN-PORT at random and leaves its probe allocations: the harness's wider
    # relay range, so that those dedicated ports never run out.
    with sharing_server() as server:
        with_turnutils(results, server)
        accounting_exact(results, server)
        asyncio.run(asyncio.wait_for(aioice_endpoints(results, server), 60))
        results.check("turnbridge still running", server.alive(), "" if server.alive() else server.log_tail(10))
        rc = server.stop()
        results.check("turnbridge stops cleanly on SIGTERM", rc == 0, f"exit code {rc}")


if __name__ == "__main__":
    main_guard(test)
