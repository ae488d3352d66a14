# SPDX-License-Identifier: Apache-2.0
"""[server] user (issue 16): started as root with user = "nobody", turnbridge binds its listeners
and loads its certificate, then runs as nobody: /proc/PID/status shows the uid and gid of nobody
and no capability at all, an Allocate still gets a relay port, TLS still answers, the accounting
database (created as root) is still written, and SIGHUP still reloads the certificate (the files
are readable by nobody's group). Started as root without user, a public listener is refused
unless allow_root = true; check-config names a missing account. Loopback only; needs root.
"""
import grp
import hashlib
import os
import pwd
import socket
import ssl
import subprocess
import time

from harness import BINARY, PASSWORD, USER, Turnbridge, main_guard, make_cert
from stun_client import TurnClient


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.split()
    return out


def cert_fingerprint(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def readable_by(group_id, server):
    """The temp dir, the config and the certificate readable by `group_id` (as a packaged
    /etc/turnbridge is for the turnbridge group)."""
    os.chmod(server.dir, 0o755)
    for name in ("cert.pem", "key.pem"):
        os.chown(server.dir / name, 0, group_id)
        os.chmod(server.dir / name, 0o640)


def check_config(r, name, text, expect_ok, expect_text, tmpdir):
    path = tmpdir / f"{name.replace(' ', '_')}.toml"
    path.write_text(text)
    out = subprocess.run([str(BINARY), "check-config", str(path)], capture_output=True, text=True, timeout=10)
    ok = (out.returncode == 0) == expect_ok and expect_text in (out.stdout + out.stderr)
    r.check(name, ok, (out.stdout + out.stderr).strip())
    return out


def main(r):
    if not r.check("runs as root (the test drops to nobody)", os.geteuid() == 0):
        return
    nobody = pwd.getpwnam("nobody")
    group_name = grp.getgrgid(nobody.pw_gid).gr_name
    server = Turnbridge(extra_server='user = "nobody"\n')
    make_cert(server.dir)
    readable_by(nobody.pw_gid, server)
    with server:
        pid = server.proc.pid
        log = server.log_path.read_text()
        r.check("logs the switch", f"running as user nobody (uid {nobody.pw_uid}), group {group_name}" in log,
                server.log_tail(5))
        st = status(pid)
        r.check("/proc/PID/status: uid of nobody (real, effective, saved, fs)",
                st["Uid"] == [str(nobody.pw_uid)] * 4, str(st["Uid"]))
        r.check("/proc/PID/status: gid of nobody's group", st["Gid"] == [str(nobody.pw_gid)] * 4, str(st["Gid"]))
        r.check("/proc/PID/status: no supplementary group but its own",
                all(g == str(nobody.pw_gid) for g in st.get("Groups", [])), str(st.get("Groups")))
        caps = {k: st[k][0] for k in ("CapInh", "CapPrm", "CapEff", "CapAmb")}
        r.check("/proc/PID/status: no capability left", all(int(v, 16) == 0 for v in caps.values()), str(caps))
        threads = os.listdir(f"/proc/{pid}/task")
        r.check("every thread dropped too", all(status(f"{pid}/task/{t}")["Uid"] == [str(nobody.pw_uid)] * 4
                                                for t in threads), f"{len(threads)} threads")

        c = TurnClient(("127.0.0.1", server.port), USER, PASSWORD)
        try:
            relayed = c.allocate()
            r.check("Allocate after the drop gets a relay port", relayed[1] >= server.relay_lo, str(relayed))
        finally:
            c.close()
        before = cert_fingerprint(server.tls_port)
        r.check("TURN over TLS answers after the drop", len(before) == 64)

        # A new certificate in place, readable by the group as before: SIGHUP picks it up.
        (server.dir / "cert.pem").unlink()
        (server.dir / "key.pem").unlink()
        make_cert(server.dir)
        readable_by(nobody.pw_gid, server)
        lines = server.reload()
        r.check("SIGHUP after the drop reloads the certificate", "TLS certificate reloaded" in lines, lines.strip())
        after = cert_fingerprint(server.tls_port)
        r.check("new TLS connections get the new certificate", after != before and len(after) == 64)
        time.sleep(6)  # one accounting flush (flush_interval 5 s) as nobody
        db = server.dir / "turnbridge.db"
        r.check("the database was handed to nobody", db.stat().st_uid == nobody.pw_uid)
        r.check("still running, no store error", server.alive() and "error" not in server.log_path.read_text(),
                server.log_tail(5))
        r.check("exit 0 on SIGTERM", server.stop() == 0)

    tmp = server.dir
    base = f"""[server]
listen = ["0.0.0.0:{server.port}"]
relay_ips = ["127.0.0.1"]
[realm."example.org"]
users = {{ a = "b" }}
"""
    check_config(r, "as root, a public listener without user is refused", base, False,
                 "server.user: refusing to serve server.listen 0.0.0.0", tmp)
    check_config(r, "allow_root = true lets root serve it", base.replace("[server]\n", "[server]\nallow_root = true\n"),
                 True, "OK", tmp)
    check_config(r, "user = \"nobody\" is fine as root", base.replace("[server]\n", "[server]\nuser = \"nobody\"\n"),
                 True, "OK", tmp)
    check_config(r, "a missing user is named", base.replace("[server]\n", "[server]\nuser = \"no-such-user-16\"\n"),
                 False, 'server.user: no such user "no-such-user-16"', tmp)
    check_config(r, "a missing group is named",
                 base.replace("[server]\n", "[server]\nuser = \"nobody\"\ngroup = \"no-such-group-16\"\n"),
                 False, 'server.group: no such group "no-such-group-16"', tmp)
    # The server itself refuses before binding anything.
    path = tmp / "root_public.toml"
    path.write_text(base)
    out = subprocess.run([str(BINARY), "-c", str(path)], capture_output=True, text=True, timeout=10)
    r.check("the server refuses to start as root on a public listener",
            out.returncode == 1 and "refusing to serve" in out.stderr, out.stderr.strip()[-300:])


main_guard(main)
