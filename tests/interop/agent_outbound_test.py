# SPDX-License-Identifier: Apache-2.0
# interop-timeout: 120
"""Outbound AI agent calls through the admin API (issue 17, what it must show: 6).

`POST /api/v1/calls {realm, to, from, agent}` places a call through the realm's trunk, here a
small SIP UAS over UDP in this process, and connects it to a Python `websockets` agent (the one
of agent_test.py) only once the trunk has answered 200 OK. The UAS and the agent record their
times on one clock (this process's), so the order is checked from timestamps.

  validation  400 naming the bad field, 404 unknown realm, 409 realm without gateway mode, 404
              unknown call id, 401 without the token
  hostile     deep nesting (400), a body over the JSON bound (400) or 1 GB announced (413 before
              any byte of it), wrong types and a 33-digit `to` (400 naming the field), 300 polls of
              unknown ids (404 each), 100 POSTs without the token (401 each): nothing placed
  answered    the UAS rings 0.6 s, then 200 OK: the agent's WebSocket opens and `start` arrives
              after the 200 was sent (never before), with to/from; the UAS's tone reaches the
              agent as media; the UAS's BYE ends it (`stop`); GET /api/v1/calls/ID: answered,
              then completed with sip_code 200; the call record (user agent, outbound, PCMU/agent)
  busy        486 from the UAS: status busy, sip_code 486; the agent never hears of the call; the
              call record has status 486 and end reason busy
  named       `agent` names an entry of [gateway.agents] whose URL has a host name, served by a
              dnsmasq on loopback (server.dns_servers): the agent is reached through the name's A
              record and gets the entry's static parameters
  bound       gateway.agent_outbound_max_calls = 2: a third call while two ring gets 429, counted
              in /metrics; after gateway.agent_ring_timeout the two are CANCELled at the UAS and
              come back no-answer, and a new call is accepted again
Everything is on loopback; the server is stopped by PID at the end.
"""
import asyncio
import base64
import json
import os
import random
import re
import struct
import subprocess
import time
import urllib.error
import urllib.request

import websockets

from agent_test import Agent, Udp, header, tone_mulaw, frequency, frequency_l16
from harness import REALM, Turnbridge, free_port, main_guard

TOKEN = "agent-outbound-token"
OTHER_REALM = "nogateway.example"
ANSWER, BUSY, RING = "+15550201", "+15550202", "+15550203"
CALLER = "+15550100"
TONE_HZ = 440.0
RING_TIMEOUT = 2
AGENT_NAME = "agent.outbound.test"
DNSMASQ = "/usr/sbin/dnsmasq"


class OutboundServer(Turnbridge):
    def __init__(self, trunk_port, dns_port, agent_port):
        self.sip_port = free_port()
        self.admin_port = free_port(taken={self.sip_port})
        ws_port = free_port(taken={self.sip_port, self.admin_port})
        lo = free_port(span=20, taken={self.sip_port, self.admin_port, ws_port})
        super().__init__(extra_server=(f'sip_listen = ["127.0.0.1:{self.sip_port}"]\n'
                                       f'ws_listen = ["127.0.0.1:{ws_port}"]\n'
                                       f'media_ip = "127.0.0.1"\nmedia_ports = "{lo}-{lo + 19}"\n'
                                       f'dns_servers = ["127.0.0.1:{dns_port}"]\n'))
        self.trunk_port, self.agent_port = trunk_port, agent_port

    def write_config(self):
        super().write_config()
        with open(self.config_path, "a") as f:
            f.write(f'\n[realm."{REALM}".gateway]\nenabled = true\n'
                    f'trunk = "sip:127.0.0.1:{self.trunk_port};transport=udp"\n'
                    f'agent_connect_timeout = 2\nagent_outbound_max_calls = 2\n'
                    f'agent_ring_timeout = {RING_TIMEOUT}\n\n'
                    f'[realm."{REALM}".gateway.agents]\n'
                    f'assistant = {{ url = "ws://{AGENT_NAME}:{self.agent_port}/named", parameters = {{ lang = "en" }} }}\n\n'
                    f'[realm."{OTHER_REALM}"]\nusers = {{ u = "p" }}\n\n'
                    f'[accounting]\nflush_interval = 1\n\n[admin]\nlisten = "127.0.0.1:{self.admin_port}"\n'
                    f'token = "{TOKEN}"\n')


