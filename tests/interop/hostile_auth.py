#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hostile_test.py cases: password guessing and one user against the per-user limits (issue 11).

- TURN: 2,000 Allocates with wrong passwords from one source over UDP. With the default
  security.auth_failures_per_minute (20) the server checks about 20 of them; the rest get the
  same 401 without a check (counted in turnbridge_auth_throttled_total{protocol="turn"}), the
  right password from that source is not checked either, and from another address it works.
- SIP digest over WebSocket: 2,000 REGISTERs with wrong passwords after the 401. About 20 get
  403, the rest 503 with Retry-After; the right password from that source gets 503 too, from
  another it registers (ctx.during()).
- Admin token: 2,000 requests with a wrong bearer token. About 20 get 401, then 429 with
  Retry-After; the right token from another address is served.
- One user against the default per-user limits: 10 allocations, the 11th gets 486; 64
  permissions and 64 channels on one allocation, the next one 508; another user still
  allocates (ctx.during(), no 508).
Each attack uses a source of its own (127.0.0.31-33) so that what it leaves in the throttle's
buckets (a minute at most) meets no later case.
"""
import hashlib
import http.client
import re
import secrets
import socket
import time

from aioice import stun

from hostile_common import (PASSWORD, REALM, TOKEN, USER, admin_get, module_main, wait_for, ws_connect, ws_frame,
                            ws_read_message)
from stun_client import UDP_TRANSPORT, StunError, TurnClient, error_code

GUESSES = 2000
DEFAULT_LIMIT = 20          # security.auth_failures_per_minute
CHECKED_BOUND = 40          # the burst, plus what refills (one every 3 s) while the case runs
TURN_ATTACKER, SIP_ATTACKER, ADMIN_ATTACKER = "127.0.0.31", "127.0.0.32", "127.0.0.33"
LIMITED_USER, LIMITED_PASSWORD = "nobody", "n0body"   # a static user of HostileServer's realm


def metrics(server):
    """{(name, labels): value} of /metrics (empty when it could not be read)."""
    status, body = admin_get(server, "/metrics")
    out = {}
    if status != 200:
        return out
    for line in body.decode().splitlines():
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$", line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def metric(snapshot, name, labels=""):
    return snapshot.get((name, labels), 0)


def check_slowed(r, what, statuses, refused, held, retry_after, took, rfc):
    """The guesses' answers: at most about the bucket's depth `refused` (the password was
    checked), the rest `held` with a Retry-After (not checked)."""
    n_refused, n_held = statuses.count(refused), statuses.count(held)
    r.check(f"{what}: wrong passwords from one source get {refused} at most about auth_failures_per_minute times",
            1 <= n_refused <= CHECKED_BOUND, f"{n_refused} x {refused}, {n_held} x {held} of {len(statuses)} in {took:.1f} s")
    r.check(f"{what}: the other guesses get {held} with Retry-After, without a check ({rfc})",
            n_refused + n_held == len(statuses) >= GUESSES * 0.95 and bool(retry_after) and retry_after.isdigit(),
            f"Retry-After: {retry_after}")


# ---------------------------------------------------------------------------------------------
# TURN long-term credentials

def turn_nonce(sock, server):
    """REALM and NONCE from the 401 to an Allocate without credentials."""
    for _ in range(5):
        m = stun.Message(message_method=stun.Method.ALLOCATE, message_class=stun.Class.REQUEST)
        m.attributes["REQUESTED-TRANSPORT"] = UDP_TRANSPORT
        sock.sendto(bytes(m), server)
        try:
            resp = stun.parse_message(sock.recv(2048))
            return resp.attributes["REALM"], resp.attributes["NONCE"]
        except (socket.timeout, ValueError, KeyError):
            continue
    raise TimeoutError("no 401 challenge")


def signed_allocate(realm, nonce, password):
    m = stun.Message(message_method=stun.Method.ALLOCATE, message_class=stun.Class.REQUEST)
    m.attributes["REQUESTED-TRANSPORT"] = UDP_TRANSPORT
    m.attributes["USERNAME"] = USER
    m.attributes["REALM"] = realm
    m.attributes["NONCE"] = nonce
    m.add_message_integrity(hashlib.md5(f"{USER}:{realm}:{password}".encode()).digest())
    return m


def drain(sock, codes, until):
    while time.monotonic() < until:
        try:
            codes.append(error_code(stun.parse_message(sock.recv(2048))))
        except socket.timeout:
            return
        except ValueError:
            continue


def right_password_over_tcp(server):
    """The error code of an Allocate with the right password from TURN_ATTACKER over TCP."""
    c = TurnClient(("127.0.0.1", server.port), USER, PASSWORD, transport="tcp")
    c.sock.close()
    c.sock = socket.create_connection(("127.0.0.1", server.port), timeout=3.0, source_address=(TURN_ATTACKER, 0))
    try:
        c.allocate()
        return [0]
    except StunError as e:
        return [e.code]
    except (OSError, TimeoutError) as e:
        return [str(e)]
    finally:
        c.close()


def turn_guessing(r, ctx):
    server = ctx.server
    target = ("127.0.0.1", server.port)
    before = metrics(server)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((TURN_ATTACKER, 0))
    s.settimeout(0.05)
    codes = []
    try:
        realm, nonce = turn_nonce(s, target)
        t0 = time.monotonic()
        for batch in range(GUESSES // 100):
            for i in range(100):
                s.sendto(bytes(signed_allocate(realm, nonce, f"guess-{batch}-{i}")), target)
            drain(s, codes, time.monotonic() + 0.05)
            if batch == 9:
                ctx.during()
        took = time.monotonic() - t0
        # The attacker's source is held: even the right password gets the plain 401. Over TCP from
        # the same address, since the reflection guard withholds most 401s to it over UDP.
        answer = right_password_over_tcp(server)
        drain(s, codes, time.monotonic() + 1.0)
    finally:
        s.close()
    after = metrics(server)
    checked = metric(after, "turnbridge_auth_failed_checks_total", '{protocol="turn"}') - \
        metric(before, "turnbridge_auth_failed_checks_total", '{protocol="turn"}')
    throttled = metric(after, "turnbridge_auth_throttled_total", '{protocol="turn"}') - \
        metric(before, "turnbridge_auth_throttled_total", '{protocol="turn"}')
    r.check("TURN: wrong passwords from one source are checked at most about auth_failures_per_minute times",
            1 <= checked <= CHECKED_BOUND, f"{checked:.0f} checked, {throttled:.0f} throttled of {GUESSES} in {took:.1f} s")
    r.check("TURN: the rest of the guesses were answered without a check", checked + throttled >= GUESSES * 0.9,
            f"{checked + throttled:.0f} of {GUESSES} reached the server")
    r.check("TURN: every answer the guesser saw is the same 401", codes and set(codes) == {401},
            f"{len(codes)} answers, codes {sorted(set(codes))}")
    r.check("TURN: the right password from the guessing source is not checked while it is throttled",
            answer == [401], f"got {answer}")


# ---------------------------------------------------------------------------------------------
# SIP digest over WebSocket

def register(call_id, tag, cseq, auth=""):
    branch = "z9hG4bK" + secrets.token_hex(8)
    return (f"REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/WS {secrets.token_hex(4)}.invalid;branch={branch}\r\n"
            f"Max-Forwards: 70\r\nTo: <sip:{USER}@{REALM}>\r\nFrom: <sip:{USER}@{REALM}>;tag={tag}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:{secrets.token_hex(4)}@x.invalid;transport=ws>;expires=60\r\n{auth}"
            f"Content-Length: 0\r\n\r\n").encode()


def digest(realm, nonce, password):
    ha1 = hashlib.md5(f"{USER}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"REGISTER:sip:{REALM}".encode()).hexdigest()
    resp = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
    return (f'Authorization: Digest username="{USER}", realm="{realm}", nonce="{nonce}", '
            f'uri="sip:{REALM}", response="{resp}", algorithm=MD5\r\n')


def finals(s, want, timeout=5.0):
    """The next `want` final responses on `s` as (status, text)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        data = ws_read_message(s, max(0.1, deadline - time.monotonic()))
        if data is None:
            break
        text = data.decode(errors="replace")
        status = int(text.split(" ", 2)[1]) if text.startswith("SIP/2.0 ") else 0
        if status >= 200:
            got.append((status, text))
    return got


