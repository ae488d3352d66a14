#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Process memory per idle UDP allocation: open N allocations (default 10,000) on one
turnbridge, each with one permission and one channel, and divide the growth of the server's
resident memory by N. Kernel socket buffers are not part of RSS, so what is left is what
turnbridge itself keeps per allocation (its state, the libuv handle, accounting, allocator
overhead). The issue's budget is 4 KiB.

Runs in a fresh network namespace (unshare -n, when root) so that 10,000 relay ports and client
sockets touch nobody else's port space; every datagram goes to loopback in that namespace.

    tests/bench/memory_bench.py [--allocations N] [--threads T] [--json FILE]

Prints one line `per-allocation: X bytes (RSS delta D over N allocations)` and exits non-zero
when X exceeds --budget (default 4096).
"""
import argparse
import hashlib
import hmac
import json
import os
import resource
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))
import harness  # noqa: E402

MAGIC = 0x2112A442
ALLOCATE, CREATE_PERMISSION, CHANNEL_BIND = 0x003, 0x008, 0x009
A_USERNAME, A_MI, A_ERROR, A_REALM, A_NONCE = 0x0006, 0x0008, 0x0009, 0x0014, 0x0015
A_XOR_PEER, A_CHANNEL, A_REQ_TRANSPORT, A_FINGERPRINT = 0x0012, 0x000C, 0x0019, 0x8028
A_LIFETIME = 0x000D


def attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * ((4 - len(v) % 4) % 4)


def xor_addr(ip, port):
    raw = socket.inet_aton(ip)
    x = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", MAGIC)))
    return struct.pack("!BBH", 0, 1, port ^ (MAGIC >> 16)) + x


def message(method, tid, attrs, key=None, user=None, realm=None, nonce=None):
    body = b"".join(attr(t, v) for t, v in attrs)
    if key is not None:
        body += attr(A_USERNAME, user) + attr(A_REALM, realm) + attr(A_NONCE, nonce)
        head = struct.pack("!HHI", method, len(body) + 24, MAGIC) + tid
        mac = hmac.new(key, head + body, hashlib.sha1).digest()
        body += attr(A_MI, mac)
    head = struct.pack("!HHI", method, len(body) + 8, MAGIC) + tid
    crc = (zlib.crc32(head + body) ^ 0x5354554E) & 0xFFFFFFFF
    body += attr(A_FINGERPRINT, struct.pack("!I", crc))
    return struct.pack("!HHI", method, len(body), MAGIC) + tid + body


def parse(data):
    """(type, tid, {attr: value})"""
    mtype, length, _ = struct.unpack_from("!HHI", data)
    tid = data[8:20]
    attrs, off = {}, 20
    while off + 4 <= 20 + length:
        t, n = struct.unpack_from("!HH", data, off)
        attrs[t] = data[off + 4:off + 4 + n]
        off += 4 + n + ((4 - n % 4) % 4)
    return mtype, tid, attrs


def rss_bytes(pid):
    """Resident set size from /proc (anonymous + file + shmem)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0]) * 1024
    return out


class Swarm:
    """N client sockets driving Allocate, CreatePermission and ChannelBind in phases, with
    retransmission, many transactions in flight at once."""

    def __init__(self, server_port, n, user, password, realm):
        self.addr = ("127.0.0.1", server_port)
        self.user, self.realm = user.encode(), realm.encode()
        self.key = hashlib.md5(f"{user}:{realm}:{password}".encode()).digest()
        self.socks = []
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self.socks.append(s)
        self.sel = selectors.DefaultSelector()
        for i, s in enumerate(self.socks):
            self.sel.register(s, selectors.EVENT_READ, i)
        self.nonce = None

    def close(self):
        for s in self.socks:
            s.close()

    def learn_nonce(self):
        tid = os.urandom(12)
        s = self.socks[0]
        s.sendto(message(ALLOCATE, tid, [(A_REQ_TRANSPORT, b"\x11\0\0\0")]), self.addr)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for key, _ in self.sel.select(0.2):
                data = key.fileobj.recv(2048)
                mtype, rtid, attrs = parse(data)
                if rtid == tid and A_NONCE in attrs:
                    self.nonce = attrs[A_NONCE]
                    return
        raise RuntimeError("no 401 with a NONCE from the server")

    def phase(self, name, build, window=2000, timeout=60):
        """Sends build(i) from socket i for every i, at most `window` outstanding; returns
        when each got a success response."""
        pending = {}   # i -> (tid, bytes, sent_at)
        todo = list(range(len(self.socks)))
        done = 0
        failures = {}
        deadline = time.monotonic() + timeout
        while (todo or pending) and time.monotonic() < deadline:
            while todo and len(pending) < window:
                i = todo.pop()
                tid = os.urandom(12)
                msg = build(i, tid)
                pending[i] = (tid, msg, time.monotonic())
                self.socks[i].sendto(msg, self.addr)
            for key, _ in self.sel.select(0.05):
                i = key.data
                while True:
                    try:
                        data = key.fileobj.recv(2048)
                    except BlockingIOError:
                        break
                    if i not in pending or len(data) < 20:
                        continue
                    mtype, rtid, attrs = parse(data)
                    if rtid != pending[i][0]:
                        continue
                    if mtype & 0x0110 == 0x0100:
                        done += 1
                    else:
                        code = attrs.get(A_ERROR, b"\0\0\0\0")
                        failures[i] = (code[2] & 7) * 100 + code[3]
                    del pending[i]
            now = time.monotonic()
            for i, (tid, msg, at) in list(pending.items()):
                if now - at > 1.0:  # retransmit (RFC 8489 §6.2.1, simplified)
                    pending[i] = (tid, msg, now)
                    self.socks[i].sendto(msg, self.addr)
        if pending or failures:
            raise RuntimeError(f"{name}: {done} ok, {len(pending)} unanswered, failures {dict(list(failures.items())[:5])}")
        return done

    def signed(self, method, attrs):
        return lambda i, tid: message(method, tid, attrs(i), self.key, self.user, self.realm, self.nonce)


