#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""turnbridge against coturn, side by side in one run, on loopback.

Both servers get equivalent settings: one relay thread each (turnbridge threads = 1, coturn
relay-threads = 1), user bench/bench in realm example.org, loopback peers allowed, no
allocation quotas, the same relay port range, a self-signed certificate for TLS. turnbridge
runs as shipped, with [accounting] enabled (SQLite in the temp dir, flush_interval 5 s);
coturn runs without any database-backed feature besides its user DB file.

Relay loads come from coturn's own turnutils_uclient (several processes in parallel, since one
process connects its clients one by one) echoed by turnutils_peer, over UDP, TCP (-t) and TLS
(-t -S) client legs, with channels (-c):
  voice  160-byte payload, 50 packets/s per session (-z 20), hundreds of sessions
  flood  32-byte payload, -z 0: as fast as the load generator goes
  large  1200-byte payload, 100 packets/s per session (-z 10)
Rounds alternate the order (turnbridge first, then coturn first, ...). For each server and
load: relayed packets/s, loss, server CPU seconds (utime + stime of every thread, from
/proc/PID/stat) per million relayed packets.

Then, with tests/bench/alloc_load (build/tests/bench/alloc_load): Allocate transactions/s
(full long-term-credential flow, deleted again with Refresh 0), and RSS per 1,000 idle
allocations that each hold one channel (and so one permission).

Servers are pinned to the last CPU and load generators to the others with taskset (unless
--no-pin), which makes rounds more repeatable on a small machine.

Writes tests/bench/results/relay.{md,json,png}.

Usage: tests/bench/relay_bench.py [--quick] [--rounds N] [--loads a,b,...] [--no-pin]
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (BINARY, REPO, RESULTS, UdpDrops, cpu_seconds, cpu_times, free_port, machine,  # noqa: E402
                          rss_kib, start_coturn, start_turnbridge, stop, thread_count, turnbridge_config,
                          uclient_totals, utc_now)

ALLOC_LOAD = REPO / "build" / "tests" / "bench" / "alloc_load"
SERVERS = ("turnbridge", "coturn")
RELAY_PORTS = (10000, 23999)   # outside the ephemeral range, room for 10,000+ allocations each
UCLIENT_STOPPING_TIME = 10     # turnutils_uclient waits this long after its last send when packets were lost

# name: (transport, processes, sessions per process, messages per session, payload bytes, ms between packets)
LOADS = {
    "udp-voice": ("udp", 8, 25, 200, 160, 20),
    "udp-flood": ("udp", 2, 5, 8000, 32, 0),
    "udp-large": ("udp", 4, 25, 300, 1200, 10),
    "tcp-voice": ("tcp", 8, 25, 200, 160, 20),
    "tcp-flood": ("tcp", 2, 5, 8000, 32, 0),
    "tcp-large": ("tcp", 4, 25, 300, 1200, 10),
    "tls-voice": ("tls", 8, 25, 200, 160, 20),
    "tls-flood": ("tls", 2, 5, 8000, 32, 0),
    "tls-large": ("tls", 4, 25, 300, 1200, 10),
}
QUICK_LOADS = {
    "udp-voice": ("udp", 4, 25, 100, 160, 20),
    "udp-flood": ("udp", 2, 5, 2000, 32, 0),
    "udp-large": ("udp", 2, 25, 100, 1200, 10),
    "tcp-voice": ("tcp", 4, 25, 100, 160, 20),
    "tls-voice": ("tls", 4, 25, 100, 160, 20),
}


CHANNEL_COLLISION = "channel bind: error 400"   # uclient's line; each server words the reason its own way


class UclientDrewOneChannelTwice(RuntimeError):
    pass


