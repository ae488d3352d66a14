# SPDX-License-Identifier: Apache-2.0
"""The frame of hostile_test.py (issue 11): one turnbridge with every listener and gateway mode
on, and what every attack case is checked against, on the release build and on ASan:
- the server is alive after the case and answers a STUN Binding from a source the attacker
  does not use (PROBE_SOURCE), within 100 ms at the 99th percentile during the case and after
  it (release build only: ASan runs several times slower);
- a legitimate client is served while the attack runs: TURN Allocate over UDP, TCP and TLS,
  a JsSIP REGISTER over WebSocket (digest), an admin request with the token;
- file descriptors return to their baseline (within FD_SLACK) and RSS to within RSS_SLACK once
  the case ends (release only);
- the server's log grows by at most LOG_LINES_PER_SECOND lines a second over the case.

A case module (`hostile_<area>.py`) has `CASES = [(name, fn), ...]`; `fn(r, ctx)` runs the
attack and asserts its own fixed behaviour with `r.check`, and calls `ctx.during()` once while
the attack is at its height (that runs the legitimate clients). `python3 hostile_<area>.py`
runs that module's cases alone; hostile_test.py runs them all on one server.

Every address is on loopback; attackers use 127.0.0.3 and up (forged UDP sources too, which
loopback allows for any 127/8 address). Every loop is bounded in count and time.
"""
import base64
import hashlib
import http.client
import os
import random
import secrets
import socket
import ssl
import struct
import threading
import time
from pathlib import Path

from harness import (PASSWORD, REALM, USER, Turnbridge, free_port, main_guard, rss, sanitized)
from stun_client import TurnClient

TOKEN = "t0ken"
PROBE_SOURCE = "127.0.0.2"
PROBE_EVERY = 0.05
PROBE_P99_BOUND = 0.100
FD_SLACK = 8
RSS_SLACK = 16 * 1024 * 1024
LOG_LINES_PER_SECOND = 20
DID = "+15550177"          # routed to USER: an inbound call rings USER's browsers
OFFLINE_DID = "+15550199"  # routed to "nobody", a static user that never registers
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
# [streams] timeouts short enough for a case to watch them bite (hostile_streams.py); the
# connection caps keep their defaults. Every case shares the server: a case that holds a
# connection idle longer than these must expect it closed.
STREAMS_CONFIG = ("[streams]\nhandshake_timeout = 3\nmessage_timeout = 3\nwrite_timeout = 4\n"
                  "turn_idle_timeout = 5\nadmin_idle_timeout = 5\nsip_idle_timeout = 10\nws_idle_timeout = 30\n")


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def stun_binding(txid):
    """A STUN Binding request (RFC 8489 §6) with `txid` (12 bytes), no attributes."""
    return struct.pack("!HHI", 0x0001, 0, 0x2112A442) + txid


