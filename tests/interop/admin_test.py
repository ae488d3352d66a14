# SPDX-License-Identifier: Apache-2.0
# interop-timeout: 180
"""The admin HTTP server of a real turnbridge, with real relayed traffic.

One turnbridge on loopback with `[admin] listen = "127.0.0.1:PORT"` and `token = "t0ken"`;
one UDP allocation relays a known number of packets both ways through a channel. Then:
/metrics read by prometheus_client's parser (Debian python3-prometheus-client) has every
family, non-zero (and exact) relayed bytes; /api/v1/allocations lists the live allocation;
/api/v1/usage returns rows, byte-identical to `turnbridge report --format json`; 401 without
or with a wrong token; 400 naming the parameter; 404/405; the usage page in headless Chromium
(admin_page_shot.js) reaches data-ready and leaves a non-trivial screenshot; DELETE kicks the
allocation, which is then gone from the list and from the server (Refresh gets 437).

Loopback only (127.0.0.1).
"""
import http.client
import json
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from harness import BINARY, HERE, PASSWORD, REALM, USER, Turnbridge, free_port, main_guard
from stun_client import TurnClient, error_code

TOKEN = "t0ken"
FLUSH = 1           # [accounting] flush_interval, seconds
CHANNEL = 0x4001
SIZES_OUT = [100, 200, 300, 1000] * 5    # client -> peer payloads
SIZES_IN = [50, 500, 1200] * 4           # peer -> client payloads
DIRS = ["client_to_relay", "relay_to_peer", "peer_to_relay", "relay_to_client"]
FAMILIES = {  # as prometheus_client names them (a counter's family drops _total)
    "turnbridge_active_allocations": "gauge",
    "turnbridge_relayed_bytes": "counter",
    "turnbridge_relayed_packets": "counter",
    "turnbridge_allocations_created": "counter",
    "turnbridge_allocations_closed": "counter",
    "turnbridge_allocations_failed": "counter",
    "turnbridge_auth_failures": "counter",
    "turnbridge_quota_refusals": "counter",
    "turnbridge_unauthenticated_dropped": "counter",
    "turnbridge_loop_lag_seconds": "gauge",
    "turnbridge_gateway_calls": "counter",
    "turnbridge_gateway_call_seconds": "counter",
    "turnbridge_gateway_call_bytes": "counter",
    "turnbridge_gateway_call_packets": "counter",
}


