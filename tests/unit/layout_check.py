#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The layout rules of STYLE.md and issue 12, checked on every build (meson test 'layout'):
- the sans-I/O cores never include <uv.h>, <sqlite3.h> or socket headers and never read a clock;
- io/ knows no protocol: it includes only io/, base/, config/ and two value types (turn::Clock, stun::Bytes);
- sqlite3.h only in accounting/sqlite_store*;
- no src/net any more;
- every src folder's meson.build opens with a comment saying what it owns and what it must not include.
Prints one line per breach and exits 1 if there is any."""
import os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
os.chdir(root)
CORES = ["base", "stun", "turn", "sip", "gateway", "config", "accounting", "admin"]
# What a core may still do, and why.
ALLOWED = {
    "src/base/address.cpp": {"socket"},           # sockaddr <-> Endpoint conversions, no socket opened
    "src/base/log.cpp": {"clock"},                # log lines carry the wall time
    "src/accounting/report_cli.cpp": {"clock"},   # `turnbridge report` is a command line, not a core
    "src/admin/http_server.cpp": {"uv", "clock", "socket"},   # the admin API's libuv host
    "include/turnbridge/admin/http_server.hpp": {"uv"},
    "src/accounting/sqlite_store.hpp": {"sqlite"},
    "src/accounting/sqlite_store.cpp": {"sqlite"},
    "src/accounting/sqlite_store_queries.cpp": {"sqlite"},
}
RULES = {
    "uv": re.compile(r"#include\s*<uv\.h>"),
    "sqlite": re.compile(r"#include\s*<sqlite3\.h>"),
    "socket": re.compile(r"#include\s*<(sys/socket|netinet/[a-z_]+|arpa/inet)\.h>"),
    "clock": re.compile(r"(steady_clock|system_clock)::now\(\)|\btime\(\s*(NULL|nullptr|0)\s*\)"),
}
bad = []

def files(top):
    for d, _, fs in os.walk(top):
        for f in fs:
            if f.endswith((".cpp", ".hpp", ".h")):
                yield os.path.join(d, f)

for core in CORES:
    for top in (f"src/{core}", f"include/turnbridge/{core}"):
        for f in files(top):
            if "/host/" in f:
                continue   # gateway/host is a host, not a core
            text = open(f, encoding="utf-8").read()
            for rule, rx in RULES.items():
                if rx.search(text) and rule not in ALLOWED.get(f, set()):
                    bad.append(f"{f}: a core must not use {rule} (STYLE.md)")
for top in ("src", "include", "tests/unit"):
    for f in files(top):
        if RULES["sqlite"].search(open(f, encoding="utf-8").read()) and "sqlite" not in ALLOWED.get(f, set()) \
                and not f.startswith("tests/"):
            bad.append(f"{f}: only accounting/sqlite_store* may include <sqlite3.h>")
for top in ("src/io", "include/turnbridge/io"):
    for f in files(top):
        for inc in re.findall(r'#include\s*"turnbridge/([a-z_]+/[a-z_]+)\.hpp"', open(f, encoding="utf-8").read()):
            folder = inc.split("/")[0]
            # Plain value types it may carry: the config it is bounded by, a clock reading, bytes.
            if folder not in ("io", "base", "config") and inc not in ("turn/clock", "stun/message"):
                bad.append(f"{f}: io/ includes turnbridge/{inc}.hpp (io knows no protocol)")
for gone in ("src/net", "include/turnbridge/net", "tests/unit/net"):
    if os.path.exists(gone):
        bad.append(f"{gone}: src/net was split into io/, server/, gateway/host/ and app/ (issue 12)")
for d, _, fs in os.walk("src"):
    if "meson.build" in fs:
        head = [l for l in open(os.path.join(d, "meson.build"), encoding="utf-8").read().split("\n")[:6]
                if l.startswith("#") and "SPDX" not in l]
        text = " ".join(head).lower()
        if not head or "must not" not in text:
            bad.append(f"{d}/meson.build: no opening comment saying what the folder owns and must not include")
for b in bad:
    print("FAIL", b)
print(f"layout: {len(bad)} breach(es)")
sys.exit(1 if bad else 0)
