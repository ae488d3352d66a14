#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Where each server's CPU goes per relayed packet: turnbridge and coturn under the same loads
as relay_bench.py, each run sampled with `perf record -g` (Debian linux-perf).

For every load and server, --rounds runs (default 2, averaged; the order alternates). The
server's CPU per relayed packet is taken from /proc as in relay_bench.py; perf's call graphs
split it into:
  send      system calls that send (sendmmsg, sendmsg, sendto, write, writev)
  delivery  of which the receiving side's network stack (net_rx_action): on loopback the
            sender's system call also queues the datagram on the receiver's socket and wakes it
  receive   system calls that receive (recvmmsg, recvmsg, recvfrom, read, readv)
  wait      epoll_wait, with going to sleep and waking up
  tls       user space in OpenSSL (libcrypto, libssl): TLS records taken apart and made
  user      the rest of user space (the server, the event loop, libc)
  other     the rest of the kernel (timers, page faults, accept, SQLite's writes, ...)
Shares come from perf's samples, microseconds from /proc's CPU total.

The last section says what the measurement means for relay_bench.py's target (CPU per packet at
most half of coturn's): the send and receive system calls turnbridge cannot do without (one
datagram or write out per relayed packet), and on TLS legs the record each packet is sealed in or
opened from, against half of coturn's total.

Writes tests/bench/results/relay_profile.{md,json}.

Usage: tests/bench/relay_profile.py [--loads a,b,...] [--rounds N] [--no-pin]
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import BINARY, RESULTS, machine, stop, utc_now  # noqa: E402
from relay_bench import LOADS, SERVERS, Bench, versions  # noqa: E402

# System calls by what they do, named without their entry prefix (__x64_sys_, __sys_, ksys_, do_,
# ...): which frame of a call graph names the call varies with the kernel's inlining (writev, for
# one, shows as do_writev).
SYSCALLS = {**{n: "send" for n in ("sendmmsg", "sendmsg", "sendto", "write", "writev")},
            **{n: "receive" for n in ("recvmmsg", "recvmsg", "recvfrom", "read", "readv")},
            **{n: "wait" for n in ("epoll_wait", "epoll_pwait", "epoll_pwait2")}}
SYSCALL_FRAME = re.compile(r"^(?:__x64_sys_|__se_sys_|__do_sys_|_{2,4}sys_|ksys_|do_)(\w+)$")
PARTS = ("send", "delivery", "receive", "wait", "tls", "user", "other")
TLS_LIBRARIES = ("libcrypto", "libssl")
FRAME = re.compile(r"^\s*[0-9a-f]+\s+(\S+)\s+\((.*)\)\s*$")


