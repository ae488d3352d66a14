#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""coturn's turnutils_uclient against turnbridge, with turnutils_peer (a UDP echo) as the
peer, all on 127.0.0.1. The matrix is client transport (UDP, TCP, TLS) x data path
(ChannelData, or Send/Data indications with -s) x RTP/RTCP pairs (EVEN-PORT and
RESERVATION-TOKEN, the default) or single allocations (-c).

turnutils_uclient exits 0 even when every packet is lost, so its closing totals are parsed:
a case fails if nothing was sent or if fewer messages came back than went out.
Never starts coturn's own turnserver.

interop-timeout: 420 (read by scripts/test)
"""
import re
from concurrent.futures import ThreadPoolExecutor
import subprocess
import time

from harness import PASSWORD, USER, Turnbridge, main_guard, turnutils_peer, uclient_drew_one_channel_twice

CLIENTS = 5        # -m
MESSAGES = 200     # -n, per client (and per RTP/RTCP leg)
LENGTH = 160       # -l, one 20 ms G.711 frame
INTERVAL_MS = 5    # -z, per client: 5 clients at 200 packets/s each
RUN_TIMEOUT = 60   # seconds for one turnutils_uclient run
PARALLEL = 3       # turnutils_uclient runs at a time

TOTALS = re.compile(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", re.M)
BYTES = re.compile(r"tot_send_bytes ~ (\d+), tot_recv_bytes ~ (\d+)\s*$", re.M)
LOST = re.compile(r"Total lost packets (\d+) \(([0-9.]+)%\)")


def parse(output):
    """The last totals line (the summary), or None if the run never got that far."""
    totals = TOTALS.findall(output)
    if not totals:
        return None
    sent, recv = map(int, totals[-1])
    out = {"sent": sent, "recv": recv}
    b = BYTES.findall(output)
    if b:
        out["sent_bytes"], out["recv_bytes"] = map(int, b[-1])
    lost = LOST.search(output)
    if lost:
        out["lost"] = int(lost.group(1))
    return out


def run_case(server, peer_port, name, flags, log_dir):
    """(name, ok, detail) of one turnutils_uclient run."""
    port = server.tls_port if "-S" in flags else server.port
    peer = ["-e", "127.0.0.1"] if "-e" not in flags else []
    cmd = ["turnutils_uclient", "-u", USER, "-w", PASSWORD, *peer, "-r", str(peer_port),
           "-p", str(port), "-n", str(MESSAGES), "-m", str(CLIENTS), "-l", str(LENGTH),
           "-z", str(INTERVAL_MS), *flags, "127.0.0.1"]
    log = log_dir / f"uclient-{name.replace(' ', '_').replace('/', '-')}.log"
    t0 = time.monotonic()
    logged = []
    for _ in range(2):
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT)
            output, rc = proc.stdout.decode(errors="replace"), proc.returncode
        except subprocess.TimeoutExpired as e:
            output, rc = (e.stdout or b"").decode(errors="replace"), "timeout"
        logged.append(" ".join(cmd) + "\n" + output)
        if not uclient_drew_one_channel_twice(output):
            break
    log.write_text("\n".join(logged))
    took = time.monotonic() - t0
    totals = parse(output)
    if totals is None:
        tail = "\n".join(output.splitlines()[-8:])
        return name, False, f"no totals (rc={rc}); tail:\n{tail}\n{server.log_tail(10)}"
    detail = (f"sent {totals['sent']} recv {totals['recv']} msgs, "
              f"{totals.get('sent_bytes', '?')}/{totals.get('recv_bytes', '?')} bytes, "
              f"lost {totals.get('lost', '?')}, rc={rc}, {took:.1f}s")
    ok = (totals["sent"] > 0 and totals["recv"] >= totals["sent"]
          and totals.get("lost", 0) == 0 and server.alive())
    if not server.alive():
        detail += "; turnbridge died:\n" + server.log_tail(20)
    return name, ok, detail


def test(results):
    with Turnbridge() as server:
        with turnutils_peer(server) as peer_port:
            if not results.check("turnutils_peer started", peer_port is not None):
                return
            cases = []
            for transport, tflags in (("udp", []), ("tcp", ["-t"]), ("tls", ["-t", "-S"])):
                for path, pflags in (("channels", []), ("send-indications", ["-s"])):
                    for pairs, cflags in (("rtp+rtcp", []), ("single", ["-c"])):
                        cases.append((f"{transport} {path} {pairs}", tflags + pflags + cflags))
            # An IPv6 relayed address (-x: REQUESTED-ADDRESS-FAMILY, RFC 8656 §7.2) toward the
            # peer on ::1, over an IPv4 client leg.
            for transport, tflags in (("udp", []), ("tcp", ["-t"])):
                for path, pflags in (("channels", []), ("send-indications", ["-s"])):
                    cases.append((f"{transport} {path} ipv6-relay", tflags + pflags + ["-c", "-x", "-e", "::1"]))
            # Client to client (-y): the allocations relay to each other, no turnutils_peer.
            for path, pflags in (("channels", []), ("send-indications", ["-s"])):
                cases.append((f"udp {path} client-to-client", pflags + ["-y"]))
            # PARALLEL runs at once against the one server (each takes about 7 s, most of it
            # uclient's own waiting): 1000 packets/s each, far below what loses a packet.
            with ThreadPoolExecutor(PARALLEL) as pool:
                outcomes = list(pool.map(lambda c: run_case(server, peer_port, c[0], c[1], server.dir), cases))
            for name, ok, detail in outcomes:
                results.check(name, ok, detail)
        rc = server.stop()
        results.check("turnbridge stops cleanly on SIGTERM", rc == 0, f"exit code {rc}")


if __name__ == "__main__":
    main_guard(test)
