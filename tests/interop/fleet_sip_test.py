# SPDX-License-Identifier: Apache-2.0
# interop-timeout: 120
"""Fleet mode (issue 15, must-show 5): SIP location across nodes, and call records in the ledger.

Its own PostgreSQL (fleet_test.Postgres), two gateway nodes: A on 127.0.0.11, B on 127.0.0.12.
aiortc is the browser (gateway_aiortc_test's WebSocket + SIP client, media through A's TURN
relay); it registers on A. A trunk written here (UDP on 127.0.0.1, the realm's trunk) sends the
DID's INVITE to B, which holds no registration: B proxies it to A (fleet_locations in
PostgreSQL, Record-Route), the browser answers, and the trunk's 1 kHz PCMU tone (RTP to the media
address of A's answer) is heard by aiortc. Then:
- the call record of A is in PostgreSQL (`turnbridge report --calls --db postgresql://...`);
- the registration row exists while registered;
- the same user registered on both nodes (aiortc on one, a ringer on the other): the trunk's
  INVITE to B rings both (B is one more branch of its own fork); the aiortc browser answers and
  hears the tone, the other gets the CANCEL: once with A answering (B's local browser CANCELed),
  once with B answering (A's branch CANCELed);
- after `kill -9` of A, the same INVITE to B gets 480 within 3 s.

Run with /usr/bin/python3. Loopback only; free ports; only our own PIDs are killed.
"""
import asyncio
import audioop
import json
import math
import re
import secrets
import socket
import struct
import subprocess
import threading
import time

from gateway_aiortc_test import SipClient, WebSocket, header, respond, status  # patches aioice: relay only
from call_media_aiortc_test import Tone, dominant
from fleet_test import PG_BIN, Node, Postgres
from harness import BINARY, PASSWORD, REALM, USER, free_port, main_guard

import av  # noqa: E402
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402

DID = "+15550177"
TONE_HZ = 1000


class GatewayNode(Node):
    """A fleet node with the gateway: ws, sip and media on its own loopback address."""

    def __init__(self, name, ip, pg, trunk_port):
        super().__init__(name, ip, pg, {USER: PASSWORD})
        self.trunk_port = trunk_port
        taken = {self.port, self.admin_port}
        for attr in ("ws_port", "sip_port"):
            setattr(self, attr, free_port((ip,), taken=taken))
            taken.add(getattr(self, attr))
        self.media_lo = free_port((ip,), span=40, taken=taken)

    def write_config(self):
        self.config_path.write_text(self.config_text(f"""ws_listen = ["{self.ip}:{self.ws_port}"]
sip_listen = ["{self.ip}:{self.sip_port}"]
media_ip = "{self.ip}"
media_ports = "{self.media_lo}-{self.media_lo + 39}"
""", f"""[realm."{REALM}"]
users = {{ {USER} = "{PASSWORD}" }}

[realm."{REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:{self.trunk_port};transport=udp"
caller_id = "+15550100"
codecs = ["opus", "pcmu", "pcma"]

[realm."{REALM}".gateway.routes]
"{DID}" = ["{USER}"]
"""))


def psql(pg, sql):
    out = pg.run("psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "turnbridge", "-d", "postgres", "-At", "-c", sql,
                 check=False)
    return out.stdout.strip()


