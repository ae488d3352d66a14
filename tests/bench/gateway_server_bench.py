#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Gateway capacity of the real server process (issue 12): N concurrent Opus<->PCMU calls through
build/turnbridge, measured from outside.

The load is tests/bench/gateway_server_load (gateway_server_load.cpp): per call a browser
(SIP over WebSocket with REGISTER and INVITE digest rounds, ICE nomination, DTLS client, SRTP, an
Opus tone every 20 ms, consent checks) and a trunk (its own UDP SIP UAS answering PCMU, a PCMU
tone every 20 ms). turnbridge runs with a config written to a temp dir (loopback only, free
ports, one user per browser), once with `threads = 1` and once with `threads = 2`, same load.
Between the generator's `measure-start` and `measure-end` lines this script reads the server's
CPU time: utime+stime of /proc/PID/stat (whole process) and of /proc/PID/task/*/stat (each
thread, named by its comm, with schedstat's run time in ns beside it).

Reported: server CPU per call (process CPU over the measured period / calls, in % of one core),
CPU per thread and the ratio between the two busiest threads with threads = 2, the CPU per call
ratio threads=2 / threads=1, frames missing and late at each peer (per direction), the calls
one core sustains (100 % / CPU per call with threads = 1) and, time allowing, a run at that N
(threads = 1) to verify it. Checks on every run (a failing run stops the benchmark): every call
set up, each peer hears the other's tone within 2 %, no SRTP authentication failure, no
unexpected packet, BYE 200 at both legs, the server still running. (Unanswered consent checks are
counted, not failed: RFC 7675 gives them 30 s.)
Before measuring, the checks are shown to fail on purpose-broken calls (--fault srtp|tone).

Writes tests/bench/results/gateway_server.{md,json}.

Both ways a browser reaches the gateway are measured: relayed (through a TURN allocation of its
own on the same server, ChannelData, as a browser with iceTransportPolicy "relay": the common case)
and direct (to the gateway's media address).

Each mode runs `--rounds` pairs (threads = 1 then 2, then 2 then 1, ...) and the figures are means
over them, so that the machine's drift weighs on both thread counts alike.

Usage: tests/bench/gateway_server_bench.py [--quick] [--calls N] [--seconds S] [--rounds R] [--no-verify]
                                           [--direct-only]
  --quick: 10 relayed calls for 5 s per run, no direct runs, no verification run (about 25 s).
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (BINARY, REPO, RESULTS, TICK, UdpDrops, cpu_times, free_port, machine,  # noqa: E402
                          rss_kib, start_turnbridge, stop, utc_now, write_results)

LOAD = REPO / "build" / "tests" / "bench" / "gateway_server_load"
REALM, PASSWORD, PREFIX = "example.org", "bench", "b"
SPREAD_TARGET, PER_CALL_TARGET = 1.3, 1.1   # issue 12: threads within 1.3x, CPU per call within 1.1x
MEDIA_PORTS = (27000, 28999)                # 3 per call; turnbridge skips ports in use


def config(threads, ports, calls):
    users = ", ".join(f'{PREFIX}{i} = "{PASSWORD}"' for i in range(calls))
    return f"""# Written by tests/bench/gateway_server_bench.py
[server]
listen = ["127.0.0.1:{ports['turn']}"]
relay_ips = ["127.0.0.1"]
relay_ports = "61000-61999"
threads = {threads}
log_level = "info"
ws_listen = ["127.0.0.1:{ports['ws']}"]
sip_listen = ["127.0.0.1:{ports['sip']}"]
media_ip = "127.0.0.1"
media_ports = "{MEDIA_PORTS[0]}-{MEDIA_PORTS[1]}"
sip_requests_per_second = 0   # every browser registers from 127.0.0.1: no per-source SIP rate here
[security]
allowed_peers = ["127.0.0.0/8"]
unauthenticated_rate = 0   # every browser Allocates from 127.0.0.1: no reflection guard here
[streams]
ws_max_connections_per_ip = 0   # every browser connects from 127.0.0.1
[accounting]
database = "bench.db"
[realm."{REALM}"]
users = {{ {users} }}
[realm."{REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:{ports['trunk']};transport=udp"
codecs = ["opus", "pcmu"]
"""


def threads_of(pid):
    """{tid: (comm, cpu seconds from utime+stime, (run ns, run-queue wait ns) from schedstat)}."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            f = stat.rsplit(")", 1)[1].split()
            sched = (task / "schedstat").read_text().split()
            out[int(task.name)] = (comm, (int(f[11]) + int(f[12])) / TICK, (int(sched[0]), int(sched[1])))
        except (OSError, ValueError, IndexError):
            continue   # a thread that ended meanwhile
    return out


def run(threads, calls, seconds, workdir, relay=True, fault=None, warmup=50):
    """One server, one load: the generator's JSON plus the server's CPU over the measured period."""
    ports = {}
    for name in ("turn", "ws", "sip", "trunk"):
        ports[name] = free_port()
    rundir = Path(tempfile.mkdtemp(prefix=f"t{threads}-n{calls}-", dir=workdir))
    server = start_turnbridge(rundir, config(threads, ports, calls))
    cmd = [str(LOAD), "--ws", f"127.0.0.1:{ports['ws']}", "--trunk-port", str(ports["trunk"]),
           "--calls", str(calls), "--seconds", str(seconds), "--warmup-ticks", str(warmup),
           "--realm", REALM, "--user-prefix", PREFIX, "--password", PASSWORD]
    if relay:
        cmd += ["--turn", f"127.0.0.1:{ports['turn']}"]
    if fault:
        cmd += ["--fault", fault]
    bound = 30 + seconds * 2.5 + calls * 0.2   # set-up, warm-up, measured period, hang-ups
    gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    drops = UdpDrops({"server": [server.pid], "generator": [gen.pid]})   # receive buffers overflowing
    watchdog = threading.Timer(bound, gen.kill)   # our own PID only
    watchdog.start()
    marks, rest, setup_line = {}, [], ""
    try:
        for line in gen.stdout:
            if line.startswith("measure-start"):
                marks["start"] = (time.monotonic(), sum(cpu_times(server.pid)), threads_of(server.pid),
                                  threads_of(gen.pid))
            elif line.startswith("measure-end"):
                marks["end"] = (time.monotonic(), sum(cpu_times(server.pid)), threads_of(server.pid),
                                threads_of(gen.pid))
                rss = rss_kib(server.pid)
            elif line.startswith("setup "):
                setup_line = line.strip()
            else:
                rest.append(line)
        gen.wait(10)
    finally:
        watchdog.cancel()
        if gen.poll() is None:
            gen.kill()
            gen.wait()
        alive = server.poll() is None
        dropped = drops.stop()
        stop(server)
    stderr = gen.stderr.read()
    if gen.returncode not in (0, 1) or "start" not in marks or "end" not in marks:
        log = (rundir / "turnbridge.log").read_text(errors="replace")[-1500:]
        raise RuntimeError(f"gateway_server_load failed (exit {gen.returncode}): {setup_line} {stderr.strip()}\n"
                           f"{''.join(rest)[-1500:]}\nserver log:\n{log}")
    r = json.loads("".join(rest))
    r["exit"] = gen.returncode
    r["threads"] = threads
    r["mode"] = "relayed" if relay else "direct"
    r["server_alive"] = alive
    r["udp_drops"] = {who: sum(d for label, _, d in dropped if label == who) for who in ("server", "generator")}
    (t0, c0, th0, g0), (t1, c1, th1, g1) = marks["start"], marks["end"]
    wall = t1 - t0
    r["window_s"] = wall
    r["server_cpu_s"] = c1 - c0
    r["server_core_pct"] = 100 * (c1 - c0) / wall
    r["server_core_pct_per_call"] = r["server_core_pct"] / calls
    r["server_rss_kib"] = rss
    per_thread = []
    for tid, (comm, cpu1, ns1) in sorted(th1.items()):
        comm0, cpu0, ns0 = th0.get(tid, (comm, 0.0, (0, 0)))
        per_thread.append({"tid": tid, "comm": comm, "main": tid == server.pid, "cpu_s": cpu1 - cpu0,
                           "core_pct": 100 * (cpu1 - cpu0) / wall, "run_ms": (ns1[0] - ns0[0]) / 1e6,
                           "runqueue_wait_ms": (ns1[1] - ns0[1]) / 1e6})
    # Time the generator was ready to run but had no CPU: its own lateness, not the server's.
    r["generator_runqueue_wait_ms"] = sum(v[2][1] - g0.get(k, (0, 0, (0, 0)))[2][1] for k, v in g1.items()) / 1e6
    r["per_thread"] = per_thread
    # The spread: the two busiest threads other than main (which runs the control loop), i.e. the
    # workers with threads = 2; a worker that never ran counts as 0.01 ms. Should the server name
    # its threads one day (pthread_setname_np), those named "worker" are the ones compared.
    named = [t for t in per_thread if "worker" in t["comm"]]
    busy = sorted((t["run_ms"] for t in (named or [t for t in per_thread if not t["main"]])), reverse=True)
    r["busiest_two_ratio"] = busy[0] / max(busy[1], 0.01) if len(busy) > 1 else None
    total_run = sum(t["run_ms"] for t in per_thread)
    r["busiest_thread_share_pct"] = 100 * busy[0] / total_run if total_run and busy else None
    log = (rundir / "turnbridge.log").read_text(errors="replace")
    r["server_log_warnings"] = len(re.findall(r" (warn|error) ", log))
    shutil.rmtree(rundir, ignore_errors=True)
    return r


def describe(r):
    c, b, t = r["check"], r["to_browser"], r["to_trunk"]
    threads = ", ".join(f"{'main ' if x['main'] else ''}{x['tid']} {x['core_pct']:.1f} % (waited "
                        f"{x['runqueue_wait_ms']:.0f} ms for a CPU)" for x in r["per_thread"])
    return (f"{r['mode']} threads={r['threads']} N={r['calls']}{' fault=' + r['fault'] if r['fault'] else ''}: server "
            f"{r['server_core_pct']:.1f} % of a core ({r['server_core_pct_per_call']:.3f} % per call); per thread: "
            f"{threads}; to browser: {b['missing']} missing, {b['late']} late (worst {b['worst_late_ms']:.1f} ms); "
            f"to trunk: {t['missing']} missing, {t['late']} late (worst {t['worst_late_ms']:.1f} ms), sender period "
            f"{t['sender_period_ms']['mean']:.2f} ms; generator behind {r['generator_behind_ticks']} ticks, "
            f"{r['generator_cpu_ms'] / max(1, r['measured_wall_ms']) * 100:.0f} % of a core, waited "
            f"{r['generator_runqueue_wait_ms']:.0f} ms for a CPU; UDP datagrams dropped by the kernel at the server "
            f"{r['udp_drops']['server']}, at the generator {r['udp_drops']['generator']}; checks "
            f"{'ok' if r['exit'] == 0 and r['server_alive'] else 'FAILED: ' + (c['first_error'] or 'server died')}")


def must_pass(r):
    print(describe(r), flush=True)
    if r["exit"] != 0 or not r["server_alive"]:
        sys.exit("gateway_server_load: broken calls, no figure reported: " + r["check"]["first_error"])
    return r


def self_test(workdir):
    """Each --fault must make the checks fail (srtp, tone) or show as late frames (stall), with the
    counter it is meant to trip."""
    out = {}
    for fault, key in (("srtp", "srtp_auth_failures"), ("tone", "worst_browser_tone_error_pct"), ("stall", "late")):
        r = run(1, 2, 1.2, workdir, fault=fault, warmup=10)
        if fault == "stall":   # trunk frames held 40 ms: late at the browser, the calls still fine
            value = r["to_browser"]["late"]
            caught = r["exit"] == 0 and value >= 2
        else:
            value = r["check"][key]
            caught = r["exit"] == 1 and r["check"]["calls_bad"] > 0 and value > 0
        print(f"self-test --fault {fault}: {'caught' if caught else 'NOT CAUGHT'} ({key} = {value})", flush=True)
        if not caught:
            sys.exit(f"gateway_server_load's checks missed the '{fault}' fault")
        out[fault] = {"calls_bad": r["check"]["calls_bad"], key: value}
    return out


def thread_rows(r):
    rows = []
    for x in sorted(r["per_thread"], key=lambda x: -x["run_ms"]):
        rows.append(f"| {r['mode']} | {r['threads']} | {x['tid']}{' (main)' if x['main'] else ''} | {x['comm']} "
                    f"| {x['cpu_s']:.2f} | {x['core_pct']:.1f} % | {x['run_ms']:.0f} | {x['runqueue_wait_ms']:.0f} |")
    return rows


def flow_row(r, name, f):
    return (f"| {r['mode']} | {r['threads']} | {r['calls']} | {name} | {f['expected']} | {f['received']} | {f['missing']} "
            f"| {f['sequence_gaps']} | {f['late']} | {f['lateness_ms']['p99']:.1f} / {f['worst_late_ms']:.1f} "
            f"| {f['sender_period_ms']['mean']:.3f} |")


def frames_bad(r):
    return sum(r[k][x] for k in ("to_browser", "to_trunk") for x in ("missing", "late"))


def frames_all(r):
    return r["to_browser"]["expected"] + r["to_trunk"]["expected"]


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def verdicts(ones, twos):
    """The figures issue 12 asks for, from threads = 1 and threads = 2 runs of the same load (means
    over the rounds)."""
    per_call = mean(r["server_core_pct_per_call"] for r in ones)
    per_call_2 = mean(r["server_core_pct_per_call"] for r in twos)
    ratio = per_call_2 / per_call if per_call > 0 else None
    spread = mean(r["busiest_two_ratio"] for r in twos)
    return {
        "rounds": len(ones),
        "server_core_pct_per_call_threads_1": per_call,
        "server_core_pct_per_call_threads_2": per_call_2,
        "per_call_ratio_threads_2_vs_1": ratio,
        "per_call_ratio_ok": ratio is not None and ratio <= PER_CALL_TARGET,
        "busiest_two_threads_ratio_threads_2": spread,
        "spread_ok": spread is not None and spread <= SPREAD_TARGET,
        "busiest_thread_share_pct_threads_2": mean(r["busiest_thread_share_pct"] for r in twos),
        "calls_per_core_from_cpu": math.floor(100 / per_call) if per_call > 0 else None,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10 relayed calls for 5 s per run, no verification")
    ap.add_argument("--calls", type=int, help="calls of the threads = 1 / threads = 2 runs (default 40, quick 10)")
    ap.add_argument("--seconds", type=float, help="measured period of each run (default 10, quick 5)")
    ap.add_argument("--no-verify", action="store_true", help="skip the run at the extrapolated capacity")
    ap.add_argument("--rounds", type=int, help="threads = 1 / threads = 2 pairs per mode (default 2, quick 1)")
    ap.add_argument("--direct-only", action="store_true", help="no TURN: browsers reach the media address directly")
    args = ap.parse_args()
    calls = args.calls or (10 if args.quick else 40)
    seconds = args.seconds or (5 if args.quick else 10)
    rounds = max(1, args.rounds or (1 if args.quick else 2))
    # Relayed (the common case) first; --quick measures relayed calls only.
    modes = [False] if args.direct_only else [True] if args.quick else [True, False]
    for exe in (BINARY, LOAD):
        if not exe.exists():
            sys.exit(f"{exe} missing: build first (scripts/bench builds)")
    print(f"gateway server benchmark: {calls} calls, {seconds:g} s measured per run, "
          f"{' and '.join('relayed' if m else 'direct' for m in modes)}, {rounds} round(s) of threads = 1 and 2",
          flush=True)
    t_start = time.monotonic()
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="turnbridge-gateway-bench-"))
    runs, figures, verify = {}, {}, None
    try:
        faults = self_test(workdir)
        for relay in modes:
            name = "relayed" if relay else "direct"
            done = {1: [], 2: []}
            for i in range(rounds):   # 1, 2, then 2, 1: drift of the machine weighs on both alike
                for threads in ((1, 2) if i % 2 == 0 else (2, 1)):
                    done[threads].append(must_pass(run(threads, calls, seconds, workdir, relay=relay)))
            runs[name] = {"threads_1": done[1], "threads_2": done[2]}
            figures[name] = verdicts(done[1], done[2])
        main_mode = "relayed" if modes[0] else "direct"
        capacity = figures[main_mode]["calls_per_core_from_cpu"]
        if capacity and not args.quick and not args.no_verify:
            n = min(capacity, (MEDIA_PORTS[1] - MEDIA_PORTS[0]) // 2 - 10)
            print(f"verifying {n} {main_mode} calls with threads = 1 (extrapolated capacity {capacity})", flush=True)
            verify = run(1, n, seconds, workdir, relay=modes[0])
            print(describe(verify), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    wall = time.monotonic() - t_start
    load_after = os.getloadavg()
    verified = (verify is not None and verify["exit"] == 0 and verify["server_alive"]
                and frames_bad(verify) <= 0.001 * frames_all(verify))
    # A run whose busiest thread waited for a CPU more than a tenth of the time says nothing about
    # what one core sustains: other processes had the core.
    starved = verify is not None and max(x["runqueue_wait_ms"] for x in verify["per_thread"]) > 100 * verify["window_s"]
    verdict = "yes" if verified else "inconclusive (other processes had the CPU)" if starved else "no"

    summary = {
        "date": utc_now(), "machine": machine(), "quick": args.quick, "calls": calls, "seconds_per_run": seconds,
        "rounds": rounds,
        "run_seconds": wall, "load_average_1min": [load_before[0], load_after[0]], "self_test": faults,
        "targets": {"per_call_ratio": PER_CALL_TARGET, "spread": SPREAD_TARGET},
        "figures": figures,
        "verified": None if verify is None else {"mode": verify["mode"], "calls": verify["calls"], "ok": verified,
                                                 "verdict": verdict},
        "runs": runs, "verify_run": verify,
    }
    yes = lambda ok: "**yes**" if ok else "**no**"  # noqa: E731
    rows = ["| measure | " + " | ".join(figures) + " | issue 12 target |",
            "| --- | " + " | ".join("---:" for _ in figures) + " | --- |"]

    def row(label, fmt, target=""):
        rows.append(f"| {label} | " + " | ".join(fmt(f) for f in figures.values()) + f" | {target} |")

    row("server CPU per call, threads = 1", lambda f: f"{f['server_core_pct_per_call_threads_1']:.3f} % of a core")
    row("server CPU per call, threads = 2", lambda f: f"{f['server_core_pct_per_call_threads_2']:.3f} % of a core")
    row("CPU per call, threads=2 / threads=1", lambda f: f"{f['per_call_ratio_threads_2_vs_1']:.2f}x "
        f"({yes(f['per_call_ratio_ok'])})", f"<= {PER_CALL_TARGET}x")
    def spread_text(x):   # over 1000x: the second worker (almost) never ran
        return "the other worker idle" if x is None or x > 1000 else f"{x:.2f}x"

    row("two busiest threads but main, threads = 2 (run time ratio)", lambda f: f"{spread_text(f['busiest_two_threads_ratio_threads_2'])} "
        f"({yes(f['spread_ok'])}; the busiest has {f['busiest_thread_share_pct_threads_2']:.0f} % of the server's CPU)",
        f"<= {SPREAD_TARGET}x")
    row("calls one core sustains (100 % / CPU per call, threads = 1)", lambda f: f"{f['calls_per_core_from_cpu']}",
        "in-process figure: tests/bench/results/gateway.md")
    if verify:
        v = verify
        busiest = max(v["per_thread"], key=lambda x: x["run_ms"])
        rows.append(f"| run at that N ({v['mode']}, threads = 1) | {v['calls']} calls: server {v['server_core_pct']:.0f} % "
                    f"of a core ({v['server_core_pct_per_call']:.3f} % per call, i.e. "
                    f"{math.floor(100 / v['server_core_pct_per_call'])} calls per core), its busiest thread waited "
                    f"{busiest['runqueue_wait_ms'] / 1000:.1f} s of {v['window_s']:.0f} s for a CPU; frames missing "
                    f"{v['to_browser']['missing'] + v['to_trunk']['missing']}, late "
                    f"{v['to_browser']['late'] + v['to_trunk']['late']} of {frames_all(v)}; verified: **{verdict}** "
                    + "| " * (len(figures) - 1) + "| at most 0.1 % of frames missing or late |")
    all_runs = [r for m in runs.values() for rs in m.values() for r in rs] + ([verify] if verify else [])
    md = [f"# Gateway through the real server ({summary['date']})", "",
          f"Machine: {summary['machine']}. Shared with other sessions: load average (1 min) {load_before[0]:.1f} "
          f"before, {load_after[0]:.1f} after the {wall:.0f} s run. Made by `scripts/bench gateway` (after the "
          "in-process figure) or `scripts/bench gateway-server` (tests/bench/gateway_server_bench.py)."
          + (" **Quick run** (--quick)." if args.quick else ""), "",
          *rows, "",
          "How it was measured: tests/bench/gateway_server_load drives N concurrent Opus<->PCMU calls through "
          "build/turnbridge on loopback. Per call, a browser: SIP over WebSocket (RFC 7118) to ws_listen, REGISTER "
          "answered after its 401 and INVITE after its 407 (digest); *relayed*: a TURN allocation of its own "
          "(Allocate with the 401 round, ChannelBind to the gateway's media address, all media as ChannelData, as "
          "a browser with iceTransportPolicy \"relay\"); *direct*: straight to the media address of the answer; "
          "ICE nomination (Binding with USE-CANDIDATE), DTLS client, SRTP, one Opus frame (48 kHz, 32 kbit/s, "
          "in-band FEC) of a tone every 20 ms, a consent check every 5 s. And a trunk: the generator's own UDP SIP "
          "UAS (the realm's `trunk`) answering 200 with PCMU at a port of its own per call, one PCMU frame of "
          "another tone every 20 ms. Calls are set up one after the other, then 1 s of warm-up, then "
          f"{seconds:g} s measured; {rounds} round(s) of threads = 1 and threads = 2 per mode, alternating which goes "
          "first; the table's figures are means over the rounds. Server CPU = utime+stime of /proc/PID/stat "
          "over the measured period; per thread from /proc/PID/task/*/stat (10 ms ticks) and schedstat (run time in ns, which the ratios use; the "
          "spread is between the two busiest threads other than main, which runs the control loop: with "
          "threads = 2, the two workers). "
          "turnbridge does not name its threads, so every comm is `turnbridge`; the main thread is marked. "
          "\"Waited for a CPU\" (schedstat's run-queue time) is how long a thread was ready to run while other "
          "processes had the CPUs: where it is large, frames late and missing measure the machine, not turnbridge. "
          "Capacity = 100 % of a core / CPU per call at threads = 1: it assumes that the gateway's work can use "
          "one whole core.", "",
          "Checks on every run: every call set up; each peer hears the other's tone within 2 % (the last 0.5 s, "
          "Goertzel; tones differ between neighbouring calls); no SRTP authentication failure; no unexpected "
          "packet; BYE 200 at both legs; the server still running (unanswered consent checks are counted, not "
          "failed: RFC 7675 allows 30 s). Self-test before "
          "measuring: a flipped SRTP bit and crossed tones (gateway_server_load --fault srtp|tone) were each caught, "
          "and trunks holding two frames every 2 s (--fault stall) showed as frames late at the browsers. "
          "Figures per direction (not checks): missing = frames expected minus heard (2 per call of slack for the "
          "period's edges); late = frames more than 20 ms behind their stream's schedule (the line fitted to "
          "sequence number and arrival time, moved to the earliest arrival: jitter and stalls count, the path "
          "delay and the sender's clock rate do not); sender period = that line's slope. Toward the browser the "
          "gateway forwards each trunk frame as it comes; toward the trunk it sends one frame per tick of its own "
          "20 ms timer.", "",
          "## Threads (measured period)", "",
          "| mode | threads = | thread | comm | CPU s (utime+stime) | % of a core | run time (ms, schedstat) "
          "| waited for a CPU (ms, schedstat) |",
          "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in all_runs[:len(all_runs) - (1 if verify else 0)]:
        md += thread_rows(r)
    md += ["", "## Frames at the peers", "",
           "| mode | threads | calls | direction | expected | heard | missing | out of sequence | late "
           "| lateness p99 / max (ms) | sender period (ms) |",
           "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in all_runs:
        md += [flow_row(r, "trunk -> browser", r["to_browser"]), flow_row(r, "browser -> trunk", r["to_trunk"])]
    md += ["", "## Runs", "",
           "| mode | threads | calls | server % of a core | % per call | RSS (MiB) | set-up ms per call (mean) "
           "| generator % of a core | generator waited for a CPU (ms) | generator behind (ticks) "
           "| consent checks unanswered | UDP drops (kernel) at server / generator | server warnings | checks |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in all_runs:
        md.append(f"| {r['mode']} | {r['threads']} | {r['calls']} | {r['server_core_pct']:.1f} "
                  f"| {r['server_core_pct_per_call']:.3f} | {r['server_rss_kib'] / 1024:.0f} "
                  f"| {r['setup_ms_per_call']['mean']:.0f} "
                  f"| {r['generator_cpu_ms'] / max(1, r['measured_wall_ms']) * 100:.0f} "
                  f"| {r['generator_runqueue_wait_ms']:.0f} | {r['generator_behind_ticks']} "
                  f"| {r['check']['unanswered_consent_checks']} "
                  f"| {r['udp_drops']['server']} / {r['udp_drops']['generator']} "
                  f"| {r['server_log_warnings']} | {'ok' if r['exit'] == 0 else 'FAILED: ' + r['check']['first_error']} |")
    md.append("")
    write_results("gateway_server", summary, md)
    print()
    print("\n".join(rows))
    print(f"\nrun took {wall:.0f} s; load average {load_before[0]:.1f} -> {load_after[0]:.1f}; "
          f"wrote {RESULTS / 'gateway_server.md'}")


if __name__ == "__main__":
    main()
