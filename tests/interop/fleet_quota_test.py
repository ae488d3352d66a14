# SPDX-License-Identifier: Apache-2.0
# interop-timeout: 150
"""Fleet-wide byte quotas by leases (issue 15, must-show 3).

Its own PostgreSQL and three nodes on 127.0.0.11-13, as fleet_test.py (whose helpers it imports),
with lease_ttl = 3 and a quota realm; each node has another fleet.quota_outage: node1
fail_closed, node2 "grace:GRACE", node3 fail_open. A UDP echo peer counts every payload byte it
gets from and sends to each relayed address; with what each client got back, that is the ground
truth of what the fleet relayed (relay->peer plus relay->client payload, what quota_bytes counts).

1. One user with quota_bytes = QUOTA relays through all three nodes at once: the fleet stops it
   at the budget (relayed <= QUOTA: the stated bound while PostgreSQL answers), and every node
   answers 486 to a new Allocate.
2. A second user relays through all three; the flows pause, each node's lease is read from
   PostgreSQL, PostgreSQL is stopped (pg_ctl stop -m immediate) and the flows resume for OUTAGE
   seconds: the fail_closed node relays no more than its lease and stops (lease_ttl), the grace
   node no more than its lease + GRACE and stops, the fail_open node keeps relaying. A user of a
   realm without a quota relays through the fail_closed node all along. When PostgreSQL is back,
   the nodes report what they relayed: the fleet's count of used bytes is at least the truth.
3. kill -9 of a node holding a lease: after lease_ttl the lease is gone and counted as used.

Loopback only.
"""
import signal
import socket
import struct
import threading
import time

import fleet_test
from fleet_test import NODES, PG_BIN, EchoPeer, Node, Postgres
from harness import REALM, free_port, main_guard
from stun_client import StunError, TurnClient

QREALM = "quota.test"
QUOTA = 3_000_000        # bytes per user per day (phase 1)
BIG = 200_000_000        # phase 2: the budget is never the limit, the outage policy is
GRACE = 300_000
LEASE_TTL = 3
OUTAGE = 8
SIZE = 1000              # payload bytes per packet
RATE = 250               # packets a second per flow: 250 kB/s to the peer and as much back
POLICIES = ("fail_closed", f"grace:{GRACE}", "fail_open")
CHANNEL = 0x4000


class QuotaNode(Node):
    """A fleet node with a quota realm of QUOTA on its first listener, the free realm (the default,
    no quota) on a second one and a quota realm of BIG on a third."""

    def __init__(self, name, ip, pg, policy):
        super().__init__(name, ip, pg, {})
        self.policy = policy
        self.free_port = free_port((ip,), taken={self.port, self.admin_port})
        self.big_port = free_port((ip,), taken={self.port, self.admin_port, self.free_port})

    @property
    def listen(self):
        return [f"{self.ip}:{p}" for p in (self.port, self.free_port, self.big_port)]

    def write_config(self):
        self.config_path.write_text(self.config_text("max_allocations_per_user = 0\n", f"""[realm."{QREALM}"]
listen = ["{self.ip}:{self.port}"]
users = {{ q1 = "pw" }}
quota_bytes = {QUOTA}
quota_period = "day"

[realm."big.test"]
listen = ["{self.ip}:{self.big_port}"]
users = {{ q2 = "pw" }}
quota_bytes = {BIG}

[realm."{REALM}"]
users = {{ free = "pw" }}
""", f"""lease_ttl = {LEASE_TTL}
quota_outage = "{self.policy}"
"""))


class Flow:
    """One allocation sending ChannelData to the echo peer at RATE/s (while not paused), counting
    what comes back."""

    def __init__(self, server, user, peer):
        self.client = TurnClient(server, user, "pw")
        relay = self.client.allocate()
        self.relay = (relay[0], relay[1])
        self.client.channel_bind(CHANNEL, peer.addr)
        self.client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.client.sock.setblocking(False)
        self.peer = peer
        self.received = 0
        self.paused = False
        self.running = True
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        frame = struct.pack("!HH", CHANNEL, SIZE) + bytes(SIZE)
        next_send = time.monotonic()
        while self.running:
            now = time.monotonic()
            while not self.paused and now >= next_send:
                try:
                    self.client.sock.send(frame)
                except OSError:
                    pass
                next_send += 1.0 / RATE
            if self.paused:
                next_send = now
            self.drain()
            time.sleep(0.002)

    def drain(self):
        while True:
            try:
                raw = self.client.sock.recv(65536)
            except (BlockingIOError, OSError):
                return
            if len(raw) >= 4 and raw[0] & 0xC0 == 0x40:
                with self.lock:
                    self.received += struct.unpack("!H", raw[2:4])[0]

    def relayed(self):
        """relay->peer (the peer's count) + relay->client (what came back) payload bytes."""
        to_peer, _ = self.peer.truth(self.relay)
        with self.lock:
            return to_peer + self.received

    def stop(self):
        self.running = False
        self.thread.join()
        self.client.close()


