#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hostile_test.py cases: output hygiene (issue 11). Names an outsider chooses reach every API
body and every log line escaped:

- a TURN REST user id `<script>alert(1)</script>` + ESC [31m allocates and relays, so that it
  reaches /api/v1/allocations (live), /api/v1/usage (after the accounting flush), the usage page
  and the log: each JSON body has it as \\u003cscript...\\u001b, the log as \\x3cscript...\\x1b;
- an INVITE from the trunk's address to a DID routed to an offline user (480) with `<script>`,
  quotes and ESC in the From display name and number: its call record in /api/v1/calls has the
  number (libosip2 writes it %-escaped), not a piece of the display name.
Everywhere: no raw ESC byte and no raw `<script` in any API body or the log; every admin
response says `X-Content-Type-Options: nosniff`, API JSON `Cache-Control: no-store`; the usage
page's CSP has no 'unsafe-inline'.
"""
import base64
import hashlib
import hmac
import http.client
import secrets
import socket
import time

from harness import REST_SECRET
from hostile_common import OFFLINE_DID, TOKEN, module_main, wait_for
from stun_client import TurnClient

MARKUP_ID = "<script>alert(1)</script>\x1b[31m"
# How the one JSON writer and the log write MARKUP_ID.
MARKUP_JSON = b"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\\u001b[31m"
MARKUP_LOG = b"\\x3cscript>alert(1)\\x3c/script>\\x1b[31m"
PEER_SOURCE = "127.0.0.5"
ENDPOINTS = ("/api/v1/allocations", "/api/v1/usage?by=user", "/api/v1/calls", "/metrics", f"/?token={TOKEN}")


def rest_credential(user):
    """TURN REST API: username "expiry:user", password base64(HMAC-SHA1(secret, username))."""
    username = f"{int(time.time()) + 3600}:{user}"
    digest = hmac.new(REST_SECRET.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def get(server, path):
    """(status, headers with lower-case names, body) of GET `path` with the token."""
    conn = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=5)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    except Exception as e:  # noqa: BLE001
        return 0, {}, str(e).encode()
    finally:
        conn.close()


def clean(body):
    """No raw ESC (or other C0 control but newline) and no raw <script in `body`."""
    controls = any(b < 0x20 and b not in (0x0A,) for b in body)
    return b"\x1b" not in body and b"<script" not in body.lower() and not controls


def check_endpoints(r, server, label):
    """Every admin endpoint: nosniff, no-store on JSON, no raw ESC or <script> in the body (the page
    itself has its own <script> block, so its body is checked for the id only)."""
    bodies = {}
    for path in ENDPOINTS:
        status, headers, body = get(server, path)
        bodies[path] = body
        name = path.split("?")[0]
        r.check(f"{label}: GET {name} answers 200", status == 200, f"got {status}")
        r.check(f"{label}: GET {name} says X-Content-Type-Options: nosniff",
                headers.get("x-content-type-options") == "nosniff", str(headers))
        if path.startswith("/api/"):
            r.check(f"{label}: GET {name} is JSON with Cache-Control: no-store",
                    headers.get("content-type") == "application/json" and headers.get("cache-control") == "no-store")
        if path.startswith("/?"):
            csp = headers.get("content-security-policy", "")
            r.check(f"{label}: the usage page's CSP allows scripts and styles by hash only",
                    "unsafe-inline" not in csp and "script-src 'sha256-" in csp and "style-src 'sha256-" in csp, csp)
            r.check(f"{label}: the usage page carries no client-chosen markup", b"alert(1)" not in body)
        else:
            r.check(f"{label}: GET {name} has no raw ESC, control byte or <script", clean(body),
                    body[:300].decode(errors="replace"))
    return bodies


def check_log(r, server, since, label, expect=None):
    """The log from byte offset `since`: no raw ESC (nor another control byte) and no raw <script;
    `expect` (escaped text) is in it."""
    text = server.log_path.read_bytes()[since:]
    r.check(f"{label}: no raw ESC, control byte or <script in the log", clean(text),
            next((line.decode(errors="replace") for line in text.split(b"\n") if not clean(line)), ""))
    if expect is not None:
        r.check(f"{label}: the log has the name escaped", expect in text, expect.decode())


def markup_user_id(r, ctx):
    server = ctx.server
    since = len(server.log_path.read_bytes())
    username, password = rest_credential(MARKUP_ID)
    client = TurnClient(("127.0.0.1", server.port), username, password, timeout=3.0)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind((PEER_SOURCE, 0))
    peer.settimeout(2.0)
    try:
        relay = client.allocate()
        r.check("a TURN REST user with markup and ESC in its id allocates", True)
        client.create_permission(peer.getsockname())
        relayed = 0
        for i in range(5):
            client.send_indication(peer.getsockname(), b"hygiene %d" % i)
            try:
                peer.recvfrom(2048)
                peer.sendto(b"back %d" % i, tuple(relay))
                client.receive(timeout=2.0)
                relayed += 1
            except (socket.timeout, TimeoutError):
                pass
        r.check("its allocation relays both ways", relayed == 5, f"{relayed} of 5 round trips")
        # The live view is a snapshot the workers publish every flush interval (1 s).
        live = wait_for(lambda: MARKUP_JSON in get(server, "/api/v1/allocations")[2], 5.0)
        r.check("/api/v1/allocations lists the live allocation with its id escaped", live)
        check_endpoints(r, server, "while the allocation is live")
        ctx.during()
        client.refresh(0)
    finally:
        client.close()
        peer.close()
    # The accounting flush (1 s) brings the closed allocation into the usage rows.
    usage = wait_for(lambda: MARKUP_JSON in get(server, "/api/v1/usage?by=user")[2], 10.0)
    r.check("/api/v1/usage has a row for the user id, escaped", usage)
    check_endpoints(r, server, "after the allocation")
    check_log(r, server, since, "TURN REST user id", MARKUP_LOG)


def invite(server, display, number):
    """A UDP INVITE from the trunk's address (127.0.0.1) to the offline DID; the final status or 0."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    msg = (f"INVITE sip:{OFFLINE_DID}@127.0.0.1:{server.sip_port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
           f"Max-Forwards: 70\r\nFrom: {display} <sip:{number}@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
           f"To: <sip:{OFFLINE_DID}@127.0.0.1>\r\nCall-ID: {secrets.token_hex(8)}\r\nCSeq: 1 INVITE\r\n"
           f"Contact: <sip:trunk@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n").encode()
    try:
        s.sendto(msg, ("127.0.0.1", server.sip_port))
        s.settimeout(1.0)
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            if data.startswith(b"SIP/2.0 ") and int(data.split(b" ", 2)[1]) >= 200:
                code = int(data.split(b" ", 2)[1])
                if code < 300:
                    break
                # RFC 3261 §17.1.1.3: ACK the final answer, so it is not sent again.
                s.sendto(ack_for(msg, data), ("127.0.0.1", server.sip_port))
                return code
        return 0
    finally:
        s.close()


