#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What accounting costs, counted in instructions rather than seconds: the same voice-like relay
load through turnbridge with [accounting] on and off, each run under `valgrind --tool=callgrind`
with instrumentation switched on only while the load runs. Instruction counts do not depend on
what else the machine is doing, so this settles what CPU-time A/B rounds on a shared 2-core VM
cannot (their spread is about ±10 %).

Reports, per mode, user-space instructions per relayed packet (median of the rounds), the
on/off ratio, and for "on" the inclusive share of the accounting code itself (Worker::on_flush
with WorkerAccounting::take, WorkerAccounting::on_created/on_closed, AccountingHub::drain with
the SQLite writes). Kernel time (the larger part of relaying a packet) is not counted by
callgrind, so the share of total CPU is smaller still: these figures are upper bounds.

Load: coturn's turnutils_uclient (-c: channels, 160-byte payload, one packet per 20 ms per
session) echoed by turnutils_peer, loopback only. Writes tests/bench/results/accounting_callgrind.{md,json}.

Usage: tests/bench/accounting_callgrind.py [--rounds N] [--sessions M] [--messages K] [--flush S]
"""
import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (BINARY, RESULTS, ab_rounds, cpu_times, echo_peer, free_port, machine,  # noqa: E402
                          start_turnbridge, stop, turnbridge_config)

# Entry points of the accounting work; none calls another, so their inclusive costs add up.
# The worker's part runs on the relay thread; the store's on the control thread.
WORKER_ROOTS = ["turnbridge::server::Worker::on_flush(",
                "turnbridge::server::WorkerAccounting::on_created(",
                "turnbridge::server::WorkerAccounting::on_closed("]
CONTROL_ROOTS = ["turnbridge::app::AccountingHub::drain()"]


def callgrind_control(pid, on):
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(pid)],
                   check=True, capture_output=True, timeout=60)


def uclient(port, peer_port, args):
    """The voice-like load: one 160-byte packet per 20 ms per session, over channels."""
    return ["turnutils_uclient", "-u", "bench", "-w", "bench", "-e", "127.0.0.1", "-r", str(peer_port),
            "-p", str(port), "-c", "-m", str(args.sessions), "-n", str(args.messages), "-l", "160",
            "-z", "20", "127.0.0.1"]


def run(enabled, args, work, tag):
    port = free_port()
    config = turnbridge_config(port, accounting=enabled, database=str(work / f"{tag}.db"), flush=args.flush)
    out_file = work / f"{tag}.callgrind"
    server = start_turnbridge(work, config, name=tag, timeout=60,
                              prefix=("valgrind", "--tool=callgrind", "--instr-atstart=no",
                                      f"--callgrind-out-file={out_file}"))
    peer = None
    try:
        peer, peer_port = echo_peer()
        callgrind_control(server.pid, True)
        load = subprocess.run(uclient(port, peer_port, args), capture_output=True, text=True, timeout=900)
        # The allocations end when uclient exits; their final records are part of the cost.
        time.sleep(1.0)
        callgrind_control(server.pid, False)
    finally:
        if peer:
            peer.terminate()
            peer.wait()
        stop(server, timeout=120)
    text = load.stdout + load.stderr
    totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", text)
    if not totals:
        raise RuntimeError("no totals from turnutils_uclient:\n" + text[-2000:])
    sent, received = map(int, totals[-1])
    relayed = sent + received  # each message crosses the relay twice (to the peer and back)
    annotate = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out_file)],
                              capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"^([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", annotate, re.M).group(1).replace(",", ""))
    worker = control = 0
    for line in annotate.splitlines():
        m = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+\?\?\?:(.*)$", line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        if any(m.group(2).startswith(root) for root in WORKER_ROOTS):
            worker += n
        elif any(m.group(2).startswith(root) for root in CONTROL_ROOTS):
            control += n
    return {"accounting": "on" if enabled else "off", "sent": sent, "received": received,
            "lost": sent - received, "instructions": total, "accounting_instructions": worker + control,
            "worker_accounting_instructions": worker, "control_accounting_instructions": control,
            "instructions_per_packet": total / relayed if relayed else float("nan")}


def user_fraction(args, work):
    """User time's share of the server's CPU time under the same load, without valgrind (from
    /proc/PID/stat), to turn shares of user-space instructions into shares of all CPU time."""
    port = free_port()
    server = start_turnbridge(work, turnbridge_config(port, database=str(work / "plain.db"), flush=args.flush),
                              name="plain")
    peer, peer_port = echo_peer()
    try:
        subprocess.run(uclient(port, peer_port, args), capture_output=True, timeout=900)
        user, system = cpu_times(server.pid)
    finally:
        peer.terminate()
        peer.wait()
        stop(server, timeout=30)
    return user / (user + system) if user + system else 1.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3, help="A/B pairs")
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--messages", type=int, default=500, help="per session, one per 20 ms")
    ap.add_argument("--flush", type=int, default=5, help="[accounting] flush_interval (the default)")
    args = ap.parse_args()
    if not BINARY.exists():
        sys.exit(f"{BINARY} missing: build first")
    work = Path(tempfile.mkdtemp(prefix="turnbridge-callgrind-"))
    def one(enabled, i):
        return run(enabled, args, work, f"r{i}-{'on' if enabled else 'off'}")

    def describe(row):
        share = row["accounting_instructions"] / row["instructions"] * 100
        return (f"round {row['round']} accounting {row['accounting']}: {row['instructions_per_packet']:.0f} "
                f"instructions per relayed packet, accounting code {share:.2f} %, lost {row['lost']}")

    try:
        rows = ab_rounds(args.rounds, one, describe)
        fraction = user_fraction(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def median(key, acct):
        return statistics.median(r[key] for r in rows if r["accounting"] == acct)
    on, off = median("instructions_per_packet", "on"), median("instructions_per_packet", "off")
    ons = [r for r in rows if r["accounting"] == "on"]
    shares = [r["accounting_instructions"] / r["instructions"] * 100 for r in ons]
    worker_share = max(r["worker_accounting_instructions"] / r["instructions"] * 100 for r in ons)
    control_share = max(r["control_accounting_instructions"] / r["instructions"] * 100 for r in ons)
    summary = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": vars(args), "rounds": rows,
        "instructions_per_packet_on": on, "instructions_per_packet_off": off,
        "ratio_on_off": on / off,
        "accounting_share_percent_max": max(shares),
        "worker_thread_share_percent_max": worker_share,
        "control_thread_share_percent_max": control_share,
        "user_time_fraction": fraction,
        "accounting_share_of_cpu_percent": max(shares) * fraction,
        "worker_thread_share_of_cpu_percent": worker_share * fraction,
        "lost_on": sum(r["lost"] for r in rows if r["accounting"] == "on"),
        "lost_off": sum(r["lost"] for r in rows if r["accounting"] == "off"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "accounting_callgrind.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = [f"# Accounting on vs off, in instructions ({summary['date']})", "",
          f"Machine: {summary['machine']}. Load: turnutils_uclient -m {args.sessions} -n {args.messages} "
          f"-l 160 -z 20 -c (voice-like: 50 packets/s per session over channels), echoed by turnutils_peer; "
          f"turnbridge threads = 1, flush_interval = {args.flush} s, run under callgrind with "
          f"instrumentation on only during the load; {args.rounds} alternating A/B pairs, medians.", "",
          "| accounting | user-space instructions per relayed packet | accounting code's share | lost |",
          "| --- | ---: | ---: | ---: |",
          f"| on | {on:.0f} | {max(shares):.2f} % (largest of the rounds) | {summary['lost_on']} |",
          f"| off | {off:.0f} | | {summary['lost_off']} |",
          f"| on/off | {on / off:.3f} | | |", "",
          "Where the accounting instructions go (largest round):", "",
          "| part | thread | share of user-space instructions | share of all CPU time |",
          "| --- | --- | ---: | ---: |",
          f"| counters snapshot, creation and end records | worker (the relay path) | {worker_share:.2f} % | {worker_share * fraction:.2f} % |",
          f"| SQLite writes, rollups, live view | control | {control_share:.2f} % | {control_share * fraction:.2f} % |",
          f"| all accounting | | {max(shares):.2f} % | {max(shares) * fraction:.2f} % |", "",
          f"User time was {fraction * 100:.0f} % of turnbridge's CPU time under the same load without "
          "valgrind (/proc/PID/stat); the rest is the kernel receiving and sending the datagrams, which "
          "callgrind does not count, so a share of all CPU time is the user-space share times that "
          "fraction. The counter increments themselves live in the relay code and run whether or not "
          "accounting is enabled. The worker-thread part is what can slow relaying; the store's part "
          "runs on the control thread, on another core when one is free.", ""]
    (RESULTS / "accounting_callgrind.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
