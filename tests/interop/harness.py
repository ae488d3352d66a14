# SPDX-License-Identifier: Apache-2.0
"""Shared pieces of the Python interop tests: start one turnbridge on loopback with its own
config, certificate and ports in a temp dir, wait for `ready`, stop it by PID; pick free
ports; count checks and print the closing `N passed, M failed` line.

Every address used here is on loopback (127.0.0.1 or ::1). Nothing else is ever a target.
"""
import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# TURNBRIDGE_BIN picks another build (scripts/test runs the suites again on build-asan/).
BINARY = Path(os.environ.get("TURNBRIDGE_BIN", REPO / "build" / "turnbridge"))
# What ASan, LSan and UBSan print to stderr (the server log) when they find something.
SANITIZER_MARKERS = (b"ERROR: AddressSanitizer", b"runtime error:", b"LeakSanitizer")

# TURNBRIDGE_LOG_FORMAT=json runs a suite with JSON logs (json_log_test.py checks every line).
LOG_FORMAT = (f'log_format = "{os.environ["TURNBRIDGE_LOG_FORMAT"]}"\n'
              if os.environ.get("TURNBRIDGE_LOG_FORMAT") else "")

USER, PASSWORD = "test", "secret"
REALM = "example.org"
REST_SECRET = "s3cr3t"


# ---------------------------------------------------------------------------------------------
# Ports

def _free(host, port, kinds):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = []
    try:
        for kind in kinds:
            s = socket.socket(fam, kind)
            socks.append(s)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


# Every port this process has handed out: a port picked but not yet bound by its server looks
# free, so without this two picks in one test could meet (CI saw ws_listen == listen once).
_handed_out = set()


def free_port(hosts=("127.0.0.1",), span=1, taken=()):
    """A port in 20000-29999 free for UDP and TCP on every host, with `span - 1` free
    ports after it (turnutils_peer also binds port+1), never one handed out before."""
    kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM)
    for _ in range(500):
        p = random.randint(20000, 29999 - span)
        span_ports = range(p, p + span)
        if any(q in taken or q in _handed_out for q in span_ports):
            continue
        if all(_free(h, q, kinds) for h in hosts for q in span_ports):
            _handed_out.update(span_ports)
            return p
    raise RuntimeError("no free port in 20000-29999")


def relay_range(width=400):
    """A relay sub-range above the kernel's ephemeral range (32768-60999)."""
    lo = random.randrange(61000, 65000 - width, 100)
    return lo, lo + width - 1


# ---------------------------------------------------------------------------------------------
# Results

