#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hostile_test.py cases: connection and memory bounds on every stream (issue 11, [streams]).

- 2,000 idle connections to each stream listener (TURN TCP, TURN TLS, ws, SIP TCP, admin) from
  127.0.0.3-12: capped (the per-IP caps, and the admin's global cap), the server's descriptors
  stay bounded, Allocate and the admin with its token still work, and the server times the
  connections out while the attacker keeps them open.
- Slowloris on every stream (a byte a second): closed by handshake_timeout/message_timeout.
- Non-reading floods: WebSocket pings and SIP OPTIONS sent for ~5 s without reading a byte:
  RSS bounded (back-pressure stops reading), then the connections are closed (write bounds).
- Fragment hold: 300 WebSocket clients each holding an unfinished 60 KB fragmented message:
  memory bounded, and every one closed by message_timeout.

The timeouts are the short ones of hostile_common.STREAMS_CONFIG (3 s handshake and message,
4 s write, 5 s TURN and admin idle, 10 s SIP idle); the caps are the defaults.
"""
import select
import socket
import ssl
import time

from hostile_common import (admin_get, fds, module_main, rss, sanitized, wait_for, ws_connect, ws_frame)

ATTACKERS = [f"127.0.0.{i}" for i in range(3, 13)]  # 10 sources
PER_KIND = 2000
DEFAULT_PER_IP = {"turn": 128, "ws": 64, "sip": 32, "admin": 16}
ADMIN_MAX = 64
SWEEP_SLACK = 3.0
CLOSE_REASONS = ("handshake_timeout", "message_timeout", "idle_timeout", "write_timeout", "write_limit", "too_large")  # the hosts sweep once a second; a loaded machine is late


def metrics(server):
    """{sample: value} of the stream families in /metrics (with the token)."""
    status, body = admin_get(server, "/metrics")
    out = {}
    if status != 200:
        return out
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("turnbridge_stream_"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def metric(m, family, **labels):
    key = family + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return m.get(key, 0.0)


def refused(m, kind):
    return sum(metric(m, "turnbridge_stream_refused_total", kind=kind, reason=r) for r in ("global", "per_ip"))


def closed_by(m, kind, reason):
    return metric(m, "turnbridge_stream_closed_total", kind=kind, reason=reason)


def open_many(port, count, sources, send=b""):
    """Up to `count` TCP connections to 127.0.0.1:`port`, spread over `sources`; the sockets
    (non-blocking after connect) and how many connects failed."""
    socks, failed = [], 0
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((sources[i % len(sources)], 0))
            s.settimeout(2.0)
            s.connect(("127.0.0.1", port))
            if send:
                s.sendall(send)
            s.setblocking(False)
            socks.append(s)
        except OSError:
            failed += 1
            s.close()
    return socks, failed


def is_closed(s):
    """True when the server has closed `s` (EOF or reset); reads and drops what is pending."""
    try:
        while True:
            r, _, _ = select.select([s], [], [], 0)
            if not r:
                return False
            if not s.recv(65536):
                return True
    except (ConnectionError, OSError):
        return True


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def idle_flood(kind, port_of, timeout_reason, wait_s, label):
    def case(r, ctx):
        server = ctx.server
        pid = server.proc.pid
        port = port_of(server)
        m0 = metrics(server)
        fd0 = fds(pid)
        t0 = time.monotonic()
        socks, failed = open_many(port, PER_KIND, ATTACKERS)
        opened = time.monotonic() - t0
        time.sleep(0.5)
        m1 = metrics(server)
        cap = ADMIN_MAX if kind == "admin" else DEFAULT_PER_IP[kind] * len(ATTACKERS)
        grew = fds(pid) - fd0
        r.check(f"{label}: the server holds at most the cap ({cap})", grew <= cap + 16,
                f"{len(socks)} connected, {failed} failed in {opened:.1f} s; server fds +{grew}")
        if kind == "admin":
            # Full: each new unauthenticated connection evicts the oldest unauthenticated one.
            evicted = closed_by(m1, kind, "evicted") - closed_by(m0, kind, "evicted")
            r.check(f"{label}: over the cap, new connections are refused or evict idle ones",
                    refused(m1, kind) - refused(m0, kind) + evicted >= PER_KIND - cap - failed - 16,
                    f"refused +{refused(m1, kind) - refused(m0, kind):.0f}, evicted +{evicted:.0f}")
        else:
            # Opening takes a few seconds: the first ones may time out meanwhile, and their
            # slots go to later ones; every connection over the cap is refused or replaces one.
            gone = sum(closed_by(m1, kind, why) - closed_by(m0, kind, why) for why in CLOSE_REASONS)
            r.check(f"{label}: connections over the per-IP cap are refused and counted",
                    refused(m1, kind) - refused(m0, kind) + gone >= PER_KIND - cap - failed - 16,
                    f"refused +{refused(m1, kind) - refused(m0, kind):.0f}, timed out meanwhile +{gone:.0f}")
        ctx.during()
        # The attacker keeps every socket open; the server must close them itself.
        done = wait_for(lambda: metric(metrics(server), "turnbridge_stream_connections", kind=kind) <= 4,
                        wait_s + SWEEP_SLACK, 0.5)
        m2 = metrics(server)
        r.check(f"{label}: the server closes the idle connections ({timeout_reason})", bool(done),
                f"open now {metric(m2, 'turnbridge_stream_connections', kind=kind):.0f}, "
                f"{timeout_reason} +{closed_by(m2, kind, timeout_reason) - closed_by(m0, kind, timeout_reason):.0f}")
        close_all(socks)
    return case


def slowloris(r, ctx):
    """20 connections per stream, each sending one more byte of a message every second."""
    server = ctx.server
    m0 = metrics(server)
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    streams = {
        "TURN TCP": (server.port, b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"\x00" * 12),   # a Binding header
        "TURN TLS": (server.tls_port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40),  # a ClientHello
        "ws (upgrade)": (server.ws_port, b"GET /sip HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"),
        "SIP TCP": (server.sip_port, b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.13\r\n"),
        "admin": (server.admin_port, b"GET /api/v1/allocations HTTP/1.1\r\nHost: x\r\n"),
    }
    conns = {}
    for name, (port, _) in streams.items():
        conns[name], _ = open_many(port, 20, ["127.0.0.13"])
    # A WebSocket upgraded first, then one frame a byte at a time (message_timeout).
    ws_framed = []
    for _ in range(10):
        try:
            s = ws_connect(server.ws_port, source="127.0.0.13")
            s.setblocking(False)
            ws_framed.append(s)
        except OSError:
            pass
    conns["ws (frame)"] = ws_framed
    payloads = dict((k, v[1]) for k, v in streams.items())
    payloads["ws (frame)"] = ws_frame(b"OPTIONS sip:x SIP/2.0\r\n" * 10)
    closed_at = {name: [None] * len(socks) for name, socks in conns.items()}
    t0 = time.monotonic()
    during_done = False
    for second in range(12):  # bounded: 3 s timeouts + sweep + slack
        for name, socks in conns.items():
            for i, s in enumerate(socks):
                if closed_at[name][i] is not None:
                    continue
                if is_closed(s):
                    closed_at[name][i] = time.monotonic() - t0
                    continue
                try:
                    s.send(payloads[name][second:second + 1] or b" ")
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    closed_at[name][i] = time.monotonic() - t0
        if second == 1 and not during_done:
            ctx.during()
            during_done = True
            continue  # during() took its own time: no sleep
        if all(all(t is not None for t in v) for v in closed_at.values()):
            break
        time.sleep(1.0)
    for name, times in closed_at.items():
        late = [t for t in times if t is None]
        worst = max((t for t in times if t is not None), default=None)
        r.check(f"slowloris on {name}: every connection closed by the server", not late and bool(times),
                f"{len(times) - len(late)}/{len(times)} closed, last after {worst and round(worst, 1)} s")
    m1 = metrics(server)
    for kind in ("turn", "ws", "sip", "admin"):
        n = sum(closed_by(m1, kind, why) - closed_by(m0, kind, why) for why in ("message_timeout", "handshake_timeout"))
        r.check(f"slowloris: {kind} timeouts counted in /metrics", n >= 10, f"+{n:.0f}")
    for socks in conns.values():
        close_all(socks)


def flood_without_reading(r, ctx):
    """Pings over WebSocket and OPTIONS over SIP/TCP for ~5 s, never reading an answer."""
    server = ctx.server
    pid = server.proc.pid
    m0 = metrics(server)
    rss0 = rss(pid)
    ws = []
    for _ in range(4):
        s = ws_connect(server.ws_port, source="127.0.0.14")
        s.setblocking(False)
        ws.append(s)
    sip, _ = open_many(server.sip_port, 4, ["127.0.0.14"])
    ping = ws_frame(b"p" * 125, opcode=0x9)
    options = (b"OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.14:5060;branch=z9hG4bK%d\r\n"
               b"Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.14>;tag=1\r\nTo: <sip:probe@127.0.0.1>\r\n"
               b"Call-ID: %d@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    sent = {"ws": 0, "sip": 0}
    unsent = {s: b"" for s in ws + sip}  # a partial send's rest goes first: frames stay whole
    peak = rss0
    t0 = time.monotonic()
    n = 0
    during_done = False
    next_options = t0
    while time.monotonic() - t0 < 5.0:
        for s in ws:
            unsent[s] = unsent[s] or ping * 64
        # OPTIONS at about 400/s per connection: their cost per message is hostile_sip's case.
        if time.monotonic() >= next_options:
            next_options += 0.01
            for s in sip:
                n += 1
                unsent[s] = unsent[s] or options % (n, n)
        for s, data in unsent.items():
            if not data:
                continue
            try:
                k = s.send(data)
                unsent[s] = data[k:]
                sent["ws" if s in ws else "sip"] += k
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                unsent[s] = b""
        if not during_done and time.monotonic() - t0 > 2.0:
            peak = max(peak, rss(pid))
            ctx.during()
            during_done = True
        peak = max(peak, rss(pid)) if n % 200 == 0 else peak
        time.sleep(0.001)
    peak = max(peak, rss(pid))
    # ASan's quarantine holds freed memory back: RSS says nothing there (as in hostile_common).
    r.check("non-reading floods: RSS bounded while the clients send and never read", sanitized() or peak - rss0 <= 32 << 20,
            f"{rss0 >> 20} -> peak {peak >> 20} MiB; sent ws {sent['ws'] >> 10} KiB, sip {sent['sip'] >> 10} KiB")
    # Stopped reading: the server's queue stays over the soft bound until write_timeout (4 s).
    closed = wait_for(lambda: all(is_closed(s) for s in ws), 4 + 2 * SWEEP_SLACK, 0.5)
    m1 = metrics(server)
    pauses = metric(m1, "turnbridge_stream_read_pauses_total", kind="ws") - metric(m0, "turnbridge_stream_read_pauses_total", kind="ws")
    # Closed by the write bounds, or by message_timeout when reading paused mid-frame.
    closes = sum(closed_by(m1, "ws", w) - closed_by(m0, "ws", w) for w in ("write_timeout", "write_limit", "message_timeout"))
    r.check("non-reading WebSocket ping flood: reading paused, then the connections closed", bool(closed) and pauses >= 1
            and closes >= len(ws), f"pauses +{pauses:.0f}, closes +{closes:.0f}")
    sip_pauses = metric(m1, "turnbridge_stream_read_pauses_total", kind="sip") - metric(m0, "turnbridge_stream_read_pauses_total", kind="sip")
    sip_closed = wait_for(lambda: all(is_closed(s) for s in sip), 2.0, 0.5)
    # The gateway may rate-limit or drop OPTIONS from strangers: then nothing queues and there is
    # nothing to close for; when it answered enough to pause, the connection must go.
    r.check("non-reading SIP/TCP OPTIONS flood: closed when its answers back up", sip_pauses == 0 or bool(sip_closed),
            f"pauses +{sip_pauses:.0f}, closed {bool(sip_closed)}")
    close_all(ws + sip)


def fragment_hold(r, ctx):
    """300 WebSocket clients each send the first 60 KB fragment of a message and stop."""
    server = ctx.server
    pid = server.proc.pid
    m0 = metrics(server)
    rss0 = rss(pid)
    fragment = ws_frame(b"x" * 60_000, opcode=0x1, fin=False)
    socks = []
    sources = ATTACKERS[:5]  # 5 x 60 = 300, under the ws per-IP cap of 64
    t0 = time.monotonic()
    for i in range(300):
        if time.monotonic() - t0 > 2.5:  # before the first ones time out
            break
        try:
            s = ws_connect(server.ws_port, timeout=2.0, source=sources[i % len(sources)])
            s.sendall(fragment)
            s.setblocking(False)
            socks.append(s)
        except OSError:
            pass
    time.sleep(0.3)
    peak = rss(pid)
    r.check("fragment hold: memory per held message bounded (<= 96 KiB each)",
            sanitized() or peak - rss0 <= max(1, len(socks)) * 96 * 1024 + (4 << 20),
            f"{len(socks)} held, RSS {rss0 >> 20} -> {peak >> 20} MiB "
            f"({(peak - rss0) // max(1, len(socks)) >> 10} KiB each)")
    ctx.during()
    closed = wait_for(lambda: all(is_closed(s) for s in socks), 3 + 2 * SWEEP_SLACK, 0.5)
    m1 = metrics(server)
    n = closed_by(m1, "ws", "message_timeout") - closed_by(m0, "ws", "message_timeout")
    r.check("fragment hold: every held message closed by message_timeout", bool(closed) and n >= len(socks) - 5,
            f"{sum(is_closed(s) for s in socks)}/{len(socks)} closed, message_timeout +{n:.0f}")
    close_all(socks)


CASES = [
    ("2,000 idle TURN TCP connections", idle_flood("turn", lambda s: s.port, "idle_timeout", 5, "idle TURN TCP")),
    ("2,000 idle TURN TLS connections", idle_flood("turn", lambda s: s.tls_port, "handshake_timeout", 3, "idle TURN TLS")),
    ("2,000 idle WebSocket connections", idle_flood("ws", lambda s: s.ws_port, "handshake_timeout", 3, "idle ws")),
    ("2,000 idle SIP TCP connections", idle_flood("sip", lambda s: s.sip_port, "idle_timeout", 10, "idle SIP TCP")),
    ("2,000 idle admin connections", idle_flood("admin", lambda s: s.admin_port, "idle_timeout", 5, "idle admin")),
    ("slowloris on every stream", slowloris),
    ("non-reading WebSocket and SIP/TCP floods", flood_without_reading),
    ("fragment hold", fragment_hold),
]

if __name__ == "__main__":
    module_main(CASES)