class Admin:
    """HTTP/1.1 to the admin port with http.client (no proxy settings apply)."""

    def __init__(self, port):
        self.port = port

    def call(self, method, path, token=TOKEN, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            h = dict(headers or {})
            if token is not None:
                h["Authorization"] = f"Bearer {token}"
            conn.request(method, path, headers=h)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def json(self, path):
        status, headers, body = self.call("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        return json.loads(body)


def wait_until(fn, timeout=5.0, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def relay_traffic(client, peer):
    """Channel traffic both ways; returns the payload ground truth per direction."""
    relay = client.allocate()
    resp = client.channel_bind(CHANNEL, peer.getsockname())
    if error_code(resp):
        raise RuntimeError(f"ChannelBind failed: {error_code(resp)}")
    truth = {"packets": [0, 0, 0, 0], "payload": [0, 0, 0, 0]}
    for n in SIZES_OUT:
        client.send_channel_data(CHANNEL, bytes(n))
        data, _ = peer.recvfrom(65536)
        assert len(data) == n, "payload changed on the way to the peer"
        for d in (0, 1):
            truth["packets"][d] += 1
            truth["payload"][d] += n
    for n in SIZES_IN:
        peer.sendto(bytes(n), tuple(relay))
        kind, _, got = client.receive(timeout=3)
        assert kind == "channel" and len(got) == n, "payload changed on the way to the client"
        for d in (2, 3):
            truth["packets"][d] += 1
            truth["payload"][d] += n
    return relay, truth


def check_metrics(r, admin, truth):
    status, headers, body = admin.call("GET", "/metrics")
    r.check("/metrics: 200 in the text format 0.0.4", status == 200 and
            headers.get("content-type") == "text/plain; version=0.0.4; charset=utf-8",
            f"{status} {headers.get('content-type')}")
    try:
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    except Exception as e:  # noqa: BLE001 - any parse failure is the finding
        r.check("/metrics: prometheus_client parses it", False, f"{type(e).__name__}: {e}")
        return
    r.check("/metrics: prometheus_client parses it", True, f"{len(families)} families")
    missing = [n for n, t in FAMILIES.items() if n not in families or families[n].type != t]
    r.check("/metrics: every family with its type", not missing, f"missing or mistyped: {missing}")
    samples = [s for f in families.values() for s in f.samples]

    def value(name, **labels):
        return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    total = value("turnbridge_relayed_bytes_total", realm=REALM)
    r.check("/metrics: relayed bytes are non-zero", total > 0, f"{total:.0f} bytes in realm {REALM}")
    got = [value("turnbridge_relayed_bytes_total", realm=REALM, direction=d, kind="payload") for d in DIRS]
    r.check("/metrics: payload bytes per direction equal the ground truth", got == truth["payload"],
            f"metrics {got}, truth {truth['payload']}")
    got = [value("turnbridge_relayed_packets_total", realm=REALM, direction=d) for d in DIRS]
    r.check("/metrics: packets per direction equal the ground truth", got == truth["packets"],
            f"metrics {got}, truth {truth['packets']}")
    active = value("turnbridge_active_allocations", realm=REALM)
    r.check("/metrics: one active allocation", active == 1, f"{active}")
    created = value("turnbridge_allocations_created_total", realm=REALM)
    r.check("/metrics: allocations created counted", created >= 1, f"{created}")
    lag = [s for s in samples if s.name == "turnbridge_loop_lag_seconds"]
    r.check("/metrics: loop lag for each worker", len(lag) == 2, f"{len(lag)} samples (threads = 2)")


def check_allocations(r, admin, relay, truth):
    live = admin.json("/api/v1/allocations")
    mine = [a for a in live if a.get("user") == USER]
    if not r.check("/api/v1/allocations lists the live allocation", len(mine) == 1, json.dumps(live)[:400]):
        return None
    a = mine[0]
    relay_text = f"{relay[0]}:{relay[1]}"
    r.check("allocation: identity fields", a.get("realm") == REALM and a.get("transport") == "udp"
            and a.get("username") == USER and relay_text in a.get("relay", "")
            and str(a.get("client", "")).startswith("127.0.0.1:"), json.dumps(a)[:400])
    r.check("allocation: start in ISO 8601 UTC and ms", isinstance(a.get("start_ms"), int)
            and abs(a["start_ms"] / 1000 - time.time()) < 120
            and time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a["start_ms"] // 1000)) == a.get("start"),
            f"{a.get('start')} / {a.get('start_ms')}")
    got = [a.get(f"{d}_payload_bytes") for d in DIRS]
    r.check("allocation: payload counters equal the ground truth", got == truth["payload"],
            f"api {got}, truth {truth['payload']}")
    r.check("allocation: bit rates and peers present", all(isinstance(a.get(k), (int, float))
            for k in ("bitrate_in_bps", "bitrate_out_bps")) and a.get("peers") == 1,
            f"in {a.get('bitrate_in_bps')} out {a.get('bitrate_out_bps')} peers {a.get('peers')}")
    return a["id"]


def check_usage(r, tb, admin):
    rows = admin.json("/api/v1/usage?by=user")
    mine = [row for row in rows if row.get("key") == USER]
    r.check("/api/v1/usage?by=user returns a row for the user", len(mine) == 1, json.dumps(rows)[:300])
    hours = admin.json("/api/v1/usage?by=hour&since=7d")
    r.check("/api/v1/usage?by=hour&since=7d returns rows", len(hours) >= 1, json.dumps(hours)[:300])
    # The same rows as `turnbridge report --format json`, byte for byte.
    for by in ("user", "allocation"):
        status, _, body = admin.call("GET", f"/api/v1/usage?by={by}&user={USER}")
        out = subprocess.run([str(BINARY), "report", "--config", str(tb.config_path), "--by", by,
                              "--user", USER, "--format", "json"], capture_output=True, timeout=30)
        r.check(f"usage by={by}: the API and `turnbridge report` agree byte for byte",
                status == 200 and out.returncode == 0 and body == out.stdout,
                f"api {status} {body[:160]!r}; report rc {out.returncode} {out.stdout[:160]!r} {out.stderr[:160]!r}")


def check_errors(r, admin):
    for label, token in (("no token", None), ("wrong token", "t0ken-not")):
        status, headers, body = admin.call("GET", "/api/v1/allocations", token=token)
        r.check(f"401 with {label}", status == 401 and headers.get("www-authenticate", "").startswith("Bearer")
                and "error" in json.loads(body or b"{}"), f"{status} {headers.get('www-authenticate')} {body[:100]!r}")
    status, _, _ = admin.call("GET", "/metrics", token=None)
    r.check("401 on /metrics without a token", status == 401, f"{status}")
    for query, parameter in (("since=garbage", "since"), ("until=soon", "until"), ("by=week", "by"),
                             ("colour=blue", "colour")):
        status, _, body = admin.call("GET", f"/api/v1/usage?{query}")
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        r.check(f"400 naming the parameter for {query}", status == 400 and doc.get("parameter") == parameter
                and doc.get("error"), f"{status} {body[:160]!r}")
    status, _, _ = admin.call("GET", "/no/such/thing")
    r.check("404 for an unknown path", status == 404, f"{status}")
    status, headers, _ = admin.call("POST", "/metrics")
    r.check("405 with Allow for a wrong method", status == 405 and "GET" in headers.get("allow", ""),
            f"{status} allow={headers.get('allow')}")


def png_size(path):
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", data[16:24])


def check_page(r, admin):
    status, headers, body = admin.call("GET", f"/?token={TOKEN}", token=None)
    r.check("GET /?token= serves the page", status == 200 and headers.get("content-type", "").startswith("text/html")
            and b"<canvas" in body, f"{status} {headers.get('content-type')}")
    status, _, _ = admin.call("GET", "/", token=None)
    r.check("GET / without the token is 401", status == 401, f"{status}")
    out_png = Path(tempfile.gettempdir()) / "admin_page.png"
    origin = f"http://127.0.0.1:{admin.port}"
    try:
        proc = subprocess.run(["node", str(HERE / "admin_page_shot.js"), f"{origin}/?token={TOKEN}", str(out_png)],
                              capture_output=True, text=True, timeout=90, cwd=HERE)
        lines = proc.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines else {}
    except (subprocess.TimeoutExpired, ValueError) as e:
        result = {"errors": [f"{type(e).__name__}: {e}"]}
    r.check("page: Chromium loads it and it sets data-ready", result.get("ready") is True,
            "; ".join(result.get("errors", []))[:600])
    r.check("page: no script errors", result.get("ok") and not result.get("errors"),
            "; ".join(result.get("errors", []))[:600])
    foreign = [u for u in result.get("requests", []) if not u.startswith(origin + "/")]
    r.check("page: requests nothing from anywhere else", result.get("requests") and not foreign,
            f"{len(result.get('requests', []))} requests; foreign: {foreign[:5]}")
    canvas = result.get("canvas") or {}
    r.check("page: the chart painted its canvas", canvas.get("painted", 0) > 1000, json.dumps(canvas))
    live_rows = result.get("liveRows") or []
    r.check("page: the live table shows the allocation", any(USER in row and "Kick" in row for row in live_rows),
            json.dumps(live_rows)[:300])
    user_rows = result.get("userRows") or []
    r.check("page: the top users table shows the user", any(row.startswith(USER) for row in user_rows),
            json.dumps(user_rows)[:300])
    size = png_size(out_png) if out_png.exists() else None
    r.check("page: the screenshot is a real PNG", size is not None and size[0] >= 800 and size[1] >= 600
            and out_png.stat().st_size > 20000, f"{out_png} {size} {out_png.stat().st_size if out_png.exists() else 0} bytes")


def check_kick(r, admin, client, alloc_id):
    status, _, body = admin.call("DELETE", f"/api/v1/allocations/{alloc_id}")
    r.check("DELETE /api/v1/allocations/ID kicks: 204", status == 204 and body == b"", f"{status} {body[:100]!r}")
    gone = wait_until(lambda: not [a for a in admin.json("/api/v1/allocations") if a.get("id") == alloc_id])
    r.check("the kicked allocation is gone from the list", gone)
    resp = client.refresh(600)
    r.check("the kicked allocation is gone from the server (Refresh gets 437)", error_code(resp) == 437,
            f"error code {error_code(resp)}")
    status, _, body = admin.call("DELETE", f"/api/v1/allocations/{alloc_id}")
    r.check("kicking it again: 404", status == 404, f"{status} {body[:100]!r}")

    def kicked_count():
        _, _, text = admin.call("GET", "/metrics")
        for f in text_string_to_metric_families(text.decode()):
            for s in f.samples:
                if s.name == "turnbridge_allocations_closed_total" and s.labels.get("reason") == "kicked":
                    return s.value
        return 0
    kicked = wait_until(kicked_count, timeout=FLUSH * 4)
    r.check("/metrics counts it as closed by kick", kicked == 1, f"{kicked}")


def main(r):
    admin_port = free_port()
    extra = (f'\n[accounting]\nflush_interval = {FLUSH}\n\n'
             f'[admin]\nlisten = "127.0.0.1:{admin_port}"\ntoken = "{TOKEN}"\n')
    with Turnbridge(extra_server=extra) as tb:
        admin = Admin(admin_port)
        status, _, _ = admin.call("GET", "/metrics")
        r.check("the admin port answers", status == 200, f"{status} on 127.0.0.1:{admin_port}")
        client = TurnClient(("127.0.0.1", tb.port), USER, PASSWORD)
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(3)
        try:
            relay, truth = relay_traffic(client, peer)
            time.sleep(FLUSH * 2.5)  # counters reach the control thread at each flush
            check_metrics(r, admin, truth)
            alloc_id = check_allocations(r, admin, relay, truth)
            check_usage(r, tb, admin)
            check_errors(r, admin)
            check_page(r, admin)
            if alloc_id is not None:
                check_kick(r, admin, client, alloc_id)
        finally:
            client.close()
            peer.close()
        rc = tb.stop()
        r.check("turnbridge stops cleanly", rc == 0, f"exit code {rc}")


if __name__ == "__main__":
    main_guard(main)