def sip_guessing(r, ctx):
    server = ctx.server
    s = ws_connect(server.ws_port, source=SIP_ATTACKER)
    statuses, retry_after = [], None
    try:
        call_id, tag = secrets.token_hex(8), secrets.token_hex(4)
        s.sendall(ws_frame(register(call_id, tag, 1)))
        (status, text), = finals(s, 1)
        www = next(line for line in text.split("\r\n") if line.lower().startswith("www-authenticate:"))
        params = dict(p.strip().split("=", 1) for p in www.split(" ", 2)[2].split(","))
        realm, nonce = params["realm"].strip('"'), params["nonce"].strip('"')
        t0 = time.monotonic()
        # One at a time, as a client would (and ws_read_message keeps no bytes between calls).
        for cseq in range(2, GUESSES + 2):
            s.sendall(ws_frame(register(call_id, tag, cseq, digest(realm, nonce, f"guess-{cseq}"))))
            for status, text in finals(s, 1):
                statuses.append(status)
                if status == 503 and retry_after is None:
                    retry_after = next((line.split(":", 1)[1].strip() for line in text.split("\r\n")
                                        if line.lower().startswith("retry-after:")), "")
            if cseq == GUESSES // 2:
                ctx.during()
        took = time.monotonic() - t0
        s.sendall(ws_frame(register(call_id, tag, GUESSES + 2, digest(realm, nonce, PASSWORD))))
        right = [status for status, _ in finals(s, 1)]
    finally:
        s.close()
    check_slowed(r, "SIP", statuses, 403, 503, retry_after, took, "RFC 3261 §21.5.4")
    r.check("SIP: the right password from the guessing source gets 503 while it is throttled", right == [503],
            f"got {right}")