def api(server, method, path, body=None, token=TOKEN):
    """(status, parsed JSON or text, headers) of one admin API request."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(f"http://127.0.0.1:{server.admin_port}{path}", data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            text, status, headers = r.read().decode(), r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        text, status, headers = e.read().decode(), e.code, dict(e.headers)
    try:
        return status, json.loads(text), headers
    except ValueError:
        return status, text, headers


async def api_async(server, method, path, body=None, token=TOKEN):
    return await asyncio.get_running_loop().run_in_executor(None, api, server, method, path, body, token)


async def wait_status(server, call_id, want, timeout):
    """Poll GET /api/v1/calls/ID until its status is in `want`; the last answer."""
    deadline = time.monotonic() + timeout
    body = {}
    while time.monotonic() < deadline:
        _, body, _ = await api_async(server, "GET", f"/api/v1/calls/{call_id}")
        if isinstance(body, dict) and body.get("status") in want:
            return body
        await asyncio.sleep(0.1)
    return body


# ---------------------------------------------------------------------------------------------
# The trunk: a SIP UAS over UDP. What it does depends on the number called.

class Uas:
    def __init__(self, loop, port):
        self.loop, self.port = loop, port
        self.calls = {}   # Call-ID -> dict of what happened

    async def start(self):
        _, self.sip = await self.loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", self.port))
        self.task = asyncio.ensure_future(self.serve())

    def respond(self, req, status, reason, addr, tag, body=""):
        keep = [ln for ln in req.split("\r\n") if re.match(r"(Via|From|Call-ID|CSeq):", ln, re.I)]
        to = header(req, "To")
        if status != 100 and "tag=" not in to:
            to += f";tag={tag}"
        lines = [f"SIP/2.0 {status} {reason}", *keep, f"To: {to}", f"Contact: <sip:uas@127.0.0.1:{self.port}>"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        self.sip.transport.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), addr)

    async def serve(self):
        while True:
            t, data, addr = await self.sip.queue.get()
            msg = data.decode(errors="replace")
            cid = header(msg, "Call-ID")
            method = msg.split(" ", 1)[0]
            c = self.calls.get(cid)
            if method == "INVITE" and c is None:
                user = re.match(r"INVITE sips?:([^@;]+)@", msg).group(1)
                c = self.calls[cid] = {"user": user, "invite": msg, "t_invite": t, "tag": f"{random.getrandbits(32):x}",
                                       "addr": addr, "events": []}
                asyncio.ensure_future(self.play(c, msg, addr))
            elif c is None:
                continue
            elif method == "ACK":
                c["events"].append(("ACK", t))
            elif method == "CANCEL":
                c["events"].append(("CANCEL", t))
                self.respond(msg, 200, "OK", addr, c["tag"])
                self.respond(c["invite"], 487, "Request Terminated", addr, c["tag"])
            elif method == "BYE":
                c["events"].append(("BYE", t))
                self.respond(msg, 200, "OK", addr, c["tag"])
            elif msg.startswith("SIP/2.0 "):
                c["events"].append((msg.split("\r\n", 1)[0], t))

    async def play(self, c, invite, addr):
        self.respond(invite, 100, "Trying", addr, c["tag"])
        self.respond(invite, 180, "Ringing", addr, c["tag"])
        if c["user"] == BUSY:
            await asyncio.sleep(0.2)
            self.respond(invite, 486, "Busy Here", addr, c["tag"])
        elif c["user"] == ANSWER:
            await asyncio.sleep(0.6)
            offer = invite.split("\r\n\r\n", 1)[1]
            c["media_addr"] = (re.search(r"c=IN IP4 (\S+)", offer).group(1), int(re.search(r"m=audio (\d+)", offer).group(1)))
            c["rtp_port"] = free_port()
            _, c["rtp"] = await self.loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", c["rtp_port"]))
            sdp = ("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                   f"m=audio {c['rtp_port']} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n")
            c["t_200"] = time.monotonic()
            self.respond(invite, 200, "OK", addr, c["tag"], sdp)
        # RING: rings until CANCELled

    async def send_tone(self, c, seconds):
        audio = tone_mulaw(TONE_HZ, 1.0)
        ssrc, seq, ts = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
        start = time.monotonic()
        for i in range(int(seconds * 50)):
            frame = audio[(i * 160) % len(audio):][:160].ljust(160, b"\xff")
            c["rtp"].transport.sendto(struct.pack("!BBHII", 0x80, 0, seq, ts, ssrc) + frame, c["media_addr"])
            seq, ts = (seq + 1) & 0xFFFF, (ts + 160) & 0xFFFFFFFF
            await asyncio.sleep(max(0, start + (i + 1) * 0.02 - time.monotonic()))

    def bye(self, cid):
        c = self.calls[cid]
        inv = c["invite"]
        # Our BYE in the dialog: To/From swapped, the gateway's Contact as Request-URI.
        contact = re.search(r"<([^>]+)>", header(inv, "Contact")).group(1)
        lines = [f"BYE {contact} SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{random.getrandbits(40):x};rport",
                 "Max-Forwards: 70", f"From: {header(inv, 'To')};tag={c['tag']}", f"To: {header(inv, 'From')}",
                 f"Call-ID: {header(inv, 'Call-ID')}", "CSeq: 1 BYE", "Content-Length: 0"]
        c["t_bye"] = time.monotonic()
        self.sip.transport.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), c["addr"])

    def by_user(self, user):
        return [c for c in self.calls.values() if c["user"] == user]


# ---------------------------------------------------------------------------------------------
# The agent (agent_test.py's format checks), with the time its WebSocket opened

AGENTS = {}


async def agent_handler(ws, path=None):
    name = (path or ws.path).strip("/")
    agent = Agent(l16=name.startswith("l16"))
    agent.opened_at = time.monotonic()
    AGENTS.setdefault(name, []).append(agent)
    try:
        async for raw in ws:
            m = json.loads(raw)
            agent.events.append((time.monotonic(), m))
            agent.check_format(m)
            if m.get("event") == "stop":
                break
    except websockets.ConnectionClosed:
        pass
    finally:
        agent.closed_at = time.monotonic()
        agent.done.set()


def raw_request(server, head, body=b"", read=True):
    """One request on its own connection, written as given; the status line's code (0: none)."""
    import socket
    with socket.create_connection(("127.0.0.1", server.admin_port), timeout=5) as s:
        s.sendall(head.encode() + body)
        if not read:
            return 0
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
    m = re.match(rb"HTTP/1\.1 (\d{3})", data)
    return int(m.group(1)) if m else 0