class Bench:
    def __init__(self, args, work):
        self.args, self.work = args, work
        ncpu = os.cpu_count() or 1
        pin = not args.no_pin and ncpu >= 2
        self.server_prefix = ("taskset", "-c", str(ncpu - 1)) if pin else ()
        others = "0" if ncpu == 2 else f"0-{ncpu - 2}"
        self.load_prefix = ("taskset", "-c", others) if pin else ()
        self.pinning = f"servers on CPU {ncpu - 1}, load generators on CPU {others} (taskset)" if pin else "none"
        self.cert, self.key = work / "cert.pem", work / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", str(self.key),
                        "-out", str(self.cert)], check=True, capture_output=True)
        self.runs = 0

    def start(self, name):
        """A fresh server in its own directory; returns (process, udp/tcp port, tls port)."""
        self.runs += 1
        d = self.work / f"{name}-{self.runs}"
        d.mkdir()
        port, tls_port = free_port(), free_port()
        if name == "turnbridge":
            cfg = turnbridge_config(port, threads=1, accounting=True, database=d / "accounting.db", flush=5,
                                    relay_ports=f"{RELAY_PORTS[0]}-{RELAY_PORTS[1]}", tls_port=tls_port,
                                    cert=self.cert, key=self.key)
            proc = start_turnbridge(d, cfg, prefix=self.server_prefix)
        else:
            proc = start_coturn(d, port, relay_threads=1, relay_ports=RELAY_PORTS, tls_port=tls_port,
                                cert=self.cert, key=self.key, prefix=self.server_prefix)
        return proc, port, tls_port, d

    def start_peer(self):
        """coturn's turnutils_peer (the echo every load relays to) on a free loopback port."""
        port = free_port()
        peer = subprocess.Popen([*self.load_prefix, "turnutils_peer", "-L", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        return peer, port

    def finish(self, proc, d):
        stop(proc)
        shutil.rmtree(d, ignore_errors=True)   # accounting DB and logs of this run

    # -- relay loads ----------------------------------------------------------------------------
    def relay(self, name, load_name, load, peer_port, peer_pid, attach=None):
        """One load against one server. attach(pid), if given, is called once the server is up
        and returns a function called when the load is over (relay_profile.py's perf).

        turnutils_uclient binds the peer's port + 1 and then the peer to two random channel
        numbers per session and gives up (the whole process) when it drew the same one twice,
        which both servers rightly refuse (RFC 8656 §12.2). Such a run is made again, once."""
        for attempt in range(2):
            try:
                return self.relay_once(name, load_name, load, peer_port, peer_pid, attach)
            except UclientDrewOneChannelTwice:
                if attempt:
                    raise
                print(f"{load_name} on {name}: turnutils_uclient drew one channel number twice; once more",
                      flush=True)

    def relay_once(self, name, load_name, load, peer_port, peer_pid, attach):
        transport, procs, clients, messages, length, interval = load
        proc, port, tls_port, d = self.start(name)
        detach = None
        try:
            flags = {"udp": [], "tcp": ["-t"], "tls": ["-t", "-S"]}[transport]
            cmd = [*self.load_prefix, "turnutils_uclient", *flags, "-u", "bench", "-w", "bench", "-e", "127.0.0.1",
                   "-r", str(peer_port), "-p", str(tls_port if transport == "tls" else port), "-c",
                   "-m", str(clients), "-n", str(messages), "-l", str(length), "-z", str(interval), "127.0.0.1"]
            detach = attach(proc.pid) if attach else None
            (user0, sys0), t0 = cpu_times(proc.pid), time.monotonic()
            threads = thread_count(proc.pid)
            gens = []
            drops = UdpDrops({"server": [proc.pid], "peer": [peer_pid], "clients": gens})
            gens += [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                     for _ in range(procs)]
            outs = []
            for g in gens:
                try:
                    outs.append(g.communicate(timeout=self.args.run_timeout)[0])
                except subprocess.TimeoutExpired:
                    for h in gens:
                        h.kill()
                        h.wait()
                    raise RuntimeError(f"{load_name} on {name}: turnutils_uclient ran over {self.args.run_timeout} s")
            wall = time.monotonic() - t0
            user, system = (a - b for a, b in zip(cpu_times(proc.pid), (user0, sys0)))
            if detach:
                detach()
                detach = None
            cpu = user + system
            threads = max(threads, thread_count(proc.pid))
        finally:
            if detach:
                detach()
            dropped = drops.stop() if "drops" in locals() else []
            self.finish(proc, d)
        if any(CHANNEL_COLLISION in out for out in outs):
            raise UclientDrewOneChannelTwice(load_name)
        # Where UDP loss happened: which receive buffers overflowed.
        where = {"server listener": 0, "server relay sockets": 0, "peer": 0, "clients": 0}
        for label, p, n in dropped:
            where[label if label != "server" else "server listener" if p == port else "server relay sockets"] += n
        sent = received = lost = 0
        rate = 0.0
        for out in outs:
            s, r, lo = uclient_totals(out)
            sent, received, lost = sent + s, received + r, lost + lo
            # uclient's "Total transmit time" (whole seconds) spans its staggered start and, when
            # packets were lost, a wait of STOPPING_TIME after the last send: leave that wait out.
            tx = re.findall(r"Total transmit time is (\d+)", out)
            active = max(1, int(tx[-1]) - (UCLIENT_STOPPING_TIME if lo else 0)) if tx else wall
            rate += (s + r) / active
        relayed = sent + received   # each message crosses the relay twice: to the peer and back
        return {"server": name, "load": load_name, "sent": sent, "received": received, "lost": lost,
                "loss_pct": 100.0 * lost / sent if sent else 0.0, "relayed": relayed,
                "packets_per_s": rate, "cpu_s": cpu, "wall_s": wall, "server_threads": threads, "udp_drops": where,
                "cpu_s_per_million": cpu / relayed * 1e6 if relayed else float("nan"),
                "user_s_per_million": user / relayed * 1e6 if relayed else float("nan"),
                "system_s_per_million": system / relayed * 1e6 if relayed else float("nan")}

    # -- Allocate rate and memory ---------------------------------------------------------------
    def alloc_rate(self, name):
        proc, port, _, d = self.start(name)
        try:
            cpu0 = cpu_seconds(proc.pid)
            out = subprocess.run([*self.load_prefix, str(ALLOC_LOAD), "--server", f"127.0.0.1:{port}",
                                  "--count", str(self.args.allocs), "--concurrency", "256", "--threads", "1",
                                  "--timeout", "60"], capture_output=True, text=True, timeout=90)
            cpu = cpu_seconds(proc.pid) - cpu0
        finally:
            self.finish(proc, d)
        m = dict(re.findall(r"(\w+)=([\d.]+)", out.stdout))
        if "allocs_per_s" not in m:
            raise RuntimeError(f"alloc_load against {name} failed:\n{out.stdout}{out.stderr}")
        return {"server": name, "allocations": int(m["ok"]), "failed": int(m["failed"]),
                "allocs_per_s": float(m["allocs_per_s"]), "seconds": float(m["seconds"]),
                "retransmits": int(m["retransmits"]), "cpu_s": cpu,
                "cpu_us_per_alloc": cpu / max(1, int(m["ok"])) * 1e6}

    def memory(self, name, peer_port):
        proc, port, _, d = self.start(name)
        try:
            time.sleep(0.5)
            before = rss_kib(proc.pid)
            load = subprocess.Popen([*self.load_prefix, str(ALLOC_LOAD), "--server", f"127.0.0.1:{port}",
                                     "--count", str(self.args.hold), "--concurrency", "128", "--threads", "1",
                                     "--timeout", "60", "--hold", "--peer", f"127.0.0.1:{peer_port}",
                                     "--hold-seconds", "90"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                line = load.stdout.readline()   # "held N" once every allocation is up
                held = int(re.findall(r"held (\d+)", line)[0]) if "held" in line else 0
                # turnbridge's accounting takes in new allocations at its next flush (5 s): measure after it.
                time.sleep(self.args.settle)
                after = rss_kib(proc.pid)
            finally:
                load.stdin.close()        # alloc_load lets go of its allocations and exits
                load.wait(30)
                rest, err = load.stdout.read(), load.stderr.read()
        finally:
            self.finish(proc, d)
        if held == 0:
            raise RuntimeError(f"no allocations held on {name}:\n{line}{rest}{err}")
        return {"server": name, "allocations": held, "rss_before_kib": before, "rss_after_kib": after,
                "kib_per_1000": (after - before) / held * 1000}


def mean(values):
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def spread(values):
    """(max - min) / mean, as a percentage: how much the rounds disagree."""
    values = list(values)
    m = mean(values)
    return 100.0 * (max(values) - min(values)) / m if len(values) > 1 and m else 0.0


def summarize(rows, allocs, mem, loads):
    table, verdicts = [], []
    for load in loads:
        per = {s: [r for r in rows if r["load"] == load and r["server"] == s] for s in SERVERS}
        if not all(per.values()):
            continue
        m = {s: {k: mean(r[k] for r in per[s]) for k in ("packets_per_s", "loss_pct", "cpu_s_per_million",
                                                          "user_s_per_million", "system_s_per_million")}
             for s in SERVERS}
        sp = {s: spread(r["cpu_s_per_million"] for r in per[s]) for s in SERVERS}
        for key, label in (("packets_per_s", "relayed packets/s"), ("loss_pct", "loss %"),
                           ("cpu_s_per_million", "CPU s / million relayed packets"),
                           ("user_s_per_million", "of which user"), ("system_s_per_million", "of which kernel")):
            tb, ct = m["turnbridge"][key], m["coturn"][key]
            table.append({"load": load, "metric": label, "turnbridge": tb, "coturn": ct,
                          "ratio": tb / ct if ct else None,
                          "spread_pct": {s: sp[s] for s in SERVERS} if key == "cpu_s_per_million" else None})
        cpu_ok = m["turnbridge"]["cpu_s_per_million"] <= 0.5 * m["coturn"]["cpu_s_per_million"]
        loss_ok = m["turnbridge"]["loss_pct"] <= m["coturn"]["loss_pct"]
        verdicts.append((f"{load}: CPU per packet at most half of coturn's, with no more loss",
                         cpu_ok and loss_ok))
    if allocs:
        tb, ct = (mean(a["allocs_per_s"] for a in allocs if a["server"] == s) for s in SERVERS)
        table.append({"load": "allocate", "metric": "Allocates/s", "turnbridge": tb, "coturn": ct,
                      "ratio": tb / ct if ct else None,
                      "spread_pct": {s: spread(a["allocs_per_s"] for a in allocs if a["server"] == s) for s in SERVERS}})
        # What one fully busy CPU would do: robust to other load on the machine, unlike the wall clock.
        tb_cpu, ct_cpu = (mean(a["cpu_us_per_alloc"] for a in allocs if a["server"] == s) for s in SERVERS)
        table.append({"load": "allocate", "metric": "Allocates per server CPU second", "turnbridge": 1e6 / tb_cpu,
                      "coturn": 1e6 / ct_cpu, "ratio": ct_cpu / tb_cpu, "spread_pct": None})
        verdicts.append(("turnbridge does at least 5,000 Allocates/s", tb >= 5000))
    if mem:
        tb, ct = (mean(a["kib_per_1000"] for a in mem if a["server"] == s) for s in SERVERS)
        table.append({"load": "idle allocations", "metric": "RSS KiB per 1,000 allocations",
                      "turnbridge": tb, "coturn": ct, "ratio": tb / ct if ct else None, "spread_pct": None})
        verdicts.append(("memory per allocation at most a quarter of coturn's", tb <= 0.25 * ct))
    return table, verdicts


def fmt(v):
    if v is None or v != v:
        return "-"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.2f}"


def ratio_text(r):
    return "-" if r is None else f"{r:.3f}"


def write_results(summary, table, verdicts, args):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "relay.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = [f"# turnbridge vs coturn ({summary['date']})", "",
          f"Machine: {summary['machine']}. {summary['turnbridge_version']}, "
          f"coturn {summary['coturn_version']}. Pinning: {summary['pinning']}. "
          f"{summary['rounds']} round(s), A/B order alternating; run time {summary['run_seconds']:.0f} s. "
          f"Load average (1 min) {summary['load_average'][0]:.1f} before, {summary['load_average'][1]:.1f} after: "
          "other work on the machine shows up as spread between rounds.", "",
          "Settings: one relay thread each (turnbridge `threads = 1`, coturn `relay-threads=1`); "
          "turnbridge with accounting enabled as shipped (SQLite, flush_interval 5 s); coturn with "
          "long-term credentials, no quotas, no CLI, no DTLS. Same user, realm, relay port range and "
          "self-signed P-256 certificate.", "",
          "Relay loads: coturn's turnutils_uclient (channels, -c) echoed by turnutils_peer. CPU is the "
          "server's utime + stime over all its threads (/proc/PID/stat) during the whole uclient run, "
          "divided by relayed packets (each message counts twice: to the peer and back), and split "
          "into user and kernel time (utime, stime). "
          "Packets/s is what the load generator reached (uclient's transmit time, less its 10 s "
          "wait after a loss; the transmit time also holds uclient's random 1-6 s start of each "
          "session); it measures the generator as much as the server. Loss is uclient's count of "
          "messages that did not come back; packets lost inside the server still cost it CPU, so "
          "a lossy row's CPU per packet flatters that server. On loopback the sender's "
          "sendmsg also runs the receiver's network stack, so server CPU includes delivering to "
          "the peer and client sockets.", ""]
    md += ["| load | sessions | payload | interval |", "| --- | ---: | ---: | ---: |"]
    for name, (transport, procs, clients, messages, length, interval) in summary["loads"].items():
        md.append(f"| {name} | {procs} x {clients} ({messages} messages each) | {length} B | "
                  f"{interval} ms{' (as fast as possible)' if interval == 0 else ''} |")
    md += ["", "Allocate: tests/bench/alloc_load, one UDP 5-tuple per allocation, full long-term "
           "credential flow (Allocate -> 401, authenticated Allocate -> 200, Refresh lifetime 0 -> 200), "
           f"{args.allocs} allocations, 256 in flight. Memory: {args.hold} idle allocations, each with "
           "one ChannelBind (one channel, one permission); VmRSS after minus before, measured "
           f"{args.settle:.0f} s after the last one (after turnbridge's accounting flush).", "",
           "| load | metric | turnbridge | coturn | turnbridge/coturn |", "| --- | --- | ---: | ---: | ---: |"]
    for row in table:
        md.append(f"| {row['load']} | {row['metric']} | {fmt(row['turnbridge'])} | {fmt(row['coturn'])} | "
                  f"{ratio_text(row['ratio'])} |")
    md += ["", "Spread across rounds ((max - min) / mean) of CPU per packet, and of Allocates/s:", ""]
    for row in table:
        if row["spread_pct"]:
            md.append(f"- {row['load']}: turnbridge {row['spread_pct']['turnbridge']:.0f} %, "
                      f"coturn {row['spread_pct']['coturn']:.0f} %")
    drops = [r for r in summary["relay_runs"] if any(r.get("udp_drops", {}).values())]
    if drops:
        md += ["", "UDP datagrams the kernel dropped for a full receive buffer, by socket owner "
               "(/proc/net/udp drops of the sockets of the server, turnutils_peer and the "
               "turnutils_uclient processes):", "", "| round | load | server | server listener | server relay sockets | peer | clients |",
               "| ---: | --- | --- | ---: | ---: | ---: | ---: |"]
        for r in drops:
            d = r["udp_drops"]
            md.append(f"| {r['round']} | {r['load']} | {r['server']} | {d['server listener']} | "
                      f"{d['server relay sockets']} | {d['peer']} | {d['clients']} |")
    md += ["", "Targets (reported, not enforced):", ""]
    md += [f"- {'met' if ok else 'NOT met'}: {text}" for text, ok in verdicts]
    if summary.get("chart"):
        md += ["", f"![CPU per relayed packet]({summary['chart']})"]
    md.append("")
    (RESULTS / "relay.md").write_text("\n".join(md))
    return "\n".join(md)


def chart(table):
    """relay.png: CPU per packet by load, Allocates/s and memory; None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    cpu = [r for r in table if r["metric"].startswith("CPU")]
    other = [r for r in table if r["metric"] in ("Allocates/s", "Allocates per server CPU second",
                                                  "RSS KiB per 1,000 allocations")]
    fig, axes = plt.subplots(1, 1 + len(other), figsize=(5 + 3 * len(other) + 0.6 * len(cpu), 4.5),
                             gridspec_kw={"width_ratios": [max(2, len(cpu) / 2)] + [1] * len(other)})
    axes = axes if hasattr(axes, "__len__") else [axes]
    x = range(len(cpu))
    axes[0].bar([i - 0.2 for i in x], [r["turnbridge"] for r in cpu], 0.4, label="turnbridge")
    axes[0].bar([i + 0.2 for i in x], [r["coturn"] for r in cpu], 0.4, label="coturn")
    axes[0].set_xticks(list(x), [r["load"] for r in cpu], rotation=30, ha="right")
    axes[0].set_ylabel("server CPU s per million relayed packets")
    axes[0].legend()
    for ax, r in zip(axes[1:], other):
        ax.bar(["turnbridge", "coturn"], [r["turnbridge"], r["coturn"]], color=["C0", "C1"])
        ax.set_title(r["metric"], fontsize=9)
    fig.suptitle("turnbridge vs coturn (lower CPU and memory, higher Allocates/s is better)", fontsize=10)
    fig.tight_layout()
    fig.savefig(RESULTS / "relay.png", dpi=100)
    plt.close(fig)
    return "relay.png"


def versions():
    tb = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True).stdout.strip() or "?"
    ct = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "coturn"], capture_output=True, text=True).stdout
    return tb, ct.strip() or "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run of about two minutes")
    ap.add_argument("--rounds", type=int, help="A/B rounds (default 2, 1 with --quick)")
    ap.add_argument("--loads", help="comma-separated subset of: " + ", ".join(LOADS))
    ap.add_argument("--allocs", type=int, help="allocations for the Allocate rate (default 20000)")
    ap.add_argument("--hold", type=int, help="idle allocations for the memory test (default 10000)")
    ap.add_argument("--settle", type=float, default=6.0, help="seconds between the last allocation and the RSS reading")
    ap.add_argument("--run-timeout", type=int, default=120, help="seconds one uclient process may take")
    ap.add_argument("--no-pin", action="store_true", help="do not pin servers and load generators to CPUs")
    args = ap.parse_args()
    loads = dict(QUICK_LOADS if args.quick else LOADS)
    if args.loads:
        wanted = args.loads.split(",")
        unknown = [w for w in wanted if w not in LOADS]
        if unknown:
            sys.exit(f"unknown load(s) {', '.join(unknown)}; known: {', '.join(LOADS)}")
        loads = {w: loads.get(w, LOADS[w]) for w in wanted}
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.allocs = args.allocs or (5000 if args.quick else 20000)
    args.hold = args.hold or (2000 if args.quick else 10000)
    for need in (BINARY, ALLOC_LOAD):
        if not need.exists():
            sys.exit(f"{need} missing: build first (scripts/bench builds)")
    for tool in ("turnutils_uclient", "turnutils_peer", "taskset", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} missing: run scripts/setup")
    if not Path("/usr/bin/turnserver").exists():
        sys.exit("/usr/bin/turnserver missing: run scripts/setup (package coturn)")
    # 10,000 allocations need 10,000+ descriptors in the server and in alloc_load.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.hold + 1000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < want:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} is below {want}: lower --hold")

    started, load_before = time.monotonic(), os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="turnbridge-relay-bench-"))
    rows, allocs, mem = [], [], []
    peer = None
    try:
        bench = Bench(args, work)
        peer, peer_port = bench.start_peer()
        for i in range(args.rounds):
            order = SERVERS if i % 2 == 0 else SERVERS[::-1]
            for load_name, load in loads.items():
                for name in order:
                    row = bench.relay(name, load_name, load, peer_port, peer.pid)
                    row["round"] = i + 1
                    rows.append(row)
                    print(f"round {i + 1} {load_name:10} {name:10}: {row['packets_per_s']:8.0f} pkt/s, "
                          f"{row['cpu_s_per_million']:6.2f} CPU s/M packets, loss {row['loss_pct']:.2f} %, "
                          f"{row['server_threads']} threads, {row['wall_s']:.0f} s", flush=True)
            for name in order:
                a = bench.alloc_rate(name)
                a["round"] = i + 1
                allocs.append(a)
                print(f"round {i + 1} allocate   {name:10}: {a['allocs_per_s']:8.0f} Allocates/s "
                      f"({a['allocations']} ok, {a['failed']} failed, {a['cpu_us_per_alloc']:.0f} CPU us each)",
                      flush=True)
        for name in SERVERS:
            m = bench.memory(name, peer_port)
            mem.append(m)
            print(f"memory {name:10}: {m['allocations']} allocations, RSS {m['rss_before_kib']} -> "
                  f"{m['rss_after_kib']} KiB, {m['kib_per_1000']:.0f} KiB per 1,000", flush=True)
    finally:
        if peer:
            stop(peer)
        shutil.rmtree(work, ignore_errors=True)

    table, verdicts = summarize(rows, allocs, mem, loads)
    tb_version, ct_version = versions()
    summary = {"date": utc_now(), "machine": machine(), "pinning": bench.pinning,
               "turnbridge_version": tb_version, "coturn_version": ct_version,
               "rounds": args.rounds, "quick": args.quick, "run_seconds": time.monotonic() - started,
               "load_average": [load_before, os.getloadavg()[0]],
               "loads": loads, "table": table,
               "targets": [{"target": t, "met": ok} for t, ok in verdicts],
               "relay_runs": rows, "allocate_runs": allocs, "memory_runs": mem}
    summary["chart"] = chart(table)
    text = write_results(summary, table, verdicts, args)
    print()
    print(text)
    print(f"written: {RESULTS / 'relay.md'}, relay.json{', relay.png' if summary['chart'] else ''}")


if __name__ == "__main__":
    main()