class Trunk:
    """A UDP SIP UAC on 127.0.0.1 (the realm's trunk) and its RTP socket."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp_port = self.rtp.getsockname()[1]
        self.rtp.settimeout(0.01)

    def invite(self, to, call_id):
        sdp = (f"v=0\r\no=trunk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {self.rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
               f"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
        self.from_tag, self.call_id = secrets.token_hex(4), call_id
        self.branch = "z9hG4bK" + secrets.token_hex(8)
        self.uri = f"sip:{DID}@{to[0]}:{to[1]}"
        msg = (f"INVITE {self.uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{self.port};branch={self.branch};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:+15559990@127.0.0.1>;tag={self.from_tag}\r\n"
               f"To: <sip:{DID}@{to[0]}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
               f"Contact: <sip:trunk@127.0.0.1:{self.port}>\r\nContent-Type: application/sdp\r\n"
               f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
        self.sock.sendto(msg.encode(), to)

    def final(self, timeout):
        """The INVITE's final response (ACKing non-2xx), or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                return None
            m = data.decode(errors="replace")
            if not m.startswith("SIP/2.0") or header(m, "Call-ID") != self.call_id:
                if m.startswith(("BYE ", "UPDATE ", "OPTIONS ")):
                    self.sock.sendto(respond(m, 200, "OK").encode(), src)
                continue
            if status(m) >= 200:
                if status(m) >= 300:
                    ack = (f"ACK {self.uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{self.port};branch={self.branch}\r\n"
                           f"Max-Forwards: 70\r\nFrom: <sip:+15559990@127.0.0.1>;tag={self.from_tag}\r\n"
                           f"To: {header(m, 'To')}\r\nCall-ID: {self.call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
                    self.sock.sendto(ack.encode(), src)
                return m

    def in_dialog(self, method, ok, cseq):
        """ACK or BYE to the 200's Contact, through its Record-Route if any (RFC 3261 §12.2.1.1)."""
        target = re.search(r"<([^>]+)>", header(ok, "Contact")).group(1)
        routes = re.findall(r"<([^>]+)>", ", ".join(re.findall(r"^Record-Route:\s*(.*?)\s*$", ok, re.I | re.M)))
        route_lines = "".join(f"Route: <{r}>\r\n" for r in routes)
        hop = routes[0] if routes else target
        host, port = re.search(r"@([\d.]+):(\d+)", hop).groups()
        msg = (f"{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
               f"Max-Forwards: 70\r\n{route_lines}From: <sip:+15559990@127.0.0.1>;tag={self.from_tag}\r\n"
               f"To: {header(ok, 'To')}\r\nCall-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n")
        self.sock.sendto(msg.encode(), (host, int(port)))

    def tone(self, to, seconds):
        """PCMU 1 kHz toward `to`, 20 ms packets, paced."""
        seq, ts, ssrc = 1, 0, 0x1234abcd
        start = time.monotonic()
        for i in range(int(seconds * 50)):
            pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * TONE_HZ * (ts + k) / 8000)))
                           for k in range(160))
            pkt = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + audioop.lin2ulaw(pcm, 2)
            self.rtp.sendto(pkt, to)
            seq, ts = seq + 1, ts + 160
            try:
                while True:
                    self.rtp.recvfrom(2048)
            except (socket.timeout, BlockingIOError):
                pass
            time.sleep(max(0, start + (i + 1) * 0.02 - time.monotonic()))


async def browser(r, a, registered, state):
    """aiortc registered on node `a`; answers the first INVITE it gets and records what it hears."""
    ws = WebSocket()
    await ws.connect(a.ip, a.ws_port, "/sip", "sip")
    sip = SipClient(ws)
    first, final = await sip.register()
    r.check(f"the browser registers on {a.name} (401, then 200)", (first, final) == (401, 200), f"{first} {final}")
    registered.set()
    invite = await sip.wait(lambda m: m.startswith("INVITE "), 30)
    state["invite"] = invite
    if not invite:
        await ws.close()
        return
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(
        urls=f"turn:{a.ip}:{a.port}?transport=udp", username=USER, credential=PASSWORD)]))
    pc.addTrack(Tone())
    heard = state["heard"]

    @pc.on("track")
    def on_track(track):
        resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)

        async def pull():
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                for out in resampler.resample(frame):
                    heard.extend(out.to_ndarray().reshape(-1).tolist())
        asyncio.ensure_future(pull())

    offer = invite.split("\r\n\r\n", 1)[1]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    answer = pc.localDescription.sdp
    ok = respond(invite, 200, "OK").replace("Content-Length: 0\r\n\r\n", "")
    lines = ok.split("\r\n")
    lines = [(ln + f";tag={secrets.token_hex(4)}" if ln.lower().startswith("to:") and "tag=" not in ln else ln)
             for ln in lines if ln]
    lines += [f"Contact: <{sip.contact}>", "Content-Type: application/sdp", f"Content-Length: {len(answer.encode())}", "",
              answer]
    ws.send("\r\n".join(lines))
    state["answered"] = True
    for _ in range(150):
        if pc.connectionState in ("connected", "failed") or state.get("done"):
            break
        await asyncio.sleep(0.1)
    state["connected"] = pc.connectionState
    while not state.get("done"):
        await asyncio.sleep(0.1)
    await pc.close()
    # The WebSocket stays open: node A is killed with the registration live.
    while not state.get("close"):
        await asyncio.sleep(0.1)
    await ws.close()


