# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the benchmarks in tests/bench: free loopback ports, per-process CPU and
RSS from /proc, starting turnbridge and coturn's turnserver on loopback with generated
configs, and turnutils_uclient output parsing. Loopback only; every wait is bounded."""
import json
import os
import platform
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / "build" / "turnbridge"
RESULTS = REPO / "tests" / "bench" / "results"
TICK = os.sysconf("SC_CLK_TCK")

_next_port = [24000]


def free_port():
    """A loopback port free for UDP and TCP, whose successor is free for UDP too. Scans from
    where the previous call stopped so that back-to-back servers do not reuse a TIME_WAIT port."""
    for _ in range(300):
        p = _next_port[0]
        _next_port[0] = 24000 + (p - 24000 + 7) % 2000
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET, kind)
                s.bind(("127.0.0.1", p))
                s.close()
            s2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s2.bind(("127.0.0.1", p + 1))
            s2.close()
            return p
        except OSError:
            continue
    raise RuntimeError("no free port")


def cpu_times(pid):
    """(utime, stime) in seconds of the whole process: /proc/PID/stat sums all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def cpu_seconds(pid):
    return sum(cpu_times(pid))


def worker_cpu_seconds(pid):
    """utime+stime of the relay threads only (/proc/PID/task/*/comm "worker-N", named by
    server/worker.cpp): what relaying costs, without the control and shipper threads."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if not (task / "comm").read_text().startswith("worker-"):
                continue
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def rss_kib(pid):
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) if m else 0


def thread_count(pid):
    m = re.search(r"Threads:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) if m else 0


class UdpDrops:
    """Datagrams the kernel dropped for want of receive buffer, per UDP socket of the given
    processes, from the drops column of /proc/net/udp. owners maps a label to a list of PIDs
    or Popen objects (the caller may extend the lists while sampling). Sampled by a background thread (every
    0.3 s) because sockets vanish from the table when they close: each socket's highest count
    is kept, by inode."""

    def __init__(self, owners):
        self.owners = owners
        self.labels = {}        # inode -> label
        self.seen = {}          # inode -> (local port, drops since the start)
        self.baseline = {inode: drops for inode, (_, drops) in self._read().items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _read():
        out = {}
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            f = line.split()
            if len(f) >= 13:
                out[f[9]] = (int(f[1].split(":")[1], 16), int(f[12]))
        return out

    def _label_sockets(self):
        for label, pids in self.owners.items():
            for pid in list(pids):
                pid = getattr(pid, "pid", pid)   # a PID or a Popen
                try:
                    for fd in os.scandir(f"/proc/{pid}/fd"):
                        target = os.readlink(fd.path)
                        if target.startswith("socket:["):
                            self.labels[target[8:-1]] = label
                except OSError:
                    continue     # gone already

    def _run(self):
        while not self._stop.wait(0.3):
            self._merge()

    def _merge(self):
        self._label_sockets()
        for inode, (port, drops) in self._read().items():
            if inode not in self.labels:
                continue
            d = drops - self.baseline.get(inode, 0)
            if d > self.seen.get(inode, (port, 0))[1]:
                self.seen[inode] = (port, d)

    def stop(self):
        """{label: drops}, plus the local port of every socket that dropped: [(label, port, drops)]."""
        self._stop.set()
        self._thread.join(2)
        self._merge()
        return [(self.labels[i], port, d) for i, (port, d) in self.seen.items()]


def machine():
    return f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"


def utc_now():
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def write_results(name, summary, md_lines):
    """tests/bench/results/NAME.json (the summary) and NAME.md (the lines)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text("\n".join(md_lines))


def stun_binding_ok(port, timeout=0.2):
    """True when a STUN Binding request over UDP to 127.0.0.1:port gets a response."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12)), ("127.0.0.1", port))
        return len(s.recv(2048)) >= 20
    except OSError:
        return False
    finally:
        s.close()


def tcp_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def turnbridge_config(port, *, threads=1, accounting=True, database="bench.db", flush=5,
                      relay_ports="61000-65000", tls_port=None, cert=None, key=None):
    """A turnbridge.toml for benchmarks: user bench/bench in realm example.org, loopback peers
    allowed, no allocation limits."""
    tls = (f'tls_listen = ["127.0.0.1:{tls_port}"]\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
           if tls_port else "")
    return f"""[server]
