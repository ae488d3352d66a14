#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What accounting costs: the same relay load through turnbridge with [accounting] enabled
and disabled, in alternating rounds (A/B/A/B...), measuring server CPU seconds per million
relayed packets (from /proc/PID/stat) and loss. Load: coturn's turnutils_uclient with
turnutils_peer, on loopback only. Writes tests/bench/results/accounting.{md,json}.

Usage: tests/bench/accounting_bench.py [--rounds N] [--clients M] [--messages K]
"""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (BINARY, RESULTS, ab_rounds, add_load_arguments, cpu_seconds, echo_peer,  # noqa: E402
                          free_port, machine, start_turnbridge, stop, turnbridge_config, uclient_load,
                          uclient_totals, utc_now)


def run_round(enabled, args, workdir):
    port = free_port()
    cfg = turnbridge_config(port, threads=args.threads, accounting=enabled, database=workdir / "bench.db",
                            flush=args.flush)
    server = start_turnbridge(workdir, cfg, name=f"bench-{'on' if enabled else 'off'}")
    peer = None
    try:
        peer, peer_port = echo_peer()
        cpu0 = cpu_seconds(server.pid)
        out, wall = uclient_load(port, peer_port, args)
        cpu = cpu_seconds(server.pid) - cpu0
    finally:
        if peer:
            stop(peer)
        stop(server)
    sent, received, lost = uclient_totals(out)
    # Each message crosses the relay twice (client->peer, then the echo peer->client).
    relayed = sent + received
    return {"accounting": "on" if enabled else "off", "sent": sent, "received": received,
            "lost": lost, "cpu_s": cpu, "wall_s": wall,
            "cpu_s_per_million": cpu / relayed * 1e6 if relayed else float("nan"),
            "packets_per_s": relayed / wall if wall else 0}


def main():
    ap = argparse.ArgumentParser()
    add_load_arguments(ap, flush=5)  # flush: the server's default
    args = ap.parse_args()
    if not BINARY.exists():
        sys.exit(f"{BINARY} missing: build first")
    work = Path(tempfile.mkdtemp(prefix="turnbridge-bench-"))
    try:
        rows = ab_rounds(args.rounds, lambda enabled, _: run_round(enabled, args, work),
                         lambda row: f"round {row['round']} accounting {row['accounting']}: "
                                     f"{row['packets_per_s']:.0f} pkt/s, {row['cpu_s_per_million']:.2f} CPU s "
                                     f"per million packets, lost {row['lost']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def mean(key, acct):
        vals = [r[key] for r in rows if r["accounting"] == acct]
        return sum(vals) / len(vals)
    on_cpu, off_cpu = mean("cpu_s_per_million", "on"), mean("cpu_s_per_million", "off")
    on_pps, off_pps = mean("packets_per_s", "on"), mean("packets_per_s", "off")
    summary = {
        "machine": machine(),
        "date": utc_now(),
        "load": vars(args),
        "rounds": rows,
        "cpu_s_per_million_on": on_cpu, "cpu_s_per_million_off": off_cpu,
        "cpu_ratio_on_off": on_cpu / off_cpu if off_cpu else None,
        "packets_per_s_on": on_pps, "packets_per_s_off": off_pps,
        "throughput_ratio_on_off": on_pps / off_pps if off_pps else None,
        "lost_on": sum(r["lost"] for r in rows if r["accounting"] == "on"),
        "lost_off": sum(r["lost"] for r in rows if r["accounting"] == "off"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "accounting.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = [f"# Accounting on vs off ({summary['date']})", "",
          f"Machine: {summary['machine']}. Load: turnutils_uclient -m {args.clients} -n {args.messages} "
          f"-l {args.length} -z {args.interval} -c over UDP with channels, echoed by turnutils_peer; "
          f"turnbridge threads = {args.threads}, flush_interval = {args.flush} s; {args.rounds} alternating A/B pairs.", "",
          "| accounting | relayed packets/s | CPU s per million relayed packets | lost |",
          "| --- | ---: | ---: | ---: |",
          f"| on | {on_pps:.0f} | {on_cpu:.2f} | {summary['lost_on']} |",
          f"| off | {off_pps:.0f} | {off_cpu:.2f} | {summary['lost_off']} |",
          f"| on/off | {summary['throughput_ratio_on_off']:.3f} | {summary['cpu_ratio_on_off']:.3f} | |", ""]
    (RESULTS / "accounting.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
