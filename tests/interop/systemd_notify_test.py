# SPDX-License-Identifier: Apache-2.0
"""The sd_notify protocol of turnbridge.service (Type=notify, WatchdogSec=), driven with a fake
NOTIFY_SOCKET: a datagram socket this test binds, as systemd would. READY=1 comes once the
listeners answer, with STATUS= naming the allocations; WATCHDOG=1 arrives at a third of
WATCHDOG_USEC (clamped to 1.5 s); SIGHUP gives RELOADING=1 then READY=1; SIGTERM gives STOPPING=1.
The abstract namespace ("@name") works too. Under journald (JOURNAL_STREAM) log lines carry
their <N> priority. Loopback only.
"""
import os
import re
import signal
import socket
import tempfile
import time
from pathlib import Path

from harness import Turnbridge, main_guard


def receive(sock, timeout):
    """Every datagram that arrives within `timeout` seconds, as (monotonic time, fields)."""
    out = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        out.append((time.monotonic(), fields))
    return out


def wait_for(sock, key, timeout, seen=None):
    """The first message with `key`, and every message read on the way (into `seen`)."""
    deadline = time.monotonic() + timeout
    seen = [] if seen is None else seen
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        seen.append(fields)
        if key in fields:
            return fields, seen
    return None, seen


def run_with(r, name, address, bind_to):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(bind_to)
    os.environ["NOTIFY_SOCKET"] = address
    os.environ["WATCHDOG_USEC"] = "3000000"  # checked every 1.5 s
    try:
        server = Turnbridge()
        server.start()
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    try:
        ready, _ = wait_for(sock, "READY", 5)
        r.check(f"{name}: READY=1 once listening", ready is not None and ready["READY"] == "1")
        r.check(f"{name}: STATUS= with allocations", ready is not None and "allocation" in ready.get("STATUS", ""),
                ready.get("STATUS", "") if ready else "none")
        pings = [t for t, f in receive(sock, 4.0) if f.get("WATCHDOG") == "1"]
        r.check(f"{name}: WATCHDOG=1 every 1.5 s from the loops", len(pings) >= 2
                and all(1.0 < b - a < 2.5 for a, b in zip(pings, pings[1:])), f"{len(pings)} pings in 4 s")
        server.proc.send_signal(signal.SIGHUP)
        reloading, seen = wait_for(sock, "RELOADING", 5)
        again, seen = wait_for(sock, "READY", 5, seen)
        r.check(f"{name}: SIGHUP: RELOADING=1 then READY=1", reloading is not None and again is not None, str(seen))
        proc = server.proc
        proc.send_signal(signal.SIGTERM)
        stopping, seen = wait_for(sock, "STOPPING", 5)
        r.check(f"{name}: SIGTERM: STOPPING=1", stopping is not None and stopping["STOPPING"] == "1", str(seen))
        code = server.stop()
        r.check(f"{name}: exit 0 after STOPPING", code == 0, f"exit code {code}")
    finally:
        server.stop()
        sock.close()


def journal_priorities(r):
    """Under journald (JOURNAL_STREAM names stderr's device and inode), each line starts with
    its syslog priority: <6> for info, <3> for an error (a reload of a broken file)."""
    server = Turnbridge()
    server.log_path.touch()
    st = os.stat(server.log_path)
    os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    try:
        server.start()
    finally:
        del os.environ["JOURNAL_STREAM"]
    try:
        server.config_path.write_text("[server]\nlisten = 3\n")
        before = len(server.log_path.read_bytes())
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and b"reload failed" not in server.log_path.read_bytes()[before:]:
            time.sleep(0.05)
        lines = server.log_path.read_text().splitlines()
        r.check("journald: every line starts with its priority",
                lines and all(re.match(r"<[3-7]>\d{4}-", l) for l in lines), "\n".join(lines[:3]))
        r.check("journald: ready is <6> (info)", any(l.startswith("<6>") and " info ready" in l for l in lines))
        r.check("journald: a failed reload is <3> (error)",
                any(l.startswith("<3>") and "reload failed" in l for l in lines))
    finally:
        server.stop()
    # Without JOURNAL_STREAM (or with one naming another file), no prefix.
    plain = Turnbridge()
    os.environ["JOURNAL_STREAM"] = "1:2"
    try:
        plain.start()
    finally:
        del os.environ["JOURNAL_STREAM"]
    plain.stop()
    lines = plain.log_path.read_text().splitlines()
    r.check("not journald: no priority prefix", lines and not any(l.startswith("<") for l in lines))


def second_sigterm(r):
    """A second SIGTERM (or a SIGHUP) while shutting down must not kill the process before its
    last accounting flush: libuv puts back the default action when its signal handles close."""
    results = []
    for delay in (0.0, 0.001, 0.003, 0.01, 0.03, 0.001, 0.003, 0.01):
        server = Turnbridge()
        server.start()
        proc = server.proc
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            pass
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGTERM):
            if proc.poll() is None:
                proc.send_signal(sig)
            time.sleep(0.002)
        code = server.stop()
        results.append((delay, code, b" info stopped" in server.log_path.read_bytes()))
    r.check("second SIGTERM/SIGHUP while stopping: exit 0 and the log says stopped",
            all(code == 0 and stopped for _, code, stopped in results), str(results))


def main(r):
    second_sigterm(r)
    journal_priorities(r)
    path = Path(tempfile.mkdtemp(prefix="turnbridge-notify-")) / "notify.sock"
    run_with(r, "path socket", str(path), str(path))
    abstract = f"turnbridge-test-{os.getpid()}"
    run_with(r, "abstract socket", "@" + abstract, "\0" + abstract)


main_guard(main)