class HostileServer(Turnbridge):
    """turnbridge with TURN on UDP/TCP/TLS, ws and SIP (UDP+TCP) listeners, a gateway realm whose
    trunk is `127.0.0.1:trunk_port` over UDP, DID routes, and the admin API with a token.
    `extra_server` and `extra` (appended after the realm) add config for a case."""

    def __init__(self, trunk_port=None, extra_server="", extra="", users=None):
        taken = set()
        pick = lambda: taken.add(p := free_port(taken=taken)) or p  # noqa: E731
        self.trunk_port = trunk_port or pick()
        self.ws_port, self.sip_port, self.admin_port = pick(), pick(), pick()
        self.media_lo = free_port(span=40, taken=taken)
        self.extra = extra
        users = users or {USER: PASSWORD, "nobody": "n0body"}
        super().__init__(users=users, extra_server=(
            f'ws_listen = ["127.0.0.1:{self.ws_port}"]\n'
            f'sip_listen = ["127.0.0.1:{self.sip_port}"]\n'
            f'media_ip = "127.0.0.1"\nmedia_ports = "{self.media_lo}-{self.media_lo + 39}"\n' + extra_server))
        self.max_allocations_per_user = None  # the public-server default (10), as an outsider meets it

    def write_config(self):
        super().write_config()
        with open(self.config_path, "a") as f:
            f.write(f'\n[realm."{REALM}".gateway]\nenabled = true\n'
                    f'trunk = "sip:127.0.0.1:{self.trunk_port};transport=udp"\ncaller_id = "+15550100"\n'
                    f'codecs = ["opus", "pcmu", "pcma"]\n'
                    f'[realm."{REALM}".gateway.routes]\n"{DID}" = ["{USER}"]\n"{OFFLINE_DID}" = ["nobody"]\n\n'
                    f'[accounting]\nflush_interval = 1\n\n[admin]\nlisten = "127.0.0.1:{self.admin_port}"\n'
                    f'token = "{TOKEN}"\n{self.extra}\n\n{STREAMS_CONFIG}')

    def log_lines(self):
        try:
            return self.log_path.read_bytes().count(b"\n")
        except OSError:
            return 0


class Probe:
    """STUN Binding every PROBE_EVERY seconds from PROBE_SOURCE; round-trip times (None: lost)."""

    def __init__(self, server):
        self.server = server
        self.rtts = []
        self.stop_flag = threading.Event()
        self.thread = None

    def start(self):
        self.rtts = []
        self.stop_flag.clear()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stop_flag.set()
        if self.thread:
            self.thread.join(5)
        return self

    def _run(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((PROBE_SOURCE, 0))
        s.settimeout(0.5)
        try:
            while not self.stop_flag.is_set() and len(self.rtts) < 100_000:
                txid = secrets.token_bytes(12)
                t0 = time.monotonic()
                s.sendto(stun_binding(txid), ("127.0.0.1", self.server.port))
                rtt = None
                try:
                    while True:
                        data = s.recv(2048)
                        if data[8:20] == txid:
                            rtt = time.monotonic() - t0
                            break
                except socket.timeout:
                    pass
                self.rtts.append(rtt)
                self.stop_flag.wait(max(0.0, PROBE_EVERY - (time.monotonic() - t0)))
        finally:
            s.close()

    def summary(self):
        got = sorted(x for x in self.rtts if x is not None)
        lost = len(self.rtts) - len(got)
        p99 = got[min(len(got) - 1, int(len(got) * 0.99))] if got else None
        return len(self.rtts), lost, p99


# ---------------------------------------------------------------------------------------------
# Legitimate clients

def turn_allocate(server, transport):
    """Allocate with the right password over udp, tcp or tls; True when it got a relayed address."""
    port = server.tls_port if transport == "tls" else server.port
    c = TurnClient(("127.0.0.1", port), USER, PASSWORD, transport="udp" if transport == "udp" else "tcp",
                   timeout=3.0)
    try:
        if transport == "tls":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
        c.allocate()
        # Released at once: the legitimate user must not pile up allocations against
        # server.max_allocations_per_user over the cases.
        c.refresh(0)
        return True
    except Exception as e:  # noqa: BLE001: any failure means "not served"
        print(f"  legit TURN {transport}: {type(e).__name__}: {e}", flush=True)
        return False
    finally:
        c.close()


def admin_get(server, path="/api/v1/allocations", token=TOKEN, timeout=5.0):
    """(status, body) of GET `path` on the admin API; (0, error text) when it failed."""
    conn = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except Exception as e:  # noqa: BLE001
        return 0, str(e).encode()
    finally:
        conn.close()


def ws_connect(port, host="127.0.0.1", timeout=5.0, source=None):
    """An open `sip` WebSocket (RFC 7118) as a plain socket, after the RFC 6455 handshake;
    from the address `source` when given (an attacker's)."""
    s = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0) if source else None)
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    s.sendall((f"GET /sip HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the WebSocket handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n")[0].decode(errors="replace"))
    return s