def psql(pg, sql):
    out = pg.run("psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "turnbridge", "-d", "postgres", "-Atc", sql)
    return [line.split("|") for line in out.stdout.strip().splitlines() if line]


def leases(pg, user):
    return {row[0]: int(row[1]) for row in psql(
        pg, f"SELECT node, sum(granted) FROM fleet_leases WHERE account = '{user}' GROUP BY node")}


def metric(node, name):
    status, body = node.http("/metrics")
    for line in body.splitlines() if status == 200 else []:
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    return -1


def wait_still(flows, quiet=1.0, timeout=15.0):
    """Waits until no flow relays anything for `quiet` seconds; True if that happened in time."""
    deadline = time.monotonic() + timeout
    last, since = [f.relayed() for f in flows], time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = [f.relayed() for f in flows]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return True
    return False


def allocate_code(node, user):
    c = TurnClient((node.ip, node.port), user, "pw")
    try:
        c.allocate()
        return 0
    except StunError as e:
        return e.code
    finally:
        c.close()


def test(results):
    if PG_BIN is None:
        results.check("PostgreSQL server binaries (Debian postgresql)", False, "/usr/lib/postgresql missing")
        return
    pg = Postgres().init()
    peer = EchoPeer()
    nodes = []
    try:
        nodes = [QuotaNode(f"node{i + 1}", ip, pg, POLICIES[i]) for i, ip in enumerate(NODES)]
        for n in nodes:
            n.start()
        budget(results, pg, peer, nodes)
        outage(results, pg, peer, nodes)
        dead_node(results, pg, peer, nodes)
        for n in nodes:
            code = n.stop()
            results.check(f"{n.name} stops cleanly", code == 0, f"exit {code}")
    finally:
        for n in nodes:
            n.stop()
        peer.close()
        pg.destroy()


def budget(results, pg, peer, nodes):
    flows = [Flow((n.ip, n.port), "q1", peer) for n in nodes]
    stopped = wait_still(flows, quiet=1.5, timeout=20)
    per_node = [f.relayed() for f in flows]
    total = sum(per_node)
    results.check("one quota user through three nodes at once: the fleet stops it", stopped, str(per_node))
    results.check("every node relayed part of the budget", all(x > 0 for x in per_node), str(per_node))
    results.check(f"relayed <= quota_bytes while PostgreSQL answers (the stated bound): {total} <= {QUOTA}",
                  total <= QUOTA, f"per node {per_node}")
    # What is left unrelayed: leases still held when the flows stopped, at most one minimum slice.
    results.check("the fleet used its budget (within one 64 KiB slice)", total >= QUOTA - 64 * 1024,
                  f"{total} of {QUOTA}")
    time.sleep(1.2)  # one lease round: every node's list of spent users
    codes = [allocate_code(n, "q1") for n in nodes]
    results.check("every node answers 486 to a new Allocate of the user over budget", codes == [486] * 3, str(codes))
    for f in flows:
        f.stop()


def outage(results, pg, peer, nodes):
    flows = [Flow((n.ip, n.big_port), "q2", peer) for n in nodes]
    time.sleep(1.0)
    for f in flows:
        f.paused = True
    time.sleep(1.5)
    held, again = leases(pg, "q2"), None
    for _ in range(20):
        time.sleep(0.3)
        again = leases(pg, "q2")
        if again == held:
            break
        held = again
    results.check("each node holds a lease before the outage", len(held) == 3, str(held))
    before = [f.relayed() for f in flows]
    pg.stop("immediate")
    start = time.monotonic()
    for f in flows:
        f.paused = False
    free = Flow((nodes[0].ip, nodes[0].free_port), "free", peer)
    time.sleep(OUTAGE - 2)
    mid = [f.relayed() for f in flows]
    free_mid = free.relayed()
    time.sleep(2)
    after = [f.relayed() for f in flows]
    during = [a - b for a, b in zip(after, before)]
    tail = [a - m for a, m in zip(after, mid)]
    print(f"  leases {held}; relayed during the outage {during}; in its last 2 s {tail}", flush=True)
    lease = [held.get(n.name, 0) for n in nodes]
    results.check(f"fail_closed: nothing beyond its lease during the outage ({during[0]} <= {lease[0]})",
                  during[0] <= lease[0], f"{during[0]} vs lease {lease[0]}")
    results.check("fail_closed: stops within lease_ttl of the outage (nothing in its last 2 s)", tail[0] == 0,
                  str(tail[0]))
    results.check(f"grace:{GRACE}: at most its lease + {GRACE} during the outage ({during[1]} <= {lease[1] + GRACE})",
                  during[1] <= lease[1] + GRACE, f"{during[1]} vs lease {lease[1]}")
    excess = [metric(n, "turnbridge_fleet_quota_excess_bytes_total") for n in nodes]
    results.check("fail_closed: relayed nothing beyond its leases (its excess counter)", excess[0] == 0, str(excess))
    results.check(f"grace:{GRACE}: relayed beyond its leases, at most {GRACE}, then stopped",
                  0 < excess[1] <= GRACE and tail[1] == 0, f"excess {excess[1]}, last 2 s {tail[1]}")
    results.check("fail_open: relayed beyond its leases", excess[2] > GRACE, str(excess))
    results.check("fail_open: keeps relaying through the outage (documented)", tail[2] > RATE * SIZE,
                  str(tail[2]))
    free_tail = free.relayed() - free_mid
    results.check("a user without a quota relays through the fail_closed node during the outage",
                  free_mid > 0 and free_tail > 0, f"{free_mid} then {free_tail}")
    free.stop()
    pg.start()
    for f in flows:
        f.paused = True
    time.sleep(1)
    truth = sum(f.relayed() for f in flows)
    counted, deadline = 0, time.monotonic() + 15   # the nodes report within a round or two
    while counted < truth and time.monotonic() < deadline:
        time.sleep(0.5)
        used = psql(pg, "SELECT used + coalesce((SELECT sum(granted) FROM fleet_leases WHERE account = 'q2'), 0) "
                        "FROM fleet_quota WHERE account = 'q2'")
        counted = int(used[0][0]) if used else 0
    results.check("after the outage the fleet counts at least what was relayed (used + leases >= truth)",
                  counted >= truth, f"counted {counted} truth {truth}")
    for f in flows:
        f.stop()


def dead_node(results, pg, peer, nodes):
    """kill -9 of a node holding a lease: after lease_ttl its lease is gone from fleet_leases and
    counted as used, whole (it may have relayed all of it)."""
    victim = nodes[2]
    flow = Flow((victim.ip, victim.big_port), "q2", peer)
    deadline = time.monotonic() + 5
    held = {}
    while time.monotonic() < deadline and not held.get(victim.name):
        time.sleep(0.2)
        held = leases(pg, "q2")
    flow.paused = True
    time.sleep(0.5)
    # Frozen first, so that no round of the victim's moves bytes from its lease to used (or hands
    # part of the lease back) between reading the two and the kill; then both in one snapshot.
    victim.proc.send_signal(signal.SIGSTOP)
    row = psql(pg, "SELECT used, coalesce((SELECT sum(granted) FROM fleet_leases "
                   f"WHERE account = 'q2' AND node = '{victim.name}'), 0) FROM fleet_quota WHERE account = 'q2'")
    used_before, held = int(row[0][0]), int(row[0][1])
    victim.kill9()
    flow.stop()
    time.sleep(LEASE_TTL)   # then another node's next round settles it
    left, deadline = held, time.monotonic() + 10
    while left and time.monotonic() < deadline:
        time.sleep(0.3)
        left = leases(pg, "q2").get(victim.name, 0)
    used_after = int(psql(pg, "SELECT used FROM fleet_quota WHERE account = 'q2'")[0][0])
    results.check("a killed node's lease is gone after lease_ttl", held > 0 and left == 0, f"held {held}, left {left}")
    results.check("... and counted as used, whole", used_after - used_before >= held,
                  f"used {used_before} -> {used_after}, lease {held}")
    victim.start()


if __name__ == "__main__":
    main_guard(test)