# ---------------------------------------------------------------------------------------------
# Admin token

def admin_guessing(r, ctx):
    server = ctx.server
    statuses, retry_after = [], None
    conn = None
    t0 = time.monotonic()
    try:
        for i in range(GUESSES):
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=5.0,
                                                  source_address=(ADMIN_ATTACKER, 0))
            try:
                conn.request("GET", "/api/v1/allocations", headers={"Authorization": f"Bearer guess{i}"})
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
                continue
            statuses.append(resp.status)
            if resp.status == 429 and retry_after is None:
                retry_after = resp.getheader("Retry-After")
            if resp.will_close:
                conn.close()
                conn = None
            if i == GUESSES // 2:
                ctx.during()
        took = time.monotonic() - t0
        right = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=5.0,
                                           source_address=(ADMIN_ATTACKER, 0))
        right.request("GET", "/api/v1/allocations", headers={"Authorization": f"Bearer {TOKEN}"})
        right_status = right.getresponse().status
        right.close()
    finally:
        if conn is not None:
            conn.close()
    check_slowed(r, "admin", statuses, 401, 429, retry_after, took, "RFC 6585 §4")
    r.check("admin: the right token from the guessing source gets 429 while it is throttled", right_status == 429,
            f"got {right_status}")


# ---------------------------------------------------------------------------------------------
# One user against the default per-user limits

def per_user_limits(r, ctx):
    server = ctx.server
    before = metrics(server)
    clients = []
    try:
        for _ in range(10):
            c = TurnClient(("127.0.0.1", server.port), LIMITED_USER, LIMITED_PASSWORD)
            clients.append(c)
            c.allocate()
        r.check("one user gets 10 allocations (server.max_allocations_per_user default)", len(clients) == 10)
        eleventh = TurnClient(("127.0.0.1", server.port), LIMITED_USER, LIMITED_PASSWORD)
        clients.append(eleventh)
        t0 = time.monotonic()
        resp = eleventh.request(stun.Method.ALLOCATE, {"LIFETIME": 600, "REQUESTED-TRANSPORT": UDP_TRANSPORT})
        took = time.monotonic() - t0
        r.check("the 11th allocation of that user gets 486 (RFC 8656 §7.2), at once", error_code(resp) == 486
                and took < 0.5, f"got {error_code(resp)} in {took * 1000:.0f} ms")
        first = clients[0]
        codes = [error_code(first.create_permission((f"127.1.{i // 200}.{i % 200 + 1}", 40000))) for i in range(70)]
        r.check("permissions on one allocation stop at 64 with 508 (RFC 8656 §10.2)",
                codes[:64] == [0] * 64 and set(codes[64:]) == {508}, f"codes after 64: {codes[64:]}")
        second = clients[1]
        codes = [error_code(second.channel_bind(0x4000 + i, ("127.0.0.1", 41000 + i))) for i in range(70)]
        r.check("channels on one allocation stop at 64 with 508 (RFC 8656 §12.2)",
                codes[:64] == [0] * 64 and set(codes[64:]) == {508}, f"codes after 64: {codes[64:]}")
        # Another user, while this one holds all it may (a second): served (TURN over UDP, TCP and TLS).
        time.sleep(1.0)
        ctx.during()
        names = ("turnbridge_user_allocation_limit_total", "turnbridge_permission_limit_total",
                 "turnbridge_channel_limit_total")
        # The workers post their counters every flush_interval (1 s here).
        after = wait_for(lambda: (m := metrics(server)) and all(metric(m, n) > metric(before, n) for n in names) and m,
                         5.0) or metrics(server)
        for name in names:
            grew = metric(after, name) - metric(before, name)
            r.check(f"{name} counts the refusals", grew >= 1, f"+{grew:.0f}")
    finally:
        for c in clients:
            try:
                if c.key:
                    c.refresh(0)
            except Exception:  # noqa: BLE001: best effort, the socket closes anyway
                pass
            c.close()


CASES = [
    ("password guessing on TURN", turn_guessing),
    ("password guessing on SIP digest over WebSocket", sip_guessing),
    ("password guessing on the admin token", admin_guessing),
    ("one user against the default per-user limits", per_user_limits),
]

if __name__ == "__main__":
    module_main(CASES)
