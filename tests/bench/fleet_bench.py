#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What fleet mode costs (issue 15): the same relay load through turnbridge with [fleet] on (an
outbox in the SQLite file, shipped to a throw-away PostgreSQL on loopback) and off (accounting
on either way), in alternating rounds, measuring server CPU seconds per million relayed packets
(/proc/PID/stat) as `scripts/bench accounting` does, and the outbox rows the shipper moved per
second. Then the shipper's throughput: PostgreSQL is stopped while the load runs, so the outbox
fills, and the drain after its restart is timed (rows per second; the drain is paced at 25,000
rows/s at most). Load: coturn's turnutils_uclient with turnutils_peer, loopback only. Writes
tests/bench/results/fleet.{md,json}.

Usage: tests/bench/fleet_bench.py [--rounds N] [--clients M] [--messages K]
"""
import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "interop"))
from bench_common import (BINARY, RESULTS, ab_rounds, add_load_arguments, cpu_seconds, echo_peer, worker_cpu_seconds,  # noqa: E402
                          free_port, machine, start_turnbridge, stop, turnbridge_config, uclient_load,
                          uclient_totals, utc_now)
from fleet_test import Postgres, outbox_rows  # noqa: E402  the test's throw-away cluster


def shipped(pg):
    out = pg.run("psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "turnbridge", "-d", "postgres", "-tAc",
                 "SELECT count(*) FROM fleet_intervals", check=False)
    return int(out.stdout.strip() or 0)


def run_round(fleet, args, workdir, pg, outage=False):
    port = free_port()
    db = workdir / f"bench-{time.monotonic_ns()}.db"
    cfg = turnbridge_config(port, threads=args.threads, database=db, flush=args.flush)
    if fleet:
        cfg += f'[fleet]\ndatabase = "{pg.url}"\nnode_id = "bench"\n'
    server = start_turnbridge(workdir, cfg, name=f"bench-{'on' if fleet else 'off'}")
    peer = None
    try:
        peer, peer_port = echo_peer()
        rows0 = shipped(pg) if fleet and not outage else 0
        if outage:
            pg.stop("immediate")
        cpu0, relay0 = cpu_seconds(server.pid), worker_cpu_seconds(server.pid)
        t0 = time.monotonic()
        out, wall = uclient_load(port, peer_port, args)
        cpu = cpu_seconds(server.pid) - cpu0
        relay_cpu = worker_cpu_seconds(server.pid) - relay0
        row = {}
        if outage:
            time.sleep(args.flush + 1)
            backlog = outbox_rows(db)
            pg.start()
            t1 = time.monotonic()
            while outbox_rows(db) > 0 and time.monotonic() - t1 < 120:
                time.sleep(0.01)
            drain = time.monotonic() - t1
            row = {"backlog_rows": backlog, "drain_s": drain, "drain_rows_per_s": backlog / drain if drain else 0}
        elif fleet:
            time.sleep(args.flush + 1)
            row = {"shipped_rows_per_s": (shipped(pg) - rows0) / (time.monotonic() - t0)}
    finally:
        if peer:
            stop(peer)
        stop(server)
    sent, received, lost = uclient_totals(out)
    relayed = sent + received  # each message crosses the relay twice
    row.update({"fleet": "on" if fleet else "off", "sent": sent, "received": received, "lost": lost, "cpu_s": cpu,
                "wall_s": wall, "cpu_s_per_million": cpu / relayed * 1e6 if relayed else float("nan"),
                "relay_cpu_s_per_million": relay_cpu / relayed * 1e6 if relayed else float("nan"),
                "packets_per_s": relayed / wall if wall else 0})
    return row


def main():
    ap = argparse.ArgumentParser()
    add_load_arguments(ap, flush=1)  # 1 s: the most outbox rows
    args = ap.parse_args()
    if not BINARY.exists():
        sys.exit(f"{BINARY} missing: build first")
    work = Path(tempfile.mkdtemp(prefix="turnbridge-bench-"))
    pg = Postgres().init()
    try:
        rows = ab_rounds(args.rounds, lambda fleet, _: run_round(fleet, args, work, pg),
                         lambda row: f"round {row['round']} fleet {row['fleet']}: {row['packets_per_s']:.0f} pkt/s, "
                                     f"{row['cpu_s_per_million']:.2f} CPU s per million packets "
                                     f"({row['relay_cpu_s_per_million']:.2f} in the relay threads), lost {row['lost']}")
        drain = run_round(True, args, work, pg, outage=True)
        print(f"outage: {drain['backlog_rows']} outbox rows drained in {drain['drain_s']:.2f} s "
              f"({drain['drain_rows_per_s']:.0f} rows/s)", flush=True)
    finally:
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)

    def mean(key, f):
        vals = [r[key] for r in rows if r["fleet"] == f]
        return sum(vals) / len(vals)
    on_cpu, off_cpu = mean("cpu_s_per_million", "on"), mean("cpu_s_per_million", "off")
    on_relay, off_relay = mean("relay_cpu_s_per_million", "on"), mean("relay_cpu_s_per_million", "off")
    summary = {"machine": machine(), "date": utc_now(), "load": vars(args), "rounds": rows, "drain": drain,
               "cpu_s_per_million_on": on_cpu, "cpu_s_per_million_off": off_cpu,
               "cpu_ratio_on_off": on_cpu / off_cpu if off_cpu else None,
               "relay_cpu_s_per_million_on": on_relay, "relay_cpu_s_per_million_off": off_relay,
               "relay_cpu_ratio_on_off": on_relay / off_relay if off_relay else None,
               "shipped_rows_per_s": mean("shipped_rows_per_s", "on")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fleet.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = [f"# [fleet] on vs off ({summary['date']})", "",
          f"Machine: {summary['machine']}. Load: turnutils_uclient -m {args.clients} -n {args.messages} "
          f"-l {args.length} -z {args.interval} -c, echoed by turnutils_peer; threads = {args.threads}, "
          f"flush_interval = {args.flush} s; {args.rounds} alternating A/B pairs; PostgreSQL on loopback.", "",
          "CPU seconds per million relayed packets: the relay threads (`worker-N`, what the target of "
          "3 % is about) and the whole process (with the control thread's SQLite flushes and the shipper).", "",
          "| fleet | relay threads | whole process | lost |", "| --- | ---: | ---: | ---: |",
          f"| on | {on_relay:.2f} | {on_cpu:.2f} | {sum(r['lost'] for r in rows if r['fleet'] == 'on')} |",
          f"| off | {off_relay:.2f} | {off_cpu:.2f} | {sum(r['lost'] for r in rows if r['fleet'] == 'off')} |",
          f"| on/off | {summary['relay_cpu_ratio_on_off']:.3f} | {summary['cpu_ratio_on_off']:.3f} | |", "",
          f"Shipper under this load: {summary['shipped_rows_per_s']:.0f} rows/s (what the flushes produce). "
          f"After a PostgreSQL outage during one more run: {drain['backlog_rows']} rows drained in "
          f"{drain['drain_s']:.2f} s, {drain['drain_rows_per_s']:.0f} rows/s.", ""]
    (RESULTS / "fleet.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
