# SPDX-License-Identifier: Apache-2.0
"""Quotas against the real server: realm max_bitrate drops what exceeds the rate (and the
report shows exactly what left), and quota_bytes makes a user over quota get 486 on Refresh
(its allocation ends) and on new Allocates, also after a restart. Loopback only."""
import socket
import sqlite3
import time

from harness import Turnbridge, main_guard, report
from stun_client import StunError, TurnClient, error_code

CHANNEL = 0x4001


def server(realm_extra):
    tb = Turnbridge(extra_server="\n[accounting]\nflush_interval = 1\n")
    original = tb.write_config

    def write_config():  # the realm table is last in the harness's config: append to it
        original()
        with open(tb.config_path, "a") as f:
            f.write(realm_extra)
    tb.write_config = write_config
    return tb


def channel_client(tb):
    c = TurnClient(("127.0.0.1", tb.port), "test", "secret")
    c.allocate()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    c.channel_bind(CHANNEL, peer.getsockname())
    return c, peer


def drain(peer, quiet=0.5):
    peer.settimeout(quiet)
    n = 0
    try:
        while True:
            peer.recvfrom(65536)
            n += 1
    except socket.timeout:
        return n


def check_allocate_refused(r, name, tb):
    c = TurnClient(("127.0.0.1", tb.port), "test", "secret")
    try:
        c.allocate()
        r.check(name, False, "allocated")
    except StunError as e:
        r.check(name, e.code == 486, str(e))
    finally:
        c.close()


def rate_cap(r):
    # 80 kbit/s = 10 kB/s; the bucket holds 200 ms (2 kB).
    with server("max_bitrate = 80000\n") as tb:
        c, peer = channel_client(tb)
        sent = 200
        start = time.monotonic()
        for _ in range(sent):
            c.send_channel_data(CHANNEL, bytes(500))
        elapsed = time.monotonic() - start
        received = drain(peer)
        allowed = 4 + int(elapsed * 10000 / 500) + 1  # burst + what the rate refilled
        r.check("max_bitrate: packets over the rate are dropped", 0 < received <= allowed,
                f"{received} of {sent} passed in {elapsed:.3f} s, at most {allowed} allowed")
        c.refresh(0)
        c.close()
        peer.close()
        time.sleep(2.5)
        rows = report(tb, "test", by="user")
        row = rows[0] if rows else {}
        r.check("max_bitrate: the report counts what arrived and what left",
                row.get("client_to_relay_packets") == sent and row.get("relay_to_peer_packets") == received,
                f"client_to_relay {row.get('client_to_relay_packets')}, relay_to_peer {row.get('relay_to_peer_packets')}")


def byte_quota(r):
    tb = server('quota_bytes = 20000\nquota_period = "day"\n')
    tb.start()
    try:
        c, peer = channel_client(tb)
        for _ in range(30):
            c.send_channel_data(CHANNEL, bytes(1000))
        got = drain(peer)
        r.check("byte quota: traffic relays until the quota is used", got == 30, f"{got} of 30")
        time.sleep(2.5)  # more than one flush interval: the hub knows the usage
        resp = c.refresh(600)
        r.check("byte quota: Refresh over quota gets 486", error_code(resp) == 486, f"error {error_code(resp)}")
        resp = c.refresh(600)
        r.check("byte quota: the allocation ended at that Refresh", error_code(resp) == 437,
                f"error {error_code(resp)}")
        c.close()
        check_allocate_refused(r, "byte quota: a new Allocate gets 486", tb)
        peer.close()
        r.check("byte quota: logged", "byte quota of 20000 reached" in tb.log_path.read_text())
        tb.stop()
        tb.start()  # the usage comes back from the store
        check_allocate_refused(r, "byte quota: still 486 after a restart", tb)
    finally:
        tb.stop()


def timed_allocate(tb):
    """Seconds an Allocate took (both rounds: the 401, then the authenticated request); the
    allocation is released after."""
    c = TurnClient(("127.0.0.1", tb.port), "test", "secret")
    try:
        start = time.monotonic()
        c.allocate()
        took = time.monotonic() - start
        c.refresh(0)
        return took
    finally:
        c.close()


def quota_with_store_locked(r):
    """Issue 12: Allocate in a quota realm never waits for the store. Another process holds
    SQLite's write lock (BEGIN EXCLUSIVE) for about 2 s, so the control thread's next flush waits in
    its busy handler; Allocates meanwhile (both rounds) must be answered within 10 ms."""
    tb = server('quota_bytes = 100000000\nquota_period = "day"\n')
    tb.start()
    db = sqlite3.connect(str(tb.dir / "turnbridge.db"), timeout=5, isolation_level=None)
    try:
        c, peer = channel_client(tb)
        c.send_channel_data(CHANNEL, bytes(1000))
        drain(peer, 0.2)
        baseline = timed_allocate(tb)
        db.execute("BEGIN EXCLUSIVE")
        time.sleep(1.5)  # a flush (every second) is now waiting for the lock
        c.send_channel_data(CHANNEL, bytes(1000))
        took = [timed_allocate(tb) for _ in range(8)]
        db.execute("COMMIT")
        late = [round(t * 1000, 1) for t in took if t > 0.010]
        r.check("quota realm: Allocates answered within 10 ms while the store's write lock is held",
                len(took) == 8 and len(late) <= 1,
                f"baseline {baseline and round(baseline * 1000, 1)} ms; during the lock (ms): "
                f"{[round(t * 1000, 1) for t in took]}")
        time.sleep(1.5)
        rows = report(tb, "test", by="user")
        r.check("quota realm: the flush that waited for the lock is written after it",
                rows and rows[0].get("client_to_relay_packets", 0) >= 2, str(rows[:1]))
        c.close()
        peer.close()
    finally:
        db.close()
        tb.stop()


def main(r):
    rate_cap(r)
    byte_quota(r)
    quota_with_store_locked(r)


if __name__ == "__main__":
    main_guard(main)
