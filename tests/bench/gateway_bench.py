#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Gateway media capacity of one core (issue 4): how many concurrent Opus<->PCMU calls (both
directions, 20 ms frames, SRTP included) one core sustains with no frame late, and what a G.711
passthrough call costs.

The load is tests/bench/gateway_load (gateway_load.cpp): N gateway::CallMedia in one thread pinned
to one CPU, each between an in-process browser (DTLS client, SRTP, Opus tone) and an in-process
trunk (PCMU tone), 20 ms ticks in real time. Gateway cost is that thread's CPU time inside the
CallMedia calls only; the peers' work (encoding, SRTP, checking) is measured apart and not counted.
A tick is late when the gateway's CPU time in it exceeds 20 ms. Every run checks every call
(tones heard within 2 % at both ends, no SRTP authentication failure, one packet per tick each
way, nothing dropped): a broken run stops the benchmark. Before measuring, the checks themselves
are shown to fail on purpose-broken calls (gateway_load --fault).

Steps: a calibration run gives the gateway CPU per call; the capacity search then verifies N
calls for the measured period, scaling N by 20 ms / the worst tick after each run (down after a
late tick, up after a clean one) and keeps the largest N with no late tick. Then a run of G.711
passthrough calls (the browser offers PCMU only) gives its cost per call.

Writes tests/bench/results/gateway.{md,json}.