async def hostile_requests(results, server, url):
    """What an outsider (or a careless client) can send to POST /api/v1/calls: each gets a clear
    answer at once, and the server keeps answering."""
    ok = {"realm": REALM, "to": ANSWER, "from": CALLER, "agent": url + "/x"}
    nested = b'{"realm":' + b"[" * 8000 + b"]" * 8000 + b"}"
    st, body, _ = await api_async(server, "POST", "/api/v1/calls", nested)
    results.check("hostile: 8,000 nested arrays (16 KB, within the body bound) are 400, not a deep recursion",
                  st == 400, f"{st} {body}")
    nested = b'{"realm":' + b"[" * 100000 + b"]" * 100000 + b"}"
    st, body, _ = await api_async(server, "POST", "/api/v1/calls", nested)
    results.check("hostile: 100,000 nested arrays (200 KB) are 413", st == 413, f"{st} {body}")
    big = json.dumps({**ok, "agent": "ws://" + "a" * 20000}).encode()
    st, body, _ = await api_async(server, "POST", "/api/v1/calls", big)
    results.check("hostile: a 20 KB body (over the 16 KiB JSON bound) is 400", st == 400, f"{st} {body}")
    wrong = []
    for field, value in (("to", 15550201), ("realm", {"x": 1}), ("from", None), ("agent", ["ws://x"]), ("to", True)):
        st, body, _ = await api_async(server, "POST", "/api/v1/calls", {**ok, field: value})
        if st != 400 or not isinstance(body, dict) or body.get("parameter") != field:
            wrong.append(f"{field}={value!r}: {st} {body}")
    results.check("hostile: fields of the wrong type are 400 naming the field", not wrong, "; ".join(wrong))
    st, body, _ = await api_async(server, "POST", "/api/v1/calls", {**ok, "to": "+" + "5" * 33})
    results.check("hostile: a `to` of 33 digits is 400 naming to", st == 400 and body.get("parameter") == "to", f"{st} {body}")
    st, body, _ = await api_async(server, "POST", "/api/v1/calls", {**ok, "extra": "x" * 100})
    results.check("hostile: an unknown field is 400 naming it", st == 400 and body.get("parameter") == "extra", f"{st} {body}")
    st = await asyncio.get_running_loop().run_in_executor(None, raw_request, server,
        f"POST /api/v1/calls HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n")
    results.check("hostile: Content-Length of 1 GB is 413 before any body", st == 413, f"{st}")
    t0 = time.monotonic()
    codes = set()
    for i in range(300):
        st, _, _ = await api_async(server, "GET", f"/api/v1/calls/dial-{i:016x}")
        codes.add(st)
    results.check("hostile: 300 polls of unknown call ids are 404 each", codes == {404},
                  f"{codes} in {time.monotonic() - t0:.2f} s")
    codes = set()
    for _ in range(100):
        st, _, _ = await api_async(server, "POST", "/api/v1/calls", ok, token=None)
        codes.add(st)
    results.check("hostile: 100 POSTs without the token are 401 each, and place nothing", codes == {401}, f"{codes}")
    st, body, _ = await api_async(server, "GET", "/metrics")
    results.check("hostile: the server still answers, with no outbound call placed",
                  st == 200 and 'turnbridge_gateway_agent_outbound_total{result="placed"} 0' in str(body), f"{st}")