listen = ["127.0.0.1:{port}"]
{tls}relay_ips = ["127.0.0.1"]
relay_ports = "{relay_ports}"
threads = {threads}
max_allocations = 0
max_allocations_per_user = 0
[security]
allowed_peers = ["127.0.0.0/8"]
[accounting]
enabled = {"true" if accounting else "false"}
database = "{database}"
flush_interval = {flush}
[realm."example.org"]
users = {{ bench = "bench" }}
"""


def start_turnbridge(workdir, config_text, name="turnbridge", prefix=(), timeout=10):
    """Starts build/turnbridge with config_text (under `prefix`, e.g. valgrind), waits for
    "ready" in its log (`timeout` seconds at most)."""
    cfg = workdir / f"{name}.toml"
    cfg.write_text(config_text)
    log_path = workdir / f"{name}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([*prefix, str(BINARY), "-c", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + timeout
    while b"ready" not in log_path.read_bytes():
        if time.monotonic() > deadline or proc.poll() is not None:
            stop(proc)
            raise RuntimeError(f"{name} did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.05)
    return proc


def start_coturn(workdir, port, *, relay_threads=1, relay_ports=(61000, 65000), tls_port=None,
                 cert=None, key=None, prefix=()):
    """Starts Debian's /usr/bin/turnserver (never the system service) on loopback with a config
    generated in workdir, equivalent to turnbridge_config: long-term credentials bench/bench in
    realm example.org, loopback peers allowed, no quotas, no CLI, no DTLS. Waits until it answers
    a STUN Binding (and accepts TCP on the TLS port)."""
    cfg = workdir / "turnserver.conf"
    lines = ["listening-ip=127.0.0.1", f"listening-port={port}", "relay-ip=127.0.0.1",
             f"min-port={relay_ports[0]}", f"max-port={relay_ports[1]}",
             f"relay-threads={relay_threads}", "lt-cred-mech", "user=bench:bench", "realm=example.org",
             "user-quota=0", "total-quota=0", "max-bps=0", "allow-loopback-peers", "no-cli", "no-dtls",
             "no-rfc5780", "no-tcp-relay", f"userdb={workdir / 'turndb'}", f"pidfile={workdir / 'turnserver.pid'}",
             f"log-file={workdir / 'turnserver.log'}", "simple-log", "no-stdout-log"]
    if tls_port:
        lines += [f"tls-listening-port={tls_port}", f"cert={cert}", f"pkey={key}"]
    else:
        lines += ["no-tls"]
    cfg.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([*prefix, "/usr/bin/turnserver", "-c", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (stun_binding_ok(port) and (not tls_port or tcp_open(tls_port))):
        if time.monotonic() > deadline or proc.poll() is not None:
            stop(proc)
            logs = "".join(p.read_text()[-3000:] for p in workdir.glob("turnserver*.log"))
            raise RuntimeError("turnserver did not start:\n" + logs)
        time.sleep(0.05)
    return proc


def stop(proc, timeout=10):
    """SIGTERM to a process we started (by its PID), SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def uclient_totals(text):
    """(sent, received, lost) from turnutils_uclient's output."""
    totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", text)
    if not totals:
        raise RuntimeError("no totals from turnutils_uclient:\n" + text[-2000:])
    sent, received = map(int, totals[-1])
    lost = re.findall(r"Total lost packets (\d+)", text)
    return sent, received, int(lost[-1]) if lost else sent - received


def ab_rounds(rounds, run_one, describe):
    """`rounds` A/B pairs of run_one(enabled, round_index), alternating which goes first (on-off,
    off-on, ...) so that drift over the run weighs on both alike. Each row gets its 1-based
    "round" and is printed with describe(row) as it comes."""
    rows = []
    for i in range(rounds):
        for enabled in ((True, False) if i % 2 == 0 else (False, True)):
            row = run_one(enabled, i)
            row["round"] = i + 1
            rows.append(row)
            print(describe(row), flush=True)
    return rows


def echo_peer():
    """coturn's turnutils_peer (a UDP echo) on 127.0.0.1: (process, port). Stop with stop()."""
    port = free_port()
    proc = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return proc, port


def add_load_arguments(ap, flush=5):
    """The A/B benches' load options (accounting_bench.py, fleet_bench.py)."""
    ap.add_argument("--rounds", type=int, default=3, help="A/B pairs")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--length", type=int, default=160)
    ap.add_argument("--interval", type=int, default=5, help="ms between a client's packets")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--flush", type=int, default=flush, help=f"[accounting] flush_interval (default {flush})")


def uclient_load(port, peer_port, args):
    """turnutils_uclient with the load options over UDP channels: (its output, wall seconds)."""
    t0 = time.monotonic()
    out = subprocess.run(["turnutils_uclient", "-u", "bench", "-w", "bench", "-e", "127.0.0.1",
                          "-r", str(peer_port), "-p", str(port), "-c", "-m", str(args.clients),
                          "-n", str(args.messages), "-l", str(args.length), "-z", str(args.interval),
                          "127.0.0.1"], capture_output=True, text=True, timeout=600)
    return out.stdout + out.stderr, time.monotonic() - t0