class Perf:
    """perf record -g on one process for the length of one load."""

    def __init__(self, path):
        self.path = path

    def __call__(self, pid):
        proc = subprocess.Popen(["perf", "record", "-q", "-g", "-F", "499", "-o", str(self.path), "-p", str(pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # attached before the load starts

        def detach():
            proc.send_signal(2)  # SIGINT: perf writes its file and exits
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return detach


def classify(frames):
    """The part (PARTS) one sample belongs to; frames run from the sampled one outward."""
    if not frames:
        return "other"
    if frames[0][1] != "[kernel.kallsyms]":
        return "tls" if any(lib in frames[0][1] for lib in TLS_LIBRARIES) else "user"
    kernel = [sym for sym, dso in frames if dso == "[kernel.kallsyms]"]
    for sym in reversed(kernel):   # the outermost frame that names the system call
        m = SYSCALL_FRAME.match(sym)
        if m and m.group(1) in SYSCALLS:
            part = SYSCALLS[m.group(1)]
            return "delivery" if part == "send" and "net_rx_action" in kernel else part
    return "other"


def shares(path):
    """Percent of samples per part (PARTS), from perf's call graphs. "delivery" is counted apart
    here and folded back into "send" (of which it is a part) at the end."""
    out = subprocess.run(["perf", "script", "-i", str(path), "-F", "ip,sym,dso"],
                         capture_output=True, text=True, timeout=600).stdout
    counts = dict.fromkeys(PARTS, 0)
    frames = []
    for line in out.splitlines() + [""]:
        m = FRAME.match(line)
        if m:
            frames.append((m.group(1), m.group(2)))
        elif not line.strip() and frames:
            counts[classify(frames)] += 1
            frames = []
    total = sum(counts.values()) or 1
    pct = {p: 100.0 * n / total for p, n in counts.items()}
    pct["send"] += pct["delivery"]
    return pct


def mean_run(load_name, name, runs):
    """The rounds of one server and load, averaged part by part."""
    n = len(runs)
    return {"server": name, "load": load_name, "rounds": n,
            "cpu_us_per_packet": sum(r["cpu_us_per_packet"] for r in runs) / n,
            "us_per_packet": {p: sum(r["us_per_packet"][p] for r in runs) / n for p in PARTS}}


def fmt(v):
    return f"{v:.2f}"


def write_results(summary):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "relay_profile.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [f"# Where the CPU goes per relayed packet: turnbridge and coturn ({summary['date']})", "",
             f"Machine: {summary['machine']}. {summary['turnbridge_version']}, coturn "
             f"{summary['coturn_version']}. Pinning: {summary['pinning']}. {summary['rounds']} run(s) per "
             "server and load (averaged; the order alternates), the same loads and settings as relay.md "
             "(tests/bench/relay_bench.py), each run sampled with `perf record -g` (499 Hz). Sampling adds "
             "to both servers' CPU: compare within this page, and take the totals without perf from "
             "relay.md.", "",
             "Microseconds of server CPU per relayed packet: the total from /proc (utime + stime, as in "
             "relay.md), split by the shares of perf's samples. *send*: sendmmsg, sendmsg, sendto, write, "
             "writev; *delivery*: the part of *send* that is the receiving side's network stack "
             "(net_rx_action), which on loopback runs inside the sender's system call; *receive*: recvmmsg, "
             "recvmsg, recvfrom, read, readv; *wait*: epoll_wait with sleeping and waking; *tls*: user space in "
             "OpenSSL (libcrypto, libssl); *user*: the rest of user space (the server, the event loop, libc); "
             "*other*: the rest of the kernel.", "",
             "| load | server | total | send | of which delivery | receive | wait | tls | user | other |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in summary["means"]:
        us = r["us_per_packet"]
        lines.append(f"| {r['load']} | {r['server']} | {fmt(r['cpu_us_per_packet'])} | "
                     + " | ".join(fmt(us[p]) for p in PARTS) + " |")
    lines += ["", "## What this means for the target of half of coturn's CPU per packet", "",
              "Every relayed packet is one datagram (or one TCP/TLS write) out of the server, so the *send* "
              "system calls are a floor no relay in user space gets under; *receive* shrinks with batching "
              "but not to nothing; on TLS legs every packet is also sealed in or opened from a TLS record "
              "(*tls*). That floor, turnbridge's *send + receive + tls*, against half of coturn's total:", "",
              "| load | half of coturn's total | turnbridge send + receive + tls | turnbridge send | coturn send |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for load, f in summary["floor"].items():
        lines.append(f"| {load} | {fmt(f['half_coturn_total'])} | {fmt(f['turnbridge_floor'])} | "
                     f"{fmt(f['turnbridge_send'])} | {fmt(f['coturn_send'])} |")
    above = ", ".join(summary["floor_above_half"]) or "none"
    lines += ["", f"Loads where that floor alone comes to more than half of coturn's whole CPU per packet: {above}.",
              ""]
    text = "\n".join(lines)
    (RESULTS / "relay_profile.md").write_text(text)
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loads", help="comma-separated subset of: " + ", ".join(LOADS))
    ap.add_argument("--rounds", type=int, default=2, help="runs per server and load, averaged (default 2)")
    ap.add_argument("--run-timeout", type=int, default=120, help="seconds one uclient process may take")
    ap.add_argument("--no-pin", action="store_true", help="do not pin servers and load generators to CPUs")
    args = ap.parse_args()
    loads = dict(LOADS)
    if args.loads:
        wanted = args.loads.split(",")
        unknown = [w for w in wanted if w not in LOADS]
        if unknown:
            sys.exit(f"unknown load(s) {', '.join(unknown)}; known: {', '.join(LOADS)}")
        loads = {w: LOADS[w] for w in wanted}
    if not BINARY.exists():
        sys.exit(f"{BINARY} missing: build first (scripts/bench builds)")
    for tool in ("perf", "turnutils_uclient", "turnutils_peer", "taskset", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} missing: run scripts/bench relay-profile (it installs linux-perf)")

    work = Path(tempfile.mkdtemp(prefix="turnbridge-relay-profile-"))
    runs, peer = [], None
    try:
        bench = Bench(args, work)
        peer, peer_port = bench.start_peer()
        for r in range(args.rounds):
            for i, (load_name, load) in enumerate(loads.items()):
                for name in (SERVERS if (i + r) % 2 == 0 else SERVERS[::-1]):
                    data = work / f"{name}-{load_name}-{r}.perf"
                    row = bench.relay(name, load_name, load, peer_port, peer.pid, attach=Perf(data))
                    part = shares(data)
                    data.unlink()
                    total = row["cpu_s_per_million"]
                    run = {"server": name, "load": load_name, "round": r + 1, "relayed": row["relayed"],
                           "loss_pct": row["loss_pct"], "cpu_us_per_packet": total, "shares_pct": part,
                           "us_per_packet": {p: total * part[p] / 100.0 for p in PARTS}}
                    runs.append(run)
                    print(f"round {r + 1} {load_name:10} {name:10}: {total:6.2f} us/packet: "
                          + ", ".join(f"{p} {run['us_per_packet'][p]:.2f}" for p in PARTS), flush=True)
    finally:
        if peer:
            stop(peer)
        shutil.rmtree(work, ignore_errors=True)

    means = [mean_run(load_name, name, [r for r in runs if r["load"] == load_name and r["server"] == name])
             for load_name in loads for name in SERVERS]
    floor, above = {}, []
    for load_name in loads:
        by = {r["server"]: r for r in means if r["load"] == load_name}
        tb, ct = by["turnbridge"]["us_per_packet"], by["coturn"]
        f = {"half_coturn_total": ct["cpu_us_per_packet"] / 2,
             "turnbridge_floor": tb["send"] + tb["receive"] + tb["tls"],
             "turnbridge_send": tb["send"], "coturn_send": ct["us_per_packet"]["send"]}
        floor[load_name] = f
        if f["turnbridge_floor"] > f["half_coturn_total"]:
            above.append(load_name)
    tb_version, ct_version = versions()
    summary = {"date": utc_now(), "machine": machine(), "pinning": bench.pinning, "turnbridge_version": tb_version,
               "coturn_version": ct_version, "rounds": args.rounds, "loads": loads, "means": means, "runs": runs,
               "floor": floor, "floor_above_half": above}
    text = write_results(summary)
    print()
    print(text)
    print(f"written: {RESULTS / 'relay_profile.md'}, relay_profile.json")


if __name__ == "__main__":
    main()