async def scenarios(results, server, agent_port, dns, dns_log):
    loop = asyncio.get_running_loop()
    uas = Uas(loop, server.trunk_port)
    await uas.start()
    url = f"ws://127.0.0.1:{agent_port}"

    # Validation.
    st, body, _ = await api_async(server, "POST", "/api/v1/calls", {"realm": REALM, "from": CALLER, "agent": url + "/x"})
    results.check("validation: a missing field is 400 naming it", st == 400 and body.get("parameter") == "to", f"{st} {body}")
    st, body, _ = await api_async(server, "POST", "/api/v1/calls",
                                  {"realm": REALM, "to": "12ab", "from": CALLER, "agent": url + "/x"})
    results.check("validation: a number that is no number is 400 naming it", st == 400 and body.get("parameter") == "to",
                  f"{st} {body}")
    st, body, _ = await api_async(server, "POST", "/api/v1/calls",
                                  {"realm": REALM, "to": ANSWER, "from": CALLER, "agent": "http://127.0.0.1/x"})
    results.check("validation: an agent that is no ws:// URL is 400 naming agent", st == 400 and body.get("parameter") == "agent",
                  f"{st} {body}")
    st, body, _ = await api_async(server, "POST", "/api/v1/calls",
                                  {"realm": "nowhere.example", "to": ANSWER, "from": CALLER, "agent": url + "/x"})
    results.check("validation: an unknown realm is 404", st == 404 and body.get("parameter") == "realm", f"{st} {body}")
    st, body, _ = await api_async(server, "POST", "/api/v1/calls",
                                  {"realm": OTHER_REALM, "to": ANSWER, "from": CALLER, "agent": url + "/x"})
    results.check("validation: a realm without gateway mode is 409", st == 409, f"{st} {body}")
    st, body, _ = await api_async(server, "POST", "/api/v1/calls", b"{not json")
    results.check("validation: a body that is no JSON object is 400", st == 400, f"{st} {body}")
    st, body, _ = await api_async(server, "POST", "/api/v1/calls",
                                  {"realm": REALM, "to": ANSWER, "from": CALLER, "agent": url + "/x"}, token=None)
    results.check("validation: without the token 401", st == 401, f"{st}")
    st, body, _ = await api_async(server, "GET", "/api/v1/calls/dial-0000000000000000")
    results.check("validation: an unknown call id is 404", st == 404, f"{st} {body}")
    await hostile_requests(results, server, url)
    results.check("validation: no INVITE reached the trunk for a refused request", not uas.calls, f"{len(uas.calls)}")

    # Answered: the agent is connected only after 200 OK.
    st, placed, headers = await api_async(server, "POST", "/api/v1/calls",
                                          {"realm": REALM, "to": ANSWER, "from": CALLER, "agent": url + "/answered"})
    ok = results.check("answered: POST /api/v1/calls is 202 with an id, status dialing and its Location",
                       st == 202 and isinstance(placed, dict) and placed.get("status") == "dialing"
                       and headers.get("Location") == f"/api/v1/calls/{placed.get('id')}", f"{st} {placed} {headers.get('Location')}")
    if ok:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not AGENTS.get("answered"):
            await asyncio.sleep(0.02)
        c = next(iter(uas.by_user(ANSWER)), None)
        results.check("answered: the trunk got the INVITE with From the API's caller and To the number",
                      c is not None and f"sip:{CALLER}@" in header(c["invite"], "From") and f"sip:{ANSWER}@" in header(c["invite"], "To"),
                      header(c["invite"], "From") if c else "no INVITE")
        a = (AGENTS.get("answered") or [None])[0]
        deadline = time.monotonic() + 3
        while c is not None and "t_200" not in c and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if a is not None and c is not None:
            await asyncio.sleep(0.3)
            c.setdefault("t_200", float("inf"))   # no 200 sent at all: the agent was connected without one
            t_start = a.of("start")[0][0] if a.of("start") else None
            results.check("answered: the agent's WebSocket opened after the trunk's 200 OK was sent, not before",
                          a.opened_at > c["t_200"], f"opened {1000 * (a.opened_at - c['t_200']):+.1f} ms after the 200, "
                          f"INVITE {1000 * (c['t_200'] - c['t_invite']):.0f} ms before it")
            if c["t_200"] == float("inf"):
                return results.check("answered: the UAS answered", False, "the agent was connected before any 200 OK")
            results.check("answered: `start` arrived after the 200 OK",
                          t_start is not None and t_start > c["t_200"],
                          f"{1000 * (t_start - c['t_200']):+.1f} ms" if t_start else "no start")
            cp = a.of("start")[0][1]["start"].get("customParameters", {}) if a.of("start") else {}
            results.check("answered: start's customParameters name to, from and realm",
                          cp.get("to") == ANSWER and cp.get("from") == CALLER and cp.get("realm") == REALM, str(cp))
            results.check("answered: the ACK for the 200 reached the trunk", any(e == "ACK" for e, _ in c["events"]),
                          str(c["events"]))
            body = await wait_status(server, placed["id"], {"answered"}, 3)
            results.check("answered: GET /api/v1/calls/ID says answered with sip_code 200",
                          body.get("status") == "answered" and body.get("sip_code") == 200, str(body))
            await uas.send_tone(c, 2.0)
            await asyncio.sleep(0.3)
            media = a.of("media")
            got = b"".join(base64.b64decode(m["media"]["payload"]) for _, m in media[5:])
            f = frequency(got)
            results.check(f"answered: the trunk's {TONE_HZ:.0f} Hz reaches the agent as media (within 2 %)",
                          len(media) >= 80 and abs(f - TONE_HZ) <= TONE_HZ * 0.02, f"{len(media)} media, {f:.1f} Hz")
            uas.bye(next(k for k, v in uas.calls.items() if v is c))
            await asyncio.wait_for(a.done.wait(), 5)
            results.check("answered: the trunk's BYE ends the agent's stream with stop",
                          a.of("stop") and a.closed_at > c["t_bye"], str([m.get("event") for _, m in a.events[-2:]]))
            results.check("answered: every message has Twilio's fields and types", not a.errors, "; ".join(a.errors[:3]))
            body = await wait_status(server, placed["id"], {"completed", "failed"}, 3)
            results.check("answered: then completed, sip_code 200, end reason bye-trunk",
                          body.get("status") == "completed" and body.get("sip_code") == 200
                          and body.get("end_reason") == "bye-trunk", str(body))
        else:
            results.check("answered: the trunk answered and the agent connected", False,
                          f"agent {a is not None}, uas {c is not None and 't_200' in c}")
        c and c.get("rtp") and c["rtp"].transport.close()
    first_answer = next(iter(uas.by_user(ANSWER)), None)

    # L16 (issue 17): "media_format": "l16" gives the agent 16 kHz linear audio.
    before = {id(x) for x in uas.by_user(ANSWER)}
    st, l16, _ = await api_async(server, "POST", "/api/v1/calls", {"realm": REALM, "to": ANSWER, "from": CALLER,
                                                                   "agent": url + "/l16out", "media_format": "l16"})
    if results.check("l16: POST with media_format l16 is 202 and the call says media_format l16",
                     st == 202 and l16.get("media_format") == "l16", f"{st} {l16}"):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (AGENTS.get("l16out") and AGENTS["l16out"][0].of("start")):
            await asyncio.sleep(0.05)
        a = (AGENTS.get("l16out") or [None])[0]
        c = next((x for x in uas.by_user(ANSWER) if id(x) not in before), None)
        if a is not None and c is not None and "media_addr" in c:
            await uas.send_tone(c, 1.5)
            await asyncio.sleep(0.3)
            payloads = [base64.b64decode(m["media"]["payload"]) for _, m in a.of("media")]
            f = frequency_l16(b"".join(payloads[5:]), 16000)
            results.check(f"l16: the agent gets audio/x-l16 16000, 640-byte payloads of the trunk's {TONE_HZ:.0f} Hz",
                          not a.errors and {len(p) for p in payloads} == {640} and abs(f - TONE_HZ) <= TONE_HZ * 0.02,
                          f"{a.errors[:2]} sizes {set(len(p) for p in payloads)}, {f:.1f} Hz")
            uas.bye(next(k for k, v in uas.calls.items() if v is c))
            c.get("rtp") and c["rtp"].transport.close()
        else:
            results.check("l16: the trunk answered and the agent got start", False, f"agent {a is not None}, uas {c is not None}")
        await wait_status(server, l16["id"], {"completed", "failed"}, 3)
    first_answer = list(uas.by_user(ANSWER))   # the calls before the named one

    # Named: the agent's host is a name that only the dnsmasq on loopback knows.
    if dns is not None:
        st, named, _ = await api_async(server, "POST", "/api/v1/calls",
                                       {"realm": REALM, "to": ANSWER, "from": CALLER, "agent": "assistant"})
        if results.check("named: POST naming an agent of [gateway.agents] (its URL has a host name) is 202",
                         st == 202 and named.get("agent", "").startswith(f"ws://{AGENT_NAME}:"), f"{st} {named}"):
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline and not (AGENTS.get("named") and AGENTS["named"][0].of("start")):
                await asyncio.sleep(0.05)
            a = (AGENTS.get("named") or [None])[0]
            queried = AGENT_NAME in (dns_log.read_text(errors="replace") if dns_log.exists() else "")
            results.check(f"named: the agent at {AGENT_NAME} (an A record of the dnsmasq on loopback) gets start",
                          a is not None and bool(a.of("start")) and queried, f"agent {a is not None}, query logged {queried}")
            cp = a.of("start")[0][1]["start"].get("customParameters", {}) if a is not None and a.of("start") else {}
            results.check("named: start carries the table's static parameter (lang = en)", cp.get("lang") == "en", str(cp))
            c = [x for x in uas.by_user(ANSWER) if all(x is not y for y in first_answer)]
            if c:
                uas.bye(next(k for k, v in uas.calls.items() if v is c[0]))
                c[0].get("rtp") and c[0]["rtp"].transport.close()
            body = await wait_status(server, named["id"], {"completed", "failed", "busy", "no-answer"}, 5)
            results.check("named: completed after the trunk's BYE", body.get("status") == "completed", str(body))
    else:
        print(f"SKIP {DNSMASQ} is not installed: agent host names not checked end to end (unit-tested)", flush=True)

    # Busy: 486 comes back as busy; the agent never hears of the call.
    st, busy, _ = await api_async(server, "POST", "/api/v1/calls",
                                  {"realm": REALM, "to": BUSY, "from": CALLER, "agent": url + "/busy"})
    if results.check("busy: POST is 202", st == 202, f"{st} {busy}"):
        body = await wait_status(server, busy["id"], {"busy", "no-answer", "failed", "completed"}, 5)
        results.check("busy: a 486 from the trunk comes back as status busy, sip_code 486",
                      body.get("status") == "busy" and body.get("sip_code") == 486, str(body))
        results.check("busy: the call record's end reason says busy", body.get("end_reason") == "busy", str(body))
        c = next(iter(uas.by_user(BUSY)), None)
        results.check("busy: the UAS's 486 was ACKed", c is not None and any(e == "ACK" for e, _ in c["events"]),
                      str(c and c["events"]))
        results.check("busy: the agent's WebSocket was never opened", not AGENTS.get("busy"), str(AGENTS.get("busy")))

    # Bound: two ringing calls fill agent_outbound_max_calls; the third is 429.
    ids = []
    for i in range(2):
        st, r, _ = await api_async(server, "POST", "/api/v1/calls",
                                   {"realm": REALM, "to": RING, "from": CALLER, "agent": url + f"/ring{i}"})
        if st == 202:
            ids.append(r["id"])
    results.check("bound: two calls to a number that only rings are placed", len(ids) == 2, str(ids))
    st, r, _ = await api_async(server, "POST", "/api/v1/calls",
                               {"realm": REALM, "to": BUSY, "from": CALLER, "agent": url + "/third"})
    results.check("bound: a third call while two are in progress is 429 (gateway.agent_outbound_max_calls = 2)",
                  st == 429 and r.get("parameter") == "realm", f"{st} {r}")
    _, metrics, _ = await api_async(server, "GET", "/metrics")
    results.check("bound: /metrics counts the refused call and two in progress",
                  'turnbridge_gateway_agent_outbound_total{result="refused"} 1' in metrics
                  and "turnbridge_gateway_agent_outbound_active 2" in metrics,
                  " | ".join(ln for ln in metrics.splitlines() if "agent_outbound" in ln and not ln.startswith("#")))
    t0 = time.monotonic()
    bodies = [await wait_status(server, i, {"no-answer", "busy", "failed", "completed"}, RING_TIMEOUT + 5) for i in ids]
    results.check(f"bound: after agent_ring_timeout ({RING_TIMEOUT} s) both come back no-answer",
                  all(b.get("status") == "no-answer" for b in bodies), str([(b.get("status"), b.get("sip_code")) for b in bodies]))
    rings = uas.by_user(RING)
    results.check("bound: the trunk got a CANCEL for each ringing call",
                  len(rings) == 2 and all(any(e == "CANCEL" for e, _ in c["events"]) for c in rings),
                  str([c["events"] for c in rings]))
    st, r, _ = await api_async(server, "POST", "/api/v1/calls",
                               {"realm": REALM, "to": BUSY, "from": CALLER, "agent": url + "/after"})
    results.check("bound: once they ended a new call is accepted again", st == 202, f"{st} {r} after {time.monotonic() - t0:.1f} s")
    if st == 202:
        await wait_status(server, r["id"], {"busy", "failed"}, 5)

    # The call records (accounting flush_interval = 1).
    await asyncio.sleep(2.5)
    _, records, _ = await api_async(server, "GET", f"/api/v1/calls?realm={REALM}")
    records = records if isinstance(records, list) else []
    mine = [x for x in records if x.get("user") == "agent" and x.get("direction") == "outbound"]
    ans = [x for x in mine if x.get("remote") == ANSWER]
    bsy = [x for x in mine if x.get("remote") == BUSY]
    rng = [x for x in mine if x.get("remote") == RING]
    results.check("records: the answered calls: status 200, PCMU/agent (the L16 one PCMU/agent-l16), the trunk's RTP "
                  "counted, end reason bye-trunk",
                  len(ans) >= 1 and all(x.get("status") == 200 and x.get("codecs") in ("PCMU/agent", "PCMU/agent-l16")
                                        and x.get("end_reason") == "bye-trunk" for x in ans)
                  and sum(x.get("codecs") == "PCMU/agent-l16" for x in ans) == 1
                  and max(x.get("trunk_in_bytes", 0) for x in ans) > 0,
                  str([{k: x.get(k) for k in ("status", "codecs", "trunk_in_bytes", "end_reason")} for x in ans]) if ans else "none")
    results.check("records: the busy call: status 486, end reason busy",
                  len(bsy) >= 1 and bsy[0].get("status") == 486 and bsy[0].get("end_reason") == "busy",
                  str([(x.get("status"), x.get("end_reason")) for x in bsy]))
    results.check("records: the ringing calls: end reason no-answer",
                  len(rng) == 2 and all(x.get("end_reason") == "no-answer" for x in rng),
                  str([(x.get("status"), x.get("end_reason")) for x in rng]))
    uas.task.cancel()


async def main(results):
    agent_port = free_port()
    trunk_port = free_port(taken={agent_port})
    dns_port = free_port(taken={agent_port, trunk_port})
    server = OutboundServer(trunk_port, dns_port, agent_port)
    dns, dns_log = None, server.dir / "dnsmasq.log"
    if os.path.exists(DNSMASQ):
        dns = subprocess.Popen([DNSMASQ, "--no-daemon", f"--port={dns_port}", "--listen-address=127.0.0.1",
                                "--bind-interfaces", "--no-resolv", "--no-hosts", "--log-queries",
                                f"--log-facility={dns_log}", f"--host-record={AGENT_NAME},127.0.0.1"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(0.3)
        if dns.poll() is not None:
            results.check("dnsmasq runs on loopback", False, f"exit {dns.returncode}")
            dns = None
    try:
        async with websockets.serve(agent_handler, "127.0.0.1", agent_port, max_size=None):
            server.start()
            try:
                await scenarios(results, server, agent_port, dns, dns_log)
            finally:
                server.stop()
    finally:
        if dns is not None:
            dns.kill()
            dns.wait()


def run(results):
    asyncio.run(main(results))


if __name__ == "__main__":
    main_guard(run)