async def ringer(node, registered, state):
    """A browser registered on `node` that lets the INVITE ring and records the CANCEL it gets."""
    ws = WebSocket()
    await ws.connect(node.ip, node.ws_port, "/sip", "sip")
    sip = SipClient(ws)
    state["registered"] = await sip.register()
    registered.set()
    invite = await sip.wait(lambda m: m.startswith("INVITE "), 30)
    state["invite"] = invite
    if invite:
        # 180 as JsSIP sends it: a UAC CANCELs only a branch that gave a provisional (RFC 3261 §9.1).
        tag = secrets.token_hex(4)
        tagged = lambda m: "\r\n".join(ln + f";tag={tag}" if ln.lower().startswith("to:") and "tag=" not in ln else ln
                                         for ln in m.split("\r\n"))
        ws.send(tagged(respond(invite, 180, "Ringing")))
        cancel = await sip.wait(lambda m: m.startswith("CANCEL "), 30)
        state["cancel"] = cancel
        if cancel:
            ws.send(respond(cancel, 200, "OK"))
            ws.send(tagged(respond(invite, 487, "Request Terminated")))
    while not state.get("close"):
        await asyncio.sleep(0.1)
    await ws.close()


def both_nodes(r, pg, trunk, a, b, answering):
    """The user on both nodes, aiortc on `answering` and a ringer on the other; the trunk's INVITE
    goes to B, which forks to itself and A: the aiortc browser answers, the ringer is CANCELed."""
    ringing = a if answering is b else b
    ring, local = {}, {"heard": []}
    loop = asyncio.new_event_loop()
    got_ringer, got_local = threading.Event(), threading.Event()

    async def both():
        await asyncio.gather(ringer(ringing, got_ringer, ring), browser(r, answering, got_local, local))
    thread = threading.Thread(target=lambda: loop.run_until_complete(both()), daemon=True)
    thread.start()
    try:
        r.check(f"a ringer registers on {ringing.name} and aiortc on {answering.name}", got_ringer.wait(20) and got_local.wait(20),
                str(ring.get("registered")))
        aor = f"{USER}@{REALM}"
        nodes = ""
        for _ in range(50):
            nodes = psql(pg, f"SELECT string_agg(DISTINCT node, ',' ORDER BY node) FROM fleet_locations WHERE aor = '{aor}'")
            if nodes == "node-a,node-b":
                break
            time.sleep(0.1)
        r.check("fleet_locations holds the user on both nodes", nodes == "node-a,node-b", repr(nodes))
        time.sleep(1.5)  # B's snapshot of the other nodes' registrations
        trunk.invite(("127.0.0.12", b.sip_port), "fork-" + secrets.token_hex(6))
        ok = trunk.final(20)
        r.check(f"both ring: the browsers on {ringing.name} and {answering.name} get the INVITE",
                bool(ring.get("invite")) and bool(local.get("invite")),
                f"ringer {bool(ring.get('invite'))}, aiortc {bool(local.get('invite'))}")
        for _ in range(20):  # the browser thread marks its answer just after sending it
            if local.get("answered"):
                break
            time.sleep(0.1)
        r.check(f"the trunk's INVITE to B is answered 200 by the browser on {answering.name}", status(ok) == 200 and local.get("answered"),
                (ok or "no answer").split("\r\n")[0])
        if status(ok) != 200:
            return
        trunk.in_dialog("ACK", ok, 1)
        for _ in range(100):
            if ring.get("cancel"):
                break
            time.sleep(0.1)
        r.check(f"the ringing browser on {ringing.name} gets a CANCEL (the first answer wins)", bool(ring.get("cancel")),
                (ring.get("cancel") or "none").split("\r\n")[0])
        body = ok.split("\r\n\r\n", 1)[1]
        c = re.search(r"^c=IN IP4 (\S+)", body, re.M).group(1)
        port = int(re.search(r"^m=audio (\d+)", body, re.M).group(1))
        r.check(f"the media answer is {answering.name}'s (it bridges the media)", c == answering.ip, f"{c}:{port}")
        for _ in range(100):
            if local.get("connected"):
                break
            time.sleep(0.1)
        local["heard"].clear()
        trunk.tone((c, port), 4)
        tail = local["heard"][-16000:]
        hz = dominant(tail, 8000) if len(tail) > 8000 else 0
        r.check(f"the browser on {answering.name} hears the trunk's {TONE_HZ} Hz tone (2 %)", abs(hz - TONE_HZ) <= 0.02 * TONE_HZ,
                f"{hz} Hz, {len(local['heard'])} samples, {local.get('connected')}")
        trunk.in_dialog("BYE", ok, 2)
        time.sleep(0.5)
    finally:
        local["done"] = local["close"] = ring["close"] = True
        thread.join(10)