Usage: tests/bench/gateway_bench.py [--quick] [--seconds S] [--cpu K] [--calls N]
"""
import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import REPO, RESULTS, machine, utc_now, write_results  # noqa: E402

LOAD = REPO / "build" / "tests" / "bench" / "gateway_load"
TICK_MS = 20.0
TARGET = 150
# Issue 4's anchors (per core, Opus<->G.711 transcoding).
ANCHORS = "Asterisk ~33 and FreeSWITCH ~20-25 transcoded calls per core; Kamailio+rtpengine ~3 % of a core per call"
ANCHOR_ROWS = [("Asterisk", "~33", "~3 %"), ("FreeSWITCH", "~20-25", "~4-5 %"),
               ("Kamailio + rtpengine", "~33", "~3 %")]


def cpu_times():
    """(busy, total) jiffies per CPU from /proc/stat."""
    out = []
    for line in Path("/proc/stat").read_text().splitlines():
        f = line.split()
        if f[0].startswith("cpu") and f[0] != "cpu":
            v = [int(x) for x in f[1:9]]
            idle = v[3] + v[4]
            out.append((sum(v) - idle, sum(v)))
    return out


def busy_pct(before, after):
    return [100.0 * (a[0] - b[0]) / max(1, a[1] - b[1]) for b, a in zip(before, after)]


def quietest_cpu():
    """The CPU other processes used least over half a second."""
    before = cpu_times()
    time.sleep(0.5)
    pct = busy_pct(before, cpu_times())
    return min(range(len(pct)), key=lambda i: pct[i])


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def run_load(calls, seconds, mode="opus", cpu=None, fault=None):
    # A busy machine slows the ticks down (we are not on the CPU): cut such a run short rather
    # than let the whole benchmark overrun its time bound.
    cmd = [str(LOAD), "--calls", str(calls), "--seconds", str(seconds), "--mode", mode,
           "--max-wall", str(round(seconds * 1.8 + 1, 1))]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    if fault:
        cmd += ["--fault", fault]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60 + calls * 0.05)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"gateway_load failed ({p.returncode}): {p.stderr.strip()}")
    r = json.loads(p.stdout)
    r["exit"] = p.returncode
    return r


def describe(r):
    g, c = r["gateway_cpu_ms_per_tick"], r["check"]
    return (f"{r['mode']} N={r['calls']}: gateway CPU per tick mean {g['mean']:.2f} ms, p99 {g['p99']:.2f}, "
            f"max {g['max']:.2f} ms; late ticks {r['late_ticks']}/{r['ticks']}; "
            f"{r['gateway_us_per_call_tick']:.1f} us per call per tick; peers {r['peer_cpu_ms_per_tick']['mean']:.2f} ms "
            f"per tick; {r['involuntary_switches']} preemptions{'; CUT SHORT (busy machine)' if r['cut_short'] else ''}; "
            f"checks {'ok' if r['exit'] == 0 else 'FAILED: ' + c['first_error']}")


def must_pass(r):
    print(describe(r), flush=True)
    if r["exit"] != 0:
        sys.exit("gateway_load: broken calls, no capacity reported: " + r["check"]["first_error"])
    return r


def self_test(cpu):
    """Each --fault must make the checks fail, with the counter it is meant to trip."""
    expect = {"srtp": "srtp_auth_failures", "tone": "worst_browser_tone_error_pct", "tick": "missing_packets"}
    out = {}
    for fault, key in expect.items():
        r = run_load(4, 0.6, cpu=cpu, fault=fault)   # 55 ticks with the warm-up: the tick fault hits tick 50
        caught = r["exit"] == 1 and r["check"]["calls_bad"] > 0 and r["check"][key] > 0
        print(f"self-test --fault {fault}: {'caught' if caught else 'NOT CAUGHT'} ({key} = {r['check'][key]})",
              flush=True)
        if not caught:
            sys.exit(f"gateway_load's checks missed the '{fault}' fault")
        out[fault] = {"calls_bad": r["check"]["calls_bad"], key: r["check"][key]}
    return out


def search(args, cpu, per_call_ms, deadline):
    """The largest N with no late tick: the next N is N * 20 ms / worst tick (2 % less after a late
    tick) until there is both a clean N and a late one, then halfway between them (bisection);
    stops when no untested N is left, the step is under 1 %, or no tries (or time) are left."""
    runs, best, failed_at = [], None, None
    n = max(1, math.floor(TICK_MS / per_call_ms * 0.85))   # worst ticks run above the mean
    for _ in range(args.tries):
        if time.monotonic() + args.seconds * 1.8 + 3 > deadline:
            print("capacity search stopped by the time bound", flush=True)
            break
        r = must_pass(run_load(n, args.seconds, cpu=cpu))
        runs.append(r)
        worst = r["gateway_cpu_ms_per_tick"]["max"]
        if r["late_ticks"] == 0:
            best = max(best or 0, n)
            nxt = math.floor(n * TICK_MS / worst)
        else:
            failed_at = min(failed_at or n, n)
            nxt = math.floor(n * TICK_MS / worst * 0.98)
        low, high = best or 0, failed_at or 10**9
        nxt = (low + high) // 2 if best is not None and failed_at is not None else min(max(nxt, low + 1), high - 1)
        if nxt <= low or any(x["calls"] == nxt for x in runs) or abs(nxt - n) < max(1, 0.01 * n):
            break
        n = nxt
    return runs, best, failed_at


def table(summary):
    t, p = summary["transcoded"], summary["passthrough"]
    best = t["max_calls"]
    verdict = "PASS" if best is not None and best >= TARGET else "FAIL"
    rows = [
        "| measure | turnbridge | target / anchors |",
        "| --- | ---: | --- |",
        f"| Opus<->PCMU calls on one core, no frame late | {best if best is not None else 'none'} "
        f"| target >= {TARGET}: **{verdict}**; Asterisk ~33, FreeSWITCH ~20-25 |",
        f"| Opus<->PCMU calls per core from the mean CPU per call (not verified) | {t['calls_per_core_from_mean']} | - |",
        f"| CPU per transcoded call | {t['core_pct_per_call']:.2f} % of a core ({t['us_per_call_tick']:.0f} us per 20 ms) "
        f"| Kamailio+rtpengine ~3 % |",
        f"| CPU per G.711 passthrough call | {p['core_pct_per_call']:.3f} % of a core ({p['us_per_call_tick']:.1f} us per 20 ms) "
        f"| - |",
        f"| passthrough calls per core (from CPU, not verified) | {p['calls_per_core_estimate']} | - |",
    ]
    return rows, verdict


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="shorter runs (under 40 s in all)")
    ap.add_argument("--seconds", type=float, help="measured period of each run (default 10, quick 3)")
    ap.add_argument("--cpu", type=int, help="CPU to pin to (default: the least busy one)")
    ap.add_argument("--calls", type=int, help="verify this N only, no search")
    ap.add_argument("--no-pin", action="store_true")
    args = ap.parse_args()
    args.seconds = args.seconds or (3 if args.quick else 10)
    args.tries = 3 if args.quick else 6
    budget = 36 if args.quick else 170   # seconds: the whole run stays under 40 s / 3 min
    if not LOAD.exists():
        sys.exit(f"{LOAD} missing: build first (scripts/bench builds)")
    cpu = None if args.no_pin else (args.cpu if args.cpu is not None else quietest_cpu())
    print(f"gateway benchmark: pinned to CPU {cpu}, {args.seconds} s measured per run", flush=True)

    load_before = os.getloadavg()
    cpu_before = cpu_times()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    faults = self_test(cpu)
    calibration = must_pass(run_load(30 if args.quick else 50, 1 if args.quick else 2, cpu=cpu))
    per_call_ms = calibration["gateway_us_per_call_tick"] / 1000
    if args.calls:
        runs = [must_pass(run_load(args.calls, args.seconds, cpu=cpu))]
        best = args.calls if runs[0]["late_ticks"] == 0 else None
        failed_at = None if best else args.calls
    else:
        runs, best, failed_at = search(args, cpu, per_call_ms, t0 + budget - args.seconds * 1.8 - 3)
    at_best = next((r for r in runs if r["calls"] == best), runs[-1])
    passthrough = must_pass(run_load(100 if args.quick else 200, args.seconds, mode="pcmu", cpu=cpu))
    wall = time.monotonic() - t0
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = (usage_after.ru_utime + usage_after.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    busy = busy_pct(cpu_before, cpu_times())
    load_after = os.getloadavg()
    ncpu = len(busy)
    others_pct = max(0.0, sum(busy) - 100.0 * ours / wall)   # in % of one CPU, all CPUs summed

    p_us = passthrough["gateway_us_per_call_tick"]
    summary = {
        "date": utc_now(),
        "machine": f"{machine()}, {cpu_model()}",
        "pinned_cpu": cpu,
        "quick": args.quick,
        "seconds_per_run": args.seconds,
        "run_seconds": wall,
        "load_average_1min": [load_before[0], load_after[0]],
        "cpu_busy_pct_per_cpu": busy,
        "other_processes_cpu_pct": others_pct,
        "target_calls": TARGET,
        "anchors": ANCHORS,
        "self_test": faults,
        "calibration": calibration,
        "transcoded": {
            "max_calls": best,
            "first_failing_calls": failed_at,
            "pass": best is not None and best >= TARGET,
            "us_per_call_tick": at_best["gateway_us_per_call_tick"],
            "core_pct_per_call": at_best["gateway_core_pct_per_call"],
            "calls_per_core_from_mean": math.floor(TICK_MS * 1000 / at_best["gateway_us_per_call_tick"]),
            "runs": runs,
        },
        "passthrough": {
            "calls": passthrough["calls"],
            "us_per_call_tick": p_us,
            "core_pct_per_call": passthrough["gateway_core_pct_per_call"],
            "calls_per_core_estimate": math.floor(TICK_MS * 1000 / p_us) if p_us > 0 else None,
            "run": passthrough,
        },
    }
    rows, verdict = table(summary)
    steps = ["| mode | calls | gateway CPU per tick: mean / p99 / max (ms) | late ticks | gateway wall per tick: max (ms) "
             "| us per call per tick | peers CPU per tick (ms) | preemptions | ticks not preempted: count, max (ms), late "
             "| checks |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in [calibration] + runs + [passthrough]:
        g = r["gateway_cpu_ms_per_tick"]
        steps.append(f"| {r['mode']} | {r['calls']} | {g['mean']:.2f} / {g['p99']:.2f} / {g['max']:.2f} "
                     f"| {r['late_ticks']}/{r['ticks']} | {r['gateway_wall_ms_per_tick']['max']:.2f} "
                     f"| {r['gateway_us_per_call_tick']:.1f} | {r['peer_cpu_ms_per_tick']['mean']:.2f} "
                     f"| {r['involuntary_switches']} | {r['ticks_not_preempted']}, "
                     f"{r['gateway_cpu_ms_per_tick_not_preempted']['max']:.2f}, {r['late_ticks_not_preempted']} "
                     f"| {'ok' if r['exit'] == 0 else 'FAILED'}{' (cut short)' if r['cut_short'] else ''} |")
    c = at_best["check"]
    md = [f"# Gateway media capacity on one core ({summary['date']})", "",
          f"Machine: {summary['machine']}. The load thread was pinned to CPU {cpu} (sched_setaffinity). "
          f"The machine is shared with other agents: load average (1 min) {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after; during the {wall:.0f} s run the CPUs were "
          f"{', '.join(f'{b:.0f} %' for b in busy)} busy, of which other processes about {others_pct:.0f} % of one CPU "
          f"(of {ncpu * 100} %). All costs below are the load thread's own CPU time (CLOCK_THREAD_CPUTIME_ID), "
          f"so time other processes took on the core is not counted; their cache and memory traffic still is.", "",
          *rows, "",
          f"Result: **{verdict}** against the target of {TARGET} transcoded calls per core "
          f"({best if best is not None else 'no N'} verified{'' if failed_at is None else f'; {failed_at} had late ticks'}). "
          f"Anchors (issue 4): {ANCHORS}.", "",
          "How it was measured: tests/bench/gateway_load runs N gateway::CallMedia in one thread. Each call has an "
          "in-process browser (ICE check with USE-CANDIDATE, DTLS client with its own certificate, SRTP "
          f"{calibration['srtp_profile']} as negotiated (libsrtp2 as Debian builds it, on NSS), a 20 ms Opus frame of a tone every tick from a 48 kHz libopus encoder "
          "at 32 kbit/s with in-band FEC, a consent check every 5 s) and an in-process trunk (PCMU RTP, another "
          "tone, every 20 ms). All calls are set up first (offer/answer, ICE, DTLS handshakes); then 20 ms ticks "
          "run in real time: the peers make their datagrams, every CallMedia gets its browser datagram, its trunk "
          "datagram and on_tick, then the peers take the output. Gateway cost = the thread's CPU time in the "
          "CallMedia calls only: SRTP unprotect, jitter buffer, Opus decode to 8 kHz and PCMU encode toward the "
          "trunk; PCMU decode, Opus encode (8 kHz) and SRTP protect toward the browser; ICE consent answers. "
          "Peer cost (browser Opus encoding, shared by calls with the same tone, one encoder per tone; SRTP on the "
          "browser side; keeping what was heard) is measured apart and not counted. A tick is late when the "
          "gateway's CPU time in it exceeds 20 ms; when gateway and peers together took more than 20 ms of wall "
          "time, the next tick started late (reported by gateway_load as behind_schedule_ticks) but the per-tick "
          "cost is unchanged.", "",
          f"Search: calibration with {calibration['calls']} calls gave the CPU per call; then runs of "
          f"{args.seconds:g} s each (plus 0.5 s warm-up), N scaled by 20 ms / the worst tick, down after a late "
          "tick, up after a clean run, the largest clean N kept. Passthrough: the browser offers PCMU only, so the "
          "gateway answers PCMU on both legs and copies payloads (SRTP only, no codec).", "",
          "Checks (every run; a failing call stops the benchmark): every call still Connected; no SRTP "
          "authentication failure at the browser and nothing dropped by the gateway; exactly one packet per tick at "
          "each peer with contiguous sequence numbers; every consent check answered; the tone each peer hears "
          "(last 0.5 s, Goertzel scan) within 2 % of what the other end plays, tones differing between neighbouring "
          "calls so that crossed calls fail. At the largest N: worst tone error "
          f"{c['worst_browser_tone_error_pct']:.2f} % at the browsers, {c['worst_trunk_tone_error_pct']:.2f} % at the "
          f"trunks, {c['srtp_auth_failures']} SRTP failures, {c['gateway_dropped']} dropped. Self-test before "
          "measuring: a flipped SRTP bit, crossed tones and a skipped tick (gateway_load --fault srtp|tone|tick) "
          "were each caught.", "",
          "Runs (preemptions: involuntary context switches of the load thread during the measured period, i.e. "
          "other processes taking the core; a tick counts as not preempted when none fell inside its gateway phase; "
          "cut short: the machine was too busy to keep the 20 ms pace and the run stopped at its time bound):", "",
          *steps, ""]
    write_results("gateway", summary, md)
    print()
    print("\n".join(rows))
    print(f"\n{verdict}: {best} transcoded calls per core (target {TARGET}); run took {wall:.0f} s; "
          f"load average {load_before[0]:.1f} -> {load_after[0]:.1f}; wrote {RESULTS / 'gateway.md'}")


if __name__ == "__main__":
    main()