def ack_for(invite_bytes, response):
    """The ACK of a non-2xx final response (RFC 3261 §17.1.1.3): same branch, the response's To."""
    lines = invite_bytes.decode(errors="surrogateescape").split("\r\n")
    head = {line.split(":", 1)[0].lower(): line for line in lines[1:] if ":" in line}
    to = next((line for line in response.decode(errors="surrogateescape").split("\r\n")
               if line.lower().startswith("to:")), head["to"])
    ruri = lines[0].split(" ")[1]
    return (f"ACK {ruri} SIP/2.0\r\n{head['via']}\r\n{head['max-forwards']}\r\n{head['from']}\r\n{to}\r\n"
            f"{head['call-id']}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n").encode(errors="surrogateescape")


def markup_sip_names(r, ctx):
    server = ctx.server
    since = len(server.log_path.read_bytes())
    rows = [
        ("markup, quotes and ESC in the display name",
         '"Mallory \\"<script>alert(2)</script>\\" \x1b[31m"', "+15550142"),
        ("markup, a quote and ESC in the number", '"Mallory"', '+1555"<script\x1b[31m'),
    ]
    for label, display, number in rows:
        code = invite(server, display, number)
        r.check(f"INVITE to an offline user with {label}: a final answer (480, or 400 if unparsable)",
                code in (480, 400), f"got {code}")
        r.check(f"INVITE with {label}: the server lives on", server.alive())
    ctx.during()
    # The call records reach the store at the next accounting flush (1 s).
    # libosip2 writes a URI's user part %-escaped (RFC 3261 §25.1), so the number arrives as
    # +1555%22%3Cscript%1B%5B31m: nothing raw can come this way, and the record says what was sent.
    number = b'"remote": "+1555%22%3Cscript%1B%5B31m"'
    calls = wait_for(lambda: number in get(server, "/api/v1/calls")[2], 10.0)
    r.check("/api/v1/calls has the call record with the number %-escaped", calls,
            get(server, "/api/v1/calls")[2][-400:].decode(errors="replace"))
    r.check("/api/v1/calls has the number of the call whose display name holds markup (not a part of the name)",
            b'"remote": "+15550142"' in get(server, "/api/v1/calls")[2])
    check_endpoints(r, server, "after the INVITEs")
    check_log(r, server, since, "SIP names", b"inbound +1555%22%3Cscript%1B%5B31m status 480")


CASES = [("markup and control characters in a TURN REST user id", markup_user_id),
         ("markup and control characters in SIP display names and numbers", markup_sip_names)]

if __name__ == "__main__":
    module_main(CASES)