def ws_frame(payload, opcode=0x1, fin=True):
    """One masked client frame (RFC 6455 §5.2)."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    mask = secrets.token_bytes(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_read_message(s, timeout=5.0):
    """The next text message's payload (unmasked server frames); None when closed."""
    s.settimeout(timeout)
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
    while True:
        need(2)
        n = buf[1] & 0x7F
        off = 2
        if n == 126:
            need(4)
            n, off = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            need(10)
            n, off = int.from_bytes(buf[2:10], "big"), 10
        need(off + n)
        opcode, data, buf = buf[0] & 0x0F, buf[off:off + n], buf[off + n:]
        if opcode == 0x8:
            return None
        if opcode in (0x1, 0x2):
            return data


def jssip_register(server, user=USER, password=PASSWORD, timeout=12.0):
    """REGISTER through JsSIP (jssip_register.js, npm) over the server's ws listener; True when
    JsSIP says `registered`."""
    import subprocess
    try:
        out = subprocess.run(["node", str(Path(__file__).resolve().parent / "jssip_register.js"),
                              f"ws://127.0.0.1:{server.ws_port}/sip", user, REALM, password],
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print("  legit JsSIP: no answer in time", flush=True)
        return False
    if out.returncode != 0:
        print(f"  legit JsSIP: {out.stdout.strip()} {out.stderr.strip()[-300:]}", flush=True)
    return out.returncode == 0


def sip_register_ws(server, user=USER, password=PASSWORD, timeout=5.0, sock=None):
    """REGISTER over WebSocket with the digest round (RFC 3261 §22); the final status code, or 0.
    On `sock` (an open ws_connect()) when given, which then stays open: a browser that takes calls."""
    try:
        s = sock or ws_connect(server.ws_port, timeout=timeout)
    except Exception as e:  # noqa: BLE001
        print(f"  legit WS: {type(e).__name__}: {e}", flush=True)
        return 0
    try:
        call_id = secrets.token_hex(8)
        tag = secrets.token_hex(4)
        host = f"127.0.0.1:{server.ws_port}"
        auth = ""
        for cseq in (1, 2):
            branch = "z9hG4bK" + secrets.token_hex(8)
            msg = (f"REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/WS {secrets.token_hex(4)}.invalid;branch={branch}\r\n"
                   f"Max-Forwards: 70\r\nTo: <sip:{user}@{REALM}>\r\nFrom: <sip:{user}@{REALM}>;tag={tag}\r\n"
                   f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
                   f"Contact: <sip:{secrets.token_hex(4)}@x.invalid;transport=ws>;expires=60\r\n{auth}"
                   f"Content-Length: 0\r\n\r\n")
            s.sendall(ws_frame(msg.encode()))
            while True:
                data = ws_read_message(s, timeout)
                if data is None:
                    return 0
                text = data.decode(errors="replace")
                status = int(text.split(" ", 2)[1]) if text.startswith("SIP/2.0 ") else 0
                if status >= 200:
                    break
            if status != 401 or cseq == 2:
                return status
            www = next(line for line in text.split("\r\n") if line.lower().startswith("www-authenticate:"))
            params = dict(p.strip().split("=", 1) for p in www.split(" ", 2)[2].split(","))
            realm, nonce = params["realm"].strip('"'), params["nonce"].strip('"')
            ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
            ha2 = hashlib.md5(f"REGISTER:sip:{REALM}".encode()).hexdigest()
            resp = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
            auth = (f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", '
                    f'uri="sip:{REALM}", response="{resp}", algorithm=MD5\r\n')
        return 0
    except Exception as e:  # noqa: BLE001
        print(f"  legit WS REGISTER: {type(e).__name__}: {e}", flush=True)
        return 0
    finally:
        if sock is None:
            s.close()


# ---------------------------------------------------------------------------------------------
# The frame around each case

class Context:
    def __init__(self, server, r):
        self.server = server
        self.r = r
        self.case = ""
        self.served = None

    def during(self, turn=("udp", "tcp", "tls"), sip=True, admin=True):
        """The legitimate clients, while the attack runs; checked (and reported) per client."""
        served = {}
        for t in turn:
            served[f"TURN {t} Allocate"] = turn_allocate(self.server, t)
        if sip:
            served["JsSIP REGISTER over WebSocket"] = jssip_register(self.server)
        if admin:
            served["admin request with the token"] = admin_get(self.server)[0] == 200
        for what, ok in served.items():
            self.r.check(f"{self.case}: {what} served during the attack", ok)
        self.served = served
        return served


def wait_for(fn, timeout=10.0, step=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def run_case(r, server, name, fn):
    ctx = Context(server, r)
    ctx.case = name
    pid = server.proc.pid
    fd0, rss0, log0, t0 = fds(pid), rss(pid), server.log_lines(), time.monotonic()
    probe = Probe(server).start()
    try:
        fn(r, ctx)
    except Exception as e:  # noqa: BLE001: a broken case is one failure, the others still run
        import traceback
        traceback.print_exc()
        r.check(f"{name}: the case ran", False, f"{type(e).__name__}: {e}")
    if ctx.served is None:
        r.check(f"{name}: the case called ctx.during()", False)
    probe.stop()
    sent, lost, p99 = probe.summary()
    if not r.check(f"{name}: the server is alive", server.alive(), server.log_tail(10) if not server.alive() else ""):
        return False
    release = not sanitized()
    if release:
        r.check(f"{name}: STUN Binding p99 within 100 ms during the case", p99 is not None and p99 <= PROBE_P99_BOUND
                and lost <= max(1, sent // 100), f"{sent} probes, {lost} lost, p99 {p99 and round(p99 * 1000, 1)} ms")
    after = Probe(server).start()
    time.sleep(0.6)
    after.stop()
    sent2, lost2, p99b = after.summary()
    r.check(f"{name}: STUN Binding answered after the case", lost2 == 0 and p99b is not None
            and (not release or p99b <= PROBE_P99_BOUND), f"{sent2} probes, p99 {p99b and round(p99b * 1000, 1)} ms")
    fd_ok = wait_for(lambda: fds(pid) <= fd0 + FD_SLACK, 15.0)
    r.check(f"{name}: file descriptors back to the baseline", fd_ok, f"{fd0} -> {fds(pid)}")
    if release:
        r.check(f"{name}: RSS back near the baseline", rss(pid) <= rss0 + RSS_SLACK,
                f"{rss0 >> 20} -> {rss(pid) >> 20} MiB")
    seconds = max(1.0, time.monotonic() - t0)
    grew = server.log_lines() - log0
    r.check(f"{name}: the log grew by at most {LOG_LINES_PER_SECOND} lines/s", grew <= LOG_LINES_PER_SECOND * seconds,
            f"{grew} lines in {seconds:.1f} s")
    return True


def run_cases(r, cases, server_factory=HostileServer):
    """Every case on one server (a case that kills it ends the run: the rest are reported lost)."""
    with server_factory() as server:
        for name, fn in cases:
            if not server.alive():
                r.check(f"{name}: not run, the server died in an earlier case", False)
                continue
            run_case(r, server, name, fn)


def module_main(cases):
    main_guard(lambda r: run_cases(r, cases))


__all__ = ["HostileServer", "Probe", "Context", "run_case", "run_cases", "module_main", "turn_allocate",
           "admin_get", "jssip_register", "ws_connect", "ws_frame", "ws_read_message", "sip_register_ws", "fds", "rss", "wait_for",
           "stun_binding", "STREAMS_CONFIG", "TOKEN", "DID", "OFFLINE_DID", "PROBE_SOURCE", "USER", "PASSWORD", "REALM",
           "sanitized", "free_port", "Path", "random"]
