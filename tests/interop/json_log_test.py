# SPDX-License-Identifier: Apache-2.0
"""[server] log_format = "json" (issue 16): whole interop suites (TURN over UDP, TCP and TLS with
aioice, auth failures and a SIGHUP reload; the gateway's SIP calls with JsSIP; the first-run demo's
calls to the built-in test line in Chromium) run again with
TURNBRIDGE_LOG_FORMAT=json, and every line of every server log they leave must be one JSON object
with exactly the documented keys (README, "Logs"), with allocation events carrying their realm,
user, allocation, client and relay, and allocation.deleted its bytes and reason; the gateway's
call.started and call.ended events their realm, call and peer, call.ended its user, bytes and reason.

interop-timeout: 420
"""
import json
import os
import subprocess
import tempfile
from pathlib import Path

from harness import HERE, main_guard

KEYS = ["time", "level", "event", "realm", "user", "allocation", "call", "client", "relay", "peer", "bytes",
        "reason", "message"]
SUITES = [["/usr/bin/python3", "-u", "aioice_test.py"], ["node", "gateway_sip_test.js"], ["node", "demo_test.js"]]


def main(r):
    base = Path(tempfile.mkdtemp(prefix="turnbridge-json-"))
    for suite in SUITES:
        name = Path(suite[-1]).stem
        tmp = base / name
        tmp.mkdir()
        env = dict(os.environ, TURNBRIDGE_LOG_FORMAT="json", TURNBRIDGE_KEEP_LOGS="1", TMPDIR=str(tmp))
        out = subprocess.run(suite, cwd=HERE, env=env, capture_output=True, text=True, timeout=180)
        last = out.stdout.strip().splitlines()[-1:] or [""]
        failed = [line for line in out.stdout.splitlines() if line.startswith("FAIL")]
        r.check(f"{name} passes with JSON logs", out.returncode == 0 and last[0].endswith(" 0 failed"),
                f"{last[0]}; " + " | ".join(failed)[:1500] + out.stderr[-500:] if out.returncode else last[0])
        logs = sorted(tmp.glob("**/turnbridge.log"))
        lines = bad = 0
        events = {}
        first_bad = ""
        for log in logs:
            for raw in log.read_bytes().splitlines():
                lines += 1
                try:
                    obj = json.loads(raw)
                    ok = isinstance(obj, dict) and list(obj) == KEYS and obj["level"] in (
                        "debug", "info", "warn", "error") and obj["time"].endswith("Z") and obj["event"]
                except ValueError:
                    ok, obj = False, None
                if not ok:
                    bad += 1
                    first_bad = first_bad or f"{log}: {raw[:300]!r}"
                    continue
                events.setdefault(obj["event"], []).append(obj)
        r.check(f"{name}: every line of {len(logs)} server logs is JSON with the documented keys",
                lines > 0 and bad == 0, f"{lines} lines, {bad} bad: {first_bad}")
        created = events.get("allocation.created", [])
        deleted = events.get("allocation.deleted", [])
        if name == "aioice_test":
            r.check(f"{name}: allocation.created has realm, user, allocation, client, relay",
                    created and all(e["realm"] and e["user"] and e["allocation"] and e["client"] and e["relay"]
                                    for e in created), f"{len(created)} events")
            r.check(f"{name}: allocation.deleted has the same, with bytes and reason",
                    deleted and all(e["realm"] and e["user"] and e["allocation"] and e["client"] and e["relay"]
                                    and isinstance(e["bytes"], int) and e["reason"] for e in deleted),
                    f"{len(deleted)} events")
            ids = {e["allocation"] for e in created}
            r.check(f"{name}: each deleted allocation was created under the same id",
                    deleted and all(e["allocation"] in ids for e in deleted))
        if name in ("gateway_sip_test", "demo_test"):
            started = events.get("call.started", [])
            ended = events.get("call.ended", [])
            r.check(f"{name}: call.started has realm, call (the Call-ID) and peer (the other party)",
                    started and all(e["realm"] and e["call"] and e["peer"] for e in started), f"{len(started)} events")
            r.check(f"{name}: call.ended has realm, user, call, peer, reason and bytes",
                    ended and all(e["realm"] and e["user"] and e["call"] and e["peer"] and e["reason"]
                                  and isinstance(e["bytes"], int) for e in ended), f"{len(ended)} events")
            ids = {e["call"] for e in started}
            r.check(f"{name}: each ended call was started under the same call id",
                    ended and all(e["call"] in ids for e in ended))


main_guard(main)