def peer_of(i):
    # Distinct peers on loopback (127.1.x.y); they need not exist: permissions are only state.
    return f"127.1.{(i >> 8) & 0xFF}.{i & 0xFF}", 40000 + (i % 1000)


class Server(harness.Turnbridge):
    def __init__(self, threads, **kw):
        super().__init__(**kw)
        self.threads = threads

    def write_config(self):
        super().write_config()
        text = self.config_path.read_text().replace("threads = 2", f"threads = {self.threads}")
        self.config_path.write_text(text)


def run(args):
    server = Server(args.threads, ready_timeout=30)
    # Relay ports: a wide range below the listener's (20000-29999) and the kernel's ephemeral
    # range (32768-60999), where our own client sockets live.
    server.relay_lo, server.relay_hi = 2000, 2000 + args.allocations + 1000
    if server.relay_hi >= 20000:
        raise SystemExit("too many allocations for one relay IP")
    with server:
        pid = server.proc.pid
        swarm = Swarm(server.port, args.allocations, harness.USER, harness.PASSWORD, harness.REALM)
        try:
            swarm.learn_nonce()
            time.sleep(0.5)
            before = rss_bytes(pid)
            t0 = time.monotonic()
            swarm.phase("allocate", swarm.signed(ALLOCATE, lambda i: [(A_REQ_TRANSPORT, b"\x11\0\0\0"),
                                                                       (A_LIFETIME, struct.pack("!I", 3600))]))
            swarm.phase("create-permission", swarm.signed(CREATE_PERMISSION, lambda i: [(A_XOR_PEER, xor_addr(*peer_of(i)))]))
            swarm.phase("channel-bind", swarm.signed(CHANNEL_BIND, lambda i: [(A_CHANNEL, struct.pack("!HH", 0x4000, 0)),
                                                                          (A_XOR_PEER, xor_addr(*peer_of(i)))]))
            took = time.monotonic() - t0
            time.sleep(1.5)  # idle: let the workers settle (timers, accounting flush)
            after = rss_bytes(pid)
        finally:
            swarm.close()
    shutil.rmtree(server.dir, ignore_errors=True)
    n = args.allocations
    delta = after["VmRSS"] - before["VmRSS"]
    result = {
        "allocations": n,
        "threads": args.threads,
        "rss_before": before["VmRSS"],
        "rss_after": after["VmRSS"],
        "rss_anon_delta": after.get("RssAnon", 0) - before.get("RssAnon", 0),
        "per_allocation_bytes": round(delta / n, 1),
        "setup_seconds": round(took, 2),
        "budget": args.budget,
    }
    print(json.dumps(result))
    print(f"per-allocation: {delta / n:.0f} bytes (RSS delta {delta} over {n} allocations, "
          f"each with one permission and one channel; budget {args.budget})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if delta / n <= args.budget else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--allocations", type=int, default=10000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--budget", type=int, default=4096)
    p.add_argument("--json")
    p.add_argument("--no-netns", action="store_true", help="run in the current network namespace")
    args = p.parse_args()
    if not args.no_netns and os.environ.get("TB_MEMBENCH_NETNS") != "1":
        if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
            env = dict(os.environ, TB_MEMBENCH_NETNS="1")
            cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                   sys.executable, *sys.argv]
            return subprocess.call(cmd, env=env)
        print("not root or no unshare: running in the current namespace", file=sys.stderr)
    # One fd per client socket on our side, one relay socket per allocation on the server's.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.allocations * 2 + 1000))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
