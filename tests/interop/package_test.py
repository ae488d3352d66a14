# SPDX-License-Identifier: Apache-2.0
"""The Debian package (issue 16): scripts/package builds it and lintian finds no error; it is
installed into a throw-away root with `dpkg --root --force-script-chrootless` (its postinst runs
with DPKG_ROOT and creates the user inside that root); then the files, the conffile (kept across
a reinstall), the system user and group, /var/lib/turnbridge, the public template (nothing
allowed to loopback, no users) and the installed unit (`systemd-analyze verify`, and
`security --offline` with an exposure of at most 2.0) are checked. Nothing runs as a service:
the notify protocol has its own test (systemd_notify_test.py).

interop-timeout: 1200 (a build with a cold ccache compiles the server from scratch)
"""
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

from harness import REPO, main_guard

MAX_EXPOSURE = 2.0


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def install(root, deb, *extra):
    env = dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    return run(["dpkg", f"--root={root}", "--force-script-chrootless", "--force-depends",
                "--force-confold", f"--log={root}/dpkg.log", *extra, "-i", str(deb)], env=env, timeout=120)


def make_root(root):
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "etc", "usr/sbin"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text("")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/gshadow").write_text("root:*::\n")


def main(r):
    built = run(["bash", str(REPO / "scripts/package")], timeout=1100)
    lines = built.stdout.strip().splitlines()
    deb = Path(lines[-1]) if lines else None
    if not r.check("scripts/package builds the .deb", built.returncode == 0 and deb and deb.exists(),
                   built.stderr[-3000:]):
        return
    lintian = (REPO / "build/deb/lintian.log").read_text()
    r.check("lintian: no error", not re.search(r"^E: ", lintian, re.M), lintian[:2000])

    root = Path(tempfile.mkdtemp(prefix="turnbridge-root-"))
    try:
        make_root(root)
        out = install(root, deb)
        if not r.check("dpkg --root installs it (postinst with DPKG_ROOT)", out.returncode == 0,
                       out.stdout[-2000:] + out.stderr[-2000:]):
            return
        binary = root / "usr/sbin/turnbridge"
        version = run([str(binary), "--version"])
        r.check("/usr/sbin/turnbridge runs", version.returncode == 0 and version.stdout.startswith("turnbridge "),
                version.stdout + version.stderr)
        for f in ("usr/share/man/man8/turnbridge.8.gz", "usr/share/man/man5/turnbridge.toml.5.gz",
                  "lib/systemd/system/turnbridge.service", "usr/lib/sysusers.d/turnbridge.conf",
                  "usr/share/doc/turnbridge/copyright"):
            r.check(f"installs /{f}", (root / f).is_file())
        conffiles = (root / "var/lib/dpkg/info/turnbridge.conffiles").read_text().split()
        r.check("/etc/turnbridge/turnbridge.toml is a conffile", "/etc/turnbridge/turnbridge.toml" in conffiles,
                str(conffiles))

        passwd = [l.split(":") for l in (root / "etc/passwd").read_text().splitlines()]
        group = [l.split(":") for l in (root / "etc/group").read_text().splitlines()]
        user = next((p for p in passwd if p[0] == "turnbridge"), None)
        grp = next((g for g in group if g[0] == "turnbridge"), None)
        r.check("system user turnbridge (home /var/lib/turnbridge, no login shell)",
                user is not None and 0 < int(user[2]) < 1000 and user[5] == "/var/lib/turnbridge"
                and user[6] == "/usr/sbin/nologin", str(user))
        r.check("system group turnbridge, the user's primary group",
                grp is not None and user is not None and user[3] == grp[2], f"{grp} {user}")
        r.check("the user exists only in the throw-away root", run(["getent", "passwd", "turnbridge"]).returncode != 0
                or shutil.which("turnbridge") is not None)
        state = root / "var/lib/turnbridge"
        st = state.stat() if state.exists() else None
        r.check("/var/lib/turnbridge belongs to turnbridge, mode 0750",
                st is not None and user is not None and st.st_uid == int(user[2]) and (st.st_mode & 0o777) == 0o750,
                f"{st.st_uid if st else None} {oct(st.st_mode) if st else None}")

        conf_path = root / "etc/turnbridge/turnbridge.toml"
        conf = tomllib.loads(conf_path.read_text())
        r.check("template: nothing exempted from the deny list", conf.get("security", {}).get("allowed_peers") == [],
                str(conf.get("security")))
        realms = conf.get("realm", {})
        r.check("template: no users", all("users" not in v for v in realms.values()), str(realms))
        r.check("template: no admin listener", "admin" not in conf)
        r.check("template: listens publicly, keeps the database in /var/lib/turnbridge",
                "0.0.0.0:3478" in conf["server"]["listen"]
                and conf["accounting"]["database"] == "/var/lib/turnbridge/turnbridge.db")

        secret = root / "etc/turnbridge/rest_secret"
        sst = secret.stat() if secret.exists() else None
        r.check("postinst generates a random rest_secret, 0640 root:turnbridge",
                sst is not None and grp is not None and sst.st_gid == int(grp[2]) and (sst.st_mode & 0o777) == 0o640
                and len(secret.read_text().strip()) == 44, f"{oct(sst.st_mode) if sst else None}")
        # check-config on the installed template as the service would run it: as the turnbridge
        # uid and gid (numbers of the throw-away root), reading rest_secret through its group.
        os.chmod(root, 0o755)
        checked = run(["setpriv", f"--reuid={user[2]}", f"--regid={grp[2]}", "--clear-groups", str(binary),
                       "check-config", str(conf_path)], timeout=30) if user and grp else None
        r.check("the installed template passes check-config as the turnbridge user",
                checked is not None and checked.returncode == 0 and checked.stdout.strip().endswith(": OK"),
                (checked.stdout + checked.stderr).strip() if checked else "no user")

        # The conffile is the administrator's: a reinstall keeps their edit.
        conf_path.write_text(conf_path.read_text() + "\n# edited by the administrator\n")
        again = install(root, deb)
        r.check("reinstall keeps the edited conffile", again.returncode == 0
                and "edited by the administrator" in conf_path.read_text(), again.stderr[-1000:])

        unit = root / "lib/systemd/system/turnbridge.service"
        # verify resolves inside the root: give it this host's units (sysinit.target, ...) and
        # /bin/kill (ExecReload=) beside the installed unit.
        shutil.copytree("/lib/systemd/system", root / "lib/systemd/system", symlinks=True, dirs_exist_ok=True,
                        ignore=lambda d, names: [n for n in names if n.startswith("turnbridge")])
        (root / "bin").mkdir(exist_ok=True)
        shutil.copy2("/bin/kill", root / "bin/kill")
        verify = run(["systemd-analyze", "verify", f"--root={root}", "--man=no", "--generators=no",
                      "/lib/systemd/system/turnbridge.service"], timeout=60)
        r.check("systemd-analyze verify passes on the installed unit", verify.returncode == 0,
                verify.stdout + verify.stderr)
        security = run(["systemd-analyze", "security", "--offline=yes", f"--threshold={int(MAX_EXPOSURE * 10)}",
                        str(unit)], timeout=60)
        m = re.search(r"Overall exposure level for turnbridge.service: ([0-9.]+)", security.stdout)
        score = float(m.group(1)) if m else None
        r.check(f"systemd-analyze security --offline: exposure <= {MAX_EXPOSURE}",
                score is not None and score <= MAX_EXPOSURE and security.returncode == 0,
                f"{score} (exit {security.returncode})")
        text = unit.read_text()
        purge = run(["dpkg", f"--root={root}", "--force-script-chrootless", f"--log={root}/dpkg.log", "--purge",
                     "turnbridge"], env=dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin"), timeout=60)
        r.check("purge removes the files, the conffile, the secret and the database folder",
                purge.returncode == 0 and not binary.exists() and not conf_path.exists() and not secret.exists()
                and not (root / "var/lib/turnbridge").exists(), purge.stderr[-800:])
        for key in ("Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=turnbridge",
                    "ConfigurationDirectory=turnbridge", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "LimitNOFILE=",
                    "User=turnbridge"):
            r.check(f"unit: {key}", key in text)
    finally:
        shutil.rmtree(root, ignore_errors=True)


main_guard(main)