class Results:
    """PASS/FAIL lines, then `N passed, M failed` as the last line of the test's output."""

    def __init__(self, suite):
        self.suite = suite
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {self.suite}: {name}" + (f" ({detail})" if detail else ""), flush=True)
        else:
            self.failed += 1
            print(f"FAIL {self.suite}: {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed or not self.passed else 0


# ---------------------------------------------------------------------------------------------
# The server under test

def make_cert(directory):
    """Self-signed certificate for CN=localhost, SAN localhost, 127.0.0.1, ::1."""
    cert, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def _toml_list(items):
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


_TEMP_DIRS = []  # removed at the end when every check passed; kept for a post-mortem otherwise
_SERVERS = []     # every Turnbridge started, stopped and checked by main_guard
_SANITIZER_FINDINGS = []  # (log path, first report line) found when a server stopped


class Turnbridge:
    """One turnbridge process with its own temp dir. Use as a context manager."""

    def __init__(self, allowed_peers=("127.0.0.0/8", "::1/128"), ipv6_listener=False,
                 users=None, rest_secret=REST_SECRET, extra_server="", ready_timeout=15.0):
        self.dir = Path(tempfile.mkdtemp(prefix="turnbridge-interop-"))
        _TEMP_DIRS.append(self.dir)
        hosts = ("127.0.0.1", "::1") if ipv6_listener else ("127.0.0.1",)
        self.port = free_port(hosts)
        self.tls_port = free_port(hosts, taken={self.port})
        self.relay_lo, self.relay_hi = relay_range()
        self.ipv6_listener = ipv6_listener
        self.users = users or {USER: PASSWORD}
        self.allowed_peers = list(allowed_peers)
        self.rest_secret = rest_secret
        self.extra_server = extra_server
        self.ready_timeout = ready_timeout
        self.prefix = []   # a command the binary runs under (valgrind: hot_path_alloc_test.py)
        # The suites run many sessions as one user (USER), more than the public-server default of
        # server.max_allocations_per_user (10): off unless a test sets it (None: the default).
        self.max_allocations_per_user = 0
        self.proc = None
        self.log_path = self.dir / "turnbridge.log"
        self.config_path = self.dir / "turnbridge.toml"

    # The addresses a client uses.
    @property
    def listen(self):
        out = [f"127.0.0.1:{self.port}"]
        if self.ipv6_listener:
            out.append(f"[::1]:{self.port}")
        return out

    @property
    def tls_listen(self):
        out = [f"127.0.0.1:{self.tls_port}"]
        if self.ipv6_listener:
            out.append(f"[::1]:{self.tls_port}")
        return out

    def write_config(self):
        if not (self.dir / "cert.pem").exists():
            make_cert(self.dir)
        users = ", ".join(f'{k} = "{v}"' for k, v in self.users.items())
        per_user = ("" if self.max_allocations_per_user is None
                    else f"max_allocations_per_user = {self.max_allocations_per_user}\n")
        text = f"""# Generated by tests/interop/harness.py
[server]
listen = {_toml_list(self.listen)}
tls_listen = {_toml_list(self.tls_listen)}
tls_cert = "cert.pem"
tls_key = "key.pem"
relay_ips = ["127.0.0.1", "::1"]
relay_ports = "{self.relay_lo}-{self.relay_hi}"
default_realm = "{REALM}"
threads = 2
{LOG_FORMAT}{per_user}{self.extra_server}
[security]
allowed_peers = {_toml_list(self.allowed_peers)}

[realm."{REALM}"]
users = {{ {users} }}
rest_secret = "{self.rest_secret}"
"""
        self.config_path.write_text(text)

    def start(self):
        if not BINARY.exists():
            raise RuntimeError(f"{BINARY} is missing: build first (ninja -C build)")
        self.write_config()
        self.scan_log()  # a restart truncates the log: read the last run's first
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([*self.prefix, str(BINARY), "-c", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        atexit.register(self.stop)
        if self not in _SERVERS:
            _SERVERS.append(self)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"turnbridge exited with {self.proc.returncode} before ready:\n"
                                   + self.log_tail())
            if b"ready" in self.log_path.read_bytes():
                return self
            time.sleep(0.05)
        raise RuntimeError("turnbridge did not log 'ready' in time:\n" + self.log_tail())

    def stop(self):
        """SIGTERM by PID, then SIGKILL after 10 s (LeakSanitizer needs a moment at exit).
        Returns the exit code; a sanitizer report in the log is noted for main_guard."""
        p, self.proc = self.proc, None
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.log.close()
        self.scan_log()
        return p.returncode

    def scan_log(self):
        try:
            text = self.log_path.read_bytes()
        except OSError:
            return
        for line in text.splitlines():
            if any(m in line for m in SANITIZER_MARKERS):
                finding = (str(self.log_path), line.decode(errors="replace").strip())
                if finding not in _SANITIZER_FINDINGS:
                    _SANITIZER_FINDINGS.append(finding)
                return

    def reload(self, timeout=5.0):
        """Rewrite the config from the current attributes, send SIGHUP, and wait for the log
        to say how the reload went. Returns the new log lines."""
        before = len(self.log_path.read_bytes())
        self.write_config()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.log_path.read_bytes()[before:].decode(errors="replace")
            if "reloaded" in new or "failed" in new:
                time.sleep(0.1)  # let every worker pick up the new snapshot
                return new
            time.sleep(0.05)
        return self.log_path.read_bytes()[before:].decode(errors="replace")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("  | " + line for line in lines[-n:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def report(server, user, by="allocation"):
    """`turnbridge report --format json` rows for one user of `server`'s database; raises when
    the command fails, so a broken report is never read as "no rows"."""
    import json
    out = subprocess.run([str(BINARY), "report", "--config", str(server.config_path), "--user", user,
                          "--by", by, "--format", "json"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"report failed ({out.returncode}): {out.stderr}")
    return json.loads(out.stdout)


def rss(pid):
    """Resident set size of process `pid` in bytes (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def turnutils_peer(server, hosts=("127.0.0.1", "::1")):
    """coturn's turnutils_peer (a UDP echo) on a free port of `hosts`, logging into the
    server's temp dir; yields the port, or None when it did not start. Stopped by PID."""
    port = free_port(hosts=hosts, span=2, taken={server.port, server.tls_port})  # it binds port+1 too
    args = ["turnutils_peer", "-p", str(port)]
    for h in hosts:
        args += ["-L", h]
    with open(server.dir / "peer.log", "wb") as log:
        peer = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)
            yield port if peer.poll() is None else None
        finally:
            if peer.poll() is None:
                peer.terminate()
                try:
                    peer.wait(5)
                except subprocess.TimeoutExpired:
                    peer.kill()
                    peer.wait()


def sanitized():
    """True when the server binary has AddressSanitizer in it (static with clang, libasan with
    gcc). Its quarantine holds freed memory back, so RSS says nothing about leaks there."""
    data = BINARY.read_bytes()
    return b"__asan_init" in data or b"libasan.so" in data


def uclient_drew_one_channel_twice(output):
    """True when a turnutils_uclient run stopped because it drew the same random channel number
    for two peers. Each session binds the peer's port + 1 to one random number in 0x4000-0x7FFF,
    then the peer to another (coturn's startuclient.c); one session in 16,384 draws the same
    number twice, and RFC 8656 §12.2 answers that with 400. Such a run says nothing about the
    server, so callers run it once more."""
    return "channel bind: error 400 (Bad Request: channel bound to another peer)" in output


def exit_on_signals():
    """`timeout` sends SIGTERM: turn it into SystemExit so that finally/atexit clean up."""
    def handler(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def main_guard(fn):
    """Run fn(results) and exit with the results' code; an exception is one more failure."""
    exit_on_signals()
    results = Results(Path(sys.argv[0]).stem)
    try:
        fn(results)
    except SystemExit:
        raise
    except Exception as e:  # the harness itself broke: still print the closing line
        import traceback
        traceback.print_exc()
        results.check("harness", False, f"{type(e).__name__}: {e}")
    # A sanitizer build (scripts/test) reports through the server's log; any report fails.
    for server in _SERVERS:
        server.stop()
    for path, line in _SANITIZER_FINDINGS:
        results.check("no sanitizer report in the server log", False, f"{path}: {line}")
    if results.failed or not results.passed or os.environ.get("TURNBRIDGE_KEEP_LOGS"):
        print("logs kept in: " + " ".join(str(d) for d in _TEMP_DIRS), flush=True)
    else:
        for d in _TEMP_DIRS:
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(results.finish())
