#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""No heap allocation per relayed packet (issue 5), counted by valgrind's DHAT.

turnbridge runs under `valgrind --tool=dhat`, which counts every heap block the process
allocates. Each case runs two servers, one with a short load and one with a load 25 times as
long (10 times for the hostile datagrams); at once but for the gateway calls. The extra blocks divided by the extra packets is the
allocations per packet. A per-packet allocation gives 1 or more. What does not grow with the
packets still differs from run to run by a few hundred blocks (a request uclient retransmits
to the server slowed by valgrind costs about 9, in OpenSSL's HMAC), a few hundredths per
packet over the long run's extra packets. The bound is 0.1.
- UDP and TCP client legs: coturn's turnutils_uclient with channels (ChannelData both ways)
  toward turnutils_peer, 5 sessions.
- Hostile datagrams that must cost no allocation either: garbage, truncated STUN and
  ChannelData for channels nobody bound (flood_test.py's pool).
- Gateway media (issue 12), relayed (the browser's allocation hands its datagrams to the call
  through the MediaExchange rings, the call's answers come back the same way) and direct:
  tests/bench/gateway_server_load drives one transcoded call (DTLS-SRTP Opus browser, PCMU
  trunk; and once with a G.722 trunk, Opus at 16 kHz, issue 14) for a short and a long
  measured period; the packets are the frames both ways. Blocks
  allocated under libsrtp2 are left out: Debian's libsrtp2 uses NSS for its HMAC and ciphers,
  which allocates a context per packet (about 13 blocks per frame), as OpenSSL's HMAC does
  above. SIP messages parsed and written (libosip2) are left out too: a call's signalling is
  the same in both runs, but how many times a message is parsed depends on whether the call
  landed on the worker of the browser's WebSocket (a few hundred blocks either way). What
  turnbridge's own media path allocates is counted.
Bad-credential requests are left out: checking MESSAGE-INTEGRITY runs OpenSSL's HMAC, which
allocates inside OpenSSL 3 on every key it is given.

Only on the release build: valgrind cannot run an ASan binary (scripts/test's RELEASE_ONLY).

interop-timeout: 600 (read by scripts/test)
"""
import json
import shutil
import socket
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import PASSWORD, REALM, USER, Turnbridge, free_port, main_guard, turnutils_peer
from turnutils_test import parse

SESSIONS = 5
SHORT, LONG = 40, 1000      # messages per session
PER_PACKET_BOUND = 0.1
HOSTILE_SHORT, HOSTILE_LONG = 500, 5000
# Accounting on (its database in the server's directory), flushed once a minute: a flush
# allocates, and the long run must not get several more of them than the short one. The text
# closes [server] in the generated config and opens [accounting].
ACCOUNTING = "\n[accounting]\nenabled = true\nflush_interval = 60\n"


def dhat_server(tag):
    server = Turnbridge(extra_server=ACCOUNTING, ready_timeout=60.0)
    out = server.dir / f"dhat-{tag}.json"
    server.prefix = ["valgrind", "--tool=dhat", f"--dhat-out-file={out}", "-q"]
    return server, out


def blocks(path, leave_out=()):
    """Heap blocks allocated over the whole run (DHAT's total blocks, "tbk"), but those whose
    stack passes through a library named in `leave_out`."""
    data = json.loads(path.read_text())
    if not leave_out:
        return sum(pp["tbk"] for pp in data["pps"])
    skip = {i for i, frame in enumerate(data["ftbl"]) if any(lib in frame for lib in leave_out)}
    return sum(pp["tbk"] for pp in data["pps"] if not skip.intersection(pp["fs"]))


def relay_run(tag, flags, messages):
    """(relayed packets, heap blocks) for one uclient run through a server under DHAT."""
    server, out = dhat_server(tag)
    with server:
        with turnutils_peer(server, ("127.0.0.1",)) as peer_port:
            if peer_port is None:
                raise RuntimeError("turnutils_peer did not start")
            cmd = ["turnutils_uclient", "-u", USER, "-w", PASSWORD, "-e", "127.0.0.1", "-r", str(peer_port),
                   "-p", str(server.port), "-n", str(messages), "-m", str(SESSIONS), "-l", "160", "-z", "10",
                   "-c", *flags, "127.0.0.1"]
            text = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=120).stdout
        rc = server.stop()
    totals = parse(text)
    if not totals or rc != 0:
        raise RuntimeError(f"{tag}: uclient totals {totals or 'missing'}, server exit {rc}")
    return totals["sent"] + totals["recv"], blocks(out)


GATEWAY_SHORT, GATEWAY_LONG = 2, 22     # measured seconds of one call
GATEWAY_LEAVE_OUT = ("libsrtp2", "libnss3", "libnssutil3", "libnspr4", "libsoftokn3", "libfreebl",
                     "libosipparser2", "sip::Message::parse", "sip::Message::serialize")
# Each run its own media port range.
MEDIA_BASE = {tag: 32000 + 100 * i for i, tag in enumerate(
    f"{kind}-{length}" for kind in ("gw-relayed", "gw-direct", "gw-g722") for length in ("short", "long"))}
LOAD = Path(__file__).resolve().parents[2] / "build" / "tests" / "bench" / "gateway_server_load"


class GatewayServer(Turnbridge):
    """The harness's server with gateway mode on for its realm (users g0 and test)."""

    def __init__(self, ports, codecs='"opus", "pcmu"', **kw):
        self.ports = ports
        self.codecs = codecs
        media = ports["media"]
        super().__init__(users={USER: PASSWORD, "g0": PASSWORD}, extra_server=f"""ws_listen = ["127.0.0.1:{ports['ws']}"]
sip_listen = ["127.0.0.1:{ports['sip']}"]
media_ip = "127.0.0.1"
media_ports = "{media}-{media + 99}"
""" + ACCOUNTING, **kw)

    def write_config(self):
        super().write_config()
        with open(self.config_path, "a") as f:
            f.write(f"""
[realm."{REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:{self.ports['trunk']};transport=udp"
codecs = [{self.codecs}]
""")


def gateway_run(tag, relay, seconds, g722=False):
    """(frames both ways, heap blocks) for one gateway call through a server under DHAT."""
    ports = {name: free_port() for name in ("ws", "sip", "trunk")}
    ports["media"] = MEDIA_BASE[tag]
    server = GatewayServer(ports, codecs='"opus", "pcmu", "g722"' if g722 else '"opus", "pcmu"', ready_timeout=60.0)
    out = server.dir / f"dhat-{tag}.json"
    server.prefix = ["valgrind", "--tool=dhat", f"--dhat-out-file={out}", "-q"]
    with server:
        cmd = [str(LOAD), "--ws", f"127.0.0.1:{ports['ws']}", "--trunk-port", str(ports["trunk"]), "--calls", "1",
               "--seconds", str(seconds), "--warmup-ticks", "50", "--realm", REALM, "--user-prefix", "g",
               "--password", PASSWORD, "--setup-timeout", "60", "--late-ms", "1000"]
        if relay:
            cmd += ["--turn", f"127.0.0.1:{server.port}"]
        if g722:
            cmd += ["--trunk-codec", "g722"]
        gen = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
        rc = server.stop()
    try:
        r = json.loads(gen.stdout[gen.stdout.index("{"):])
    except ValueError:
        raise RuntimeError(f"{tag}: no result from the load generator (exit {gen.returncode}): {gen.stderr[-500:]}")
    frames = r["to_browser"]["received"] + r["to_trunk"]["received"]
    if r["connected"] != 1 or frames == 0 or rc != 0:
        raise RuntimeError(f"{tag}: connected {r['connected']}, frames {frames}, server exit {rc}")
    return frames, blocks(out, GATEWAY_LEAVE_OUT)


def hostile_pool(port):
    """flood_test.py's hostile datagrams, less the bad-credential Allocates (see above)."""
    import flood_test
    pool = flood_test.flood_packets(("127.0.0.1", port))

    def is_full_allocate(p):
        return (len(p) >= 20 and p[0:2] == b"\x00\x03" and p[4:8] == b"\x21\x12\xa4\x42"
                and struct.unpack("!H", p[2:4])[0] + 20 == len(p))
    return [p for p in pool if not is_full_allocate(p)]


def hostile_run(tag, count):
    server, out = dhat_server(tag)
    with server:
        pool = hostile_pool(server.port)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.3", 0))
        sock.connect(("127.0.0.1", server.port))
        for i in range(count):
            sock.send(pool[i % len(pool)])
            if i % 50 == 49:
                time.sleep(0.005)   # stay within the socket buffer of a server slowed by valgrind
        sock.close()
        time.sleep(1.0)
        rc = server.stop()
    if rc != 0:
        raise RuntimeError(f"{tag}: server exit {rc}")
    return count, blocks(out)


def compare(results, name, short, long, at_once=True):
    """`short` and `long` are thunks. The relay cases run their two servers at once (each is
    mostly valgrind's start-up and a load that does not care about timing); a gateway call is
    paced in real time, and a second server under valgrind can starve it, so those run in turn."""
    if at_once:
        with ThreadPoolExecutor(2) as pool:
            a, b = pool.submit(short), pool.submit(long)
            (p1, b1), (p2, b2) = a.result(), b.result()
    else:
        (p1, b1), (p2, b2) = short(), long()
    extra = p2 - p1
    per_packet = (b2 - b1) / extra if extra > 0 else float("inf")
    results.check(f"{name}: at most {PER_PACKET_BOUND} heap allocations per packet",
                  extra > 0 and per_packet <= PER_PACKET_BOUND,
                  f"{p1} packets: {b1} blocks; {p2} packets: {b2} blocks; {per_packet:.4f} per extra packet")


def test(results):
    if not shutil.which("valgrind"):
        results.check("valgrind installed (scripts/setup installs it)", False)
        return
    for name, flags in (("UDP ChannelData relayed both ways", []), ("TCP ChannelData relayed both ways", ["-t"])):
        tag = "tcp" if flags else "udp"
        compare(results, name, lambda: relay_run(f"{tag}-short", flags, SHORT),
                lambda: relay_run(f"{tag}-long", flags, LONG))
    compare(results, "garbage, truncated STUN, ChannelData on unbound channels",
            lambda: hostile_run("hostile-short", HOSTILE_SHORT), lambda: hostile_run("hostile-long", HOSTILE_LONG))
    if not LOAD.exists():
        results.check(f"{LOAD} built (ninja -C build)", False)
        return
    for name, relay in (("gateway media relayed through a TURN allocation (MediaExchange)", True),
                        ("gateway media direct", False)):
        tag = "gw-relayed" if relay else "gw-direct"
        compare(results, name, lambda: gateway_run(f"{tag}-short", relay, GATEWAY_SHORT),
                lambda: gateway_run(f"{tag}-long", relay, GATEWAY_LONG), at_once=False)
    compare(results, "gateway media direct, G.722 trunk (Opus at 16 kHz)",
            lambda: gateway_run("gw-g722-short", False, GATEWAY_SHORT, g722=True),
            lambda: gateway_run("gw-g722-long", False, GATEWAY_LONG, g722=True), at_once=False)


if __name__ == "__main__":
    main_guard(test)