async def register_and_close(pg, node):
    """(row seen as the node's, row gone within 3 s of closing the WebSocket)."""
    ws = WebSocket()
    await ws.connect(node.ip, node.ws_port, "/sip", "sip")
    sip = SipClient(ws)
    await sip.register()
    aor = f"{USER}@{REALM}"
    query = f"SELECT count(*) FROM fleet_locations WHERE aor = '{aor}' AND node = '{node.name}'"
    seen = gone = False
    for _ in range(40):
        if psql(pg, query) == "1":
            seen = True
            break
        await asyncio.sleep(0.1)
    await ws.close()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0:
        if psql(pg, query) == "0":
            gone = True
            break
        await asyncio.sleep(0.1)
    return seen, gone


def test(r):
    if PG_BIN is None:
        r.check("PostgreSQL is installed (/usr/lib/postgresql/*/bin)", False)
        return
    pg = Postgres().init()
    trunk = Trunk()
    a = GatewayNode("node-a", "127.0.0.11", pg, trunk.port)
    b = GatewayNode("node-b", "127.0.0.12", pg, trunk.port)
    loop_thread = None
    state = {"heard": []}
    try:
        a.start()
        b.start()
        registered = threading.Event()
        loop = asyncio.new_event_loop()
        loop_thread = threading.Thread(target=lambda: loop.run_until_complete(browser(r, a, registered, state)),
                                       daemon=True)
        loop_thread.start()
        r.check("browser registered", registered.wait(20))
        aor = f"{USER}@{REALM}"
        row = ""
        for _ in range(50):
            row = psql(pg, f"SELECT node FROM fleet_locations WHERE aor = '{aor}'")
            if row:
                break
            time.sleep(0.1)
        r.check("the registration is in PostgreSQL's fleet_locations as node A's", row == "node-a", repr(row))
        time.sleep(1.5)  # B's snapshot of the other nodes' registrations is refreshed every second

        trunk.invite(("127.0.0.12", b.sip_port), "fleet-" + secrets.token_hex(6))
        ok = trunk.final(20)
        r.check("the trunk's INVITE to node B is answered 200 by the browser on node A",
                status(ok) == 200 and bool(state.get("invite")), (ok or "no answer").split("\r\n")[0])
        if status(ok) == 200:
            r.check("node B Record-Routes the dialog", f"fleet@127.0.0.12:{b.sip_port}" in ok,
                    header(ok, "Record-Route"))
            trunk.in_dialog("ACK", ok, 1)
            body = ok.split("\r\n\r\n", 1)[1]
            c = re.search(r"^c=IN IP4 (\S+)", body, re.M).group(1)
            port = int(re.search(r"^m=audio (\d+)", body, re.M).group(1))
            r.check("the media answer is node A's (the owner bridges the media)", c == a.ip, f"{c}:{port}")
            for _ in range(100):
                if state.get("connected"):
                    break
                time.sleep(0.1)
            r.check("aiortc: ICE and DTLS connected to node A", state.get("connected") == "connected",
                    str(state.get("connected")))
            state["heard"].clear()
            trunk.tone((c, port), 4)
            tail = state["heard"][-16000:]
            hz = dominant(tail, 8000) if len(tail) > 8000 else 0
            r.check(f"the browser hears the trunk's {TONE_HZ} Hz tone (2 %)", abs(hz - TONE_HZ) <= 0.02 * TONE_HZ,
                    f"{hz} Hz, {len(state['heard'])} samples")
            trunk.in_dialog("BYE", ok, 2)
            time.sleep(0.5)
        state["done"] = True

        # The call record reaches the fleet ledger.
        calls = []
        for _ in range(40):
            out = subprocess.run([str(BINARY), "report", "--calls", "--db", pg.url, "--format", "json"],
                                 capture_output=True, text=True, timeout=30)
            try:
                calls = json.loads(out.stdout or "[]")
            except ValueError:
                calls = []
            if isinstance(calls, dict):
                calls = calls.get("calls", [])
            if calls:
                break
            time.sleep(0.25)
        inbound = [c for c in calls if c.get("direction") == "inbound" and c.get("status") == 200]
        r.check("`report --calls --db postgresql://` lists node A's answered inbound call", len(inbound) == 1,
                json.dumps(calls)[:300])
        r.check("the trunk's BYE reached node A through B's Record-Route (end reason bye-trunk)",
                len(inbound) == 1 and inbound[0].get("end_reason") == "bye-trunk",
                inbound[0].get("end_reason") if inbound else "")
        # Issue 14: the trunk's name travels with the record (fleet_calls.trunk, PG schema 4).
        r.check("the fleet ledger's call record names its trunk (\"default\", the single-trunk form)",
                len(inbound) == 1 and inbound[0].get("trunk") == "default",
                str(inbound[0].get("trunk")) if inbound else "")

        # A registration's row goes when its WebSocket closes (a second browser, on node B).
        gone = asyncio.run(register_and_close(pg, b))
        r.check("a registration's row is written, then removed within 3 s of its WebSocket closing", gone[0] and gone[1],
                f"seen {gone[0]}, removed {gone[1]}")

        # The user on both nodes: B is a branch of its own fork; the remote answer wins, then the local one.
        both_nodes(r, pg, trunk, a, b, answering=a)
        both_nodes(r, pg, trunk, a, b, answering=b)

        # kill -9 of the owner: B answers the same INVITE with 480 within 3 s.
        a.kill9()
        t0 = time.monotonic()
        trunk.invite(("127.0.0.12", b.sip_port), "fleet-" + secrets.token_hex(6))
        final = trunk.final(6)
        took = time.monotonic() - t0
        r.check("after kill -9 of node A, the INVITE to B gets 480 within 3 s", status(final) == 480 and took <= 3.0,
                f"{(final or 'no answer').splitlines()[0]} after {took:.2f} s")
        r.check("node B is still up", b.alive())
    finally:
        state["done"] = state["close"] = True
        if loop_thread:
            loop_thread.join(5)
        for n in (a, b):
            n.stop()
        pg.destroy()


if __name__ == "__main__":
    main_guard(test)
