# SPDX-License-Identifier: Apache-2.0
"""Gateway mode end to end (issue 4) with aiortc (Debian's python3-aiortc) as the browser: a
minimal SIP-over-WebSocket client written here (RFC 6455 on asyncio streams, RFC 7118 framing,
RFC 2617 digest) registers and places a call through turnbridge's gateway; aiortc's media goes
through turnbridge's TURN relay (aiortc has no iceTransportPolicy: it is given no host address,
so its only candidate is the relay one); the trunk is sipp (Debian sip-tester) answering with
PCMU and echoing RTP (-rtp_echo). Checks: REGISTER and INVITE digest rounds, ICE and DTLS
through the relay, aiortc's 1 kHz tone comes back from the echo within 2 %, BYE ends the trunk
leg, and the relay allocation's bytes are accounted under the user (admin API).

Run with /usr/bin/python3. Loopback only; free ports; only our own PIDs are killed.
interop-timeout: 150
"""
import asyncio
import base64
import hashlib
import http.client
import json
import re
import secrets
import subprocess
import time
from pathlib import Path

import aioice.ice

from call_media_aiortc_test import Tone, dominant  # the 1 kHz microphone and the Goertzel peak

# No host address at all: the TURN relay candidate is aiortc's only way out (and it is on
# loopback: the TURN server is 127.0.0.1).
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: []

import av  # noqa: E402
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402

from harness import PASSWORD, REALM, USER, Turnbridge, free_port, main_guard  # noqa: E402
from hostile_common import ws_frame  # noqa: E402

SIPP = "/usr/bin/sipp"
TONE_HZ = 1000       # call_media_aiortc_test.Tone
TOKEN = "t0ken"
OUT_NUMBER = "+15557001"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


# ---------------------------------------------------------------------------------------------
# RFC 6455 client: the opening handshake, masked text frames out, frames in.

class WebSocket:
    def __init__(self):
        self.inbox = asyncio.Queue()
        self.reader = self.writer = None
        self.task = None

    async def connect(self, host, port, path, protocol):
        self.reader, self.writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        self.writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n").encode())
        head = (await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)).decode()
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in head.split("\r\n")[1:] if line)}
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if not head.startswith("HTTP/1.1 101") or headers.get("sec-websocket-accept") != accept:
            raise RuntimeError(f"WebSocket handshake refused: {head.splitlines()[0]}")
        if headers.get("sec-websocket-protocol") != protocol:
            raise RuntimeError(f"WebSocket subprotocol: {headers.get('sec-websocket-protocol')}")
        self.task = asyncio.ensure_future(self._read())

    def _frame(self, opcode, payload):
        return ws_frame(payload, opcode)  # a client masks every frame (RFC 6455 §5.3)

    def send(self, text):
        self.writer.write(self._frame(0x1, text.encode()))

    async def _read(self):
        parts = []
        try:
            while True:
                b0, b1 = await self.reader.readexactly(2)
                n = b1 & 0x7f
                if n == 126:
                    n = int.from_bytes(await self.reader.readexactly(2), "big")
                elif n == 127:
                    n = int.from_bytes(await self.reader.readexactly(8), "big")
                mask = await self.reader.readexactly(4) if b1 & 0x80 else None
                data = await self.reader.readexactly(n)
                if mask:
                    data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
                opcode = b0 & 0x0f
                if opcode == 0x8:   # close: answer it and stop
                    self.writer.write(self._frame(0x8, data[:2]))
                    break
                if opcode == 0x9:   # ping
                    self.writer.write(self._frame(0xA, data))
                    continue
                if opcode in (0x0, 0x1, 0x2):
                    parts.append(data)
                    if b0 & 0x80:
                        await self.inbox.put(b"".join(parts).decode(errors="replace"))
                        parts = []
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        await self.inbox.put(None)

    async def close(self):
        if self.writer:
            try:
                self.writer.write(self._frame(0x8, (1000).to_bytes(2, "big")))
                await asyncio.wait_for(self.writer.drain(), 2)
            except (ConnectionError, asyncio.TimeoutError):
                pass
            self.writer.close()
        if self.task:
            self.task.cancel()


# ---------------------------------------------------------------------------------------------
# SIP over that WebSocket (RFC 7118): requests, responses, digest.

def header(msg, name):
    m = re.search(rf"^{name}:\s*(.*?)\s*$", msg or "", re.I | re.M)
    return m.group(1) if m else ""


def status(msg):
    m = re.match(r"SIP/2\.0 (\d{3})", msg or "")
    return int(m.group(1)) if m else 0


def digest(challenge, method, uri):
    """RFC 2617 qop=auth answer to a WWW-/Proxy-Authenticate challenge."""
    p = {k.lower(): (q if q else v) for k, q, v in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', challenge)}
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    cnonce, nc = secrets.token_hex(6), "00000001"
    ha1, ha2 = md5(f"{USER}:{p['realm']}:{PASSWORD}"), md5(f"{method}:{uri}")
    response = md5(f"{ha1}:{p['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{USER}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
            f'response="{response}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"')


class SipClient:
    def __init__(self, ws):
        self.ws = ws
        self.pending = []
        self.contact = f"sip:{USER}@{secrets.token_hex(4)}.invalid;transport=ws"

    async def wait(self, pred, timeout=5.0):
        for m in self.pending:
            if pred(m):
                self.pending.remove(m)
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                m = await asyncio.wait_for(self.ws.inbox.get(), left)
            except asyncio.TimeoutError:
                return None
            if m is None:
                return None
            if pred(m):
                return m
            if m.startswith(("BYE ", "OPTIONS ")):  # in-dialog requests we may get: answer 200
                self.ws.send(respond(m, 200, "OK"))
            self.pending.append(m)

    def request(self, method, uri, call_id, cseq, from_tag, to, body="", extra=()):
        lines = [f"{method} {uri} SIP/2.0",
                 f"Via: SIP/2.0/WS {secrets.token_hex(4)}.invalid;branch=z9hG4bK{secrets.token_hex(8)}",
                 "Max-Forwards: 70", f"From: <sip:{USER}@{REALM}>;tag={from_tag}", f"To: {to}",
                 f"Call-ID: {call_id}", f"CSeq: {cseq} {method}", f"Contact: <{self.contact}>", *extra]
        if body:
            lines.append("Content-Type: application/sdp")
        lines += [f"Content-Length: {len(body.encode())}", "", body]
        self.ws.send("\r\n".join(lines))

    @staticmethod
    def is_response(call_id, method, final=False):
        return lambda m: (m.startswith("SIP/2.0") and header(m, "Call-ID") == call_id
                          and header(m, "CSeq").endswith(method) and (not final or status(m) >= 200))

    async def register(self):
        """REGISTER, answer the 401; returns (first status, final status)."""
        call_id, tag, uri, to = secrets.token_hex(8), secrets.token_hex(4), f"sip:{REALM}", f"<sip:{USER}@{REALM}>"
        self.request("REGISTER", uri, call_id, 1, tag, to, extra=["Expires: 300"])
        first = await self.wait(self.is_response(call_id, "REGISTER", True))
        if status(first) != 401:
            return status(first), status(first)
        self.request("REGISTER", uri, call_id, 2, tag, to,
                     extra=["Expires: 300", f"Authorization: {digest(header(first, 'WWW-Authenticate'), 'REGISTER', uri)}"])
        return 401, status(await self.wait(self.is_response(call_id, "REGISTER", True)))


def respond(req, code, reason):
    lines = [f"SIP/2.0 {code} {reason}"]
    lines += [line for line in req.split("\r\n") if re.match(r"(Via|From|To|Call-ID|CSeq):", line, re.I)]
    lines += ["Content-Length: 0", "", ""]
    return "\r\n".join(lines)


# The trunk: sipp with pages/gateway_trunk_uas.xml (shared with gateway_call_test.js), answering
# with PCMU at its own media port, echoing RTP there, waiting for our BYE.
UAS_SCENARIO = Path(__file__).resolve().parent / "pages" / "gateway_trunk_uas.xml"


class GatewayServer(Turnbridge):
    """turnbridge with ws_listen/sip_listen, the realm's gateway toward `trunk_port`, accounting
    flushed every second and the admin API."""

    def __init__(self, trunk_port):
        taken = set()
        self.ws_port = free_port(taken=taken)
        taken.add(self.ws_port)
        self.sip_port = free_port(taken=taken)
        taken.add(self.sip_port)
        self.admin_port = free_port(taken=taken)
        taken.add(self.admin_port)
        lo = free_port(span=40, taken=taken | {trunk_port})
        super().__init__(extra_server=(f'ws_listen = ["127.0.0.1:{self.ws_port}"]\n'
                                       f'sip_listen = ["127.0.0.1:{self.sip_port}"]\n'
                                       f'media_ip = "127.0.0.1"\nmedia_ports = "{lo}-{lo + 39}"\n'))
        self.trunk_port = trunk_port

    def write_config(self):
        super().write_config()
        with open(self.config_path, "a") as f:
            f.write(f'\n[realm."{REALM}".gateway]\nenabled = true\n'
                    f'trunk = "sip:127.0.0.1:{self.trunk_port};transport=udp"\ncaller_id = "+15550100"\n'
                    f'codecs = ["opus", "pcmu", "pcma"]\n\n'
                    f'[accounting]\nflush_interval = 1\n\n[admin]\nlisten = "127.0.0.1:{self.admin_port}"\n'
                    f'token = "{TOKEN}"\n')


def admin_json(admin_port, target):
    """GET `target` from the admin API: (status, the JSON body or [], the first bytes of the body)."""
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
    try:
        conn.request("GET", target, headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    return resp.status, (json.loads(body) if resp.status == 200 else []), body[:200]


def usage_bytes(admin_port):
    status, rows, body = admin_json(admin_port, f"/api/v1/usage?by=allocation&user={USER}")
    total = lambda key: sum(row.get(key, 0) for row in rows)  # noqa: E731
    return status, len(rows), total("relay_to_peer_payload_bytes"), total("peer_to_relay_payload_bytes"), body


def call_records(admin_port):
    """The gateway's call records for USER (GET /api/v1/calls)."""
    return admin_json(admin_port, f"/api/v1/calls?user={USER}")


def selected_local_candidate(pc):
    """The local candidate type of aiortc's nominated pair (aioice's Connection)."""
    for t in pc.getTransceivers():
        conn = t.receiver.transport.transport._connection
        for pair in getattr(conn, "_nominated", {}).values():
            return pair.local_candidate.type, f"{pair.local_candidate.host}:{pair.local_candidate.port}", \
                f"{pair.remote_candidate.host}:{pair.remote_candidate.port}"
    return None, "", ""


async def call(r, tb, during=None):
    """One outbound call of aiortc through `tb` to the sipp trunk; `during(heard)`, if given, is
    awaited once the echoed tone has been heard (the samples heard so far are in `heard`, at
    8 kHz), before the BYE. Returns True when the call was answered."""
    ws = WebSocket()
    await ws.connect("127.0.0.1", tb.ws_port, "/sip", "sip")
    r.check("the RFC 6455 client opens a `sip` WebSocket to ws_listen", True)
    sip = SipClient(ws)
    first, final = await sip.register()
    r.check("REGISTER: 401, then 200 with the digest", (first, final) == (401, 200), f"{first} {final}")

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(
        urls=f"turn:127.0.0.1:{tb.port}?transport=udp", username=USER, credential=PASSWORD)]))
    pc.addTrack(Tone())
    heard = []  # what comes back, at 8 kHz mono

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

    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp
    kinds = set(re.findall(r"^a=candidate:\S+ \d+ \S+ \d+ \S+ \d+ typ (\w+)", offer, re.M))
    r.check("aiortc's offer has only a relay candidate", kinds == {"relay"}, f"{sorted(kinds)}")

    uri = f"sip:{OUT_NUMBER}@{REALM}"
    call_id, tag, to = secrets.token_hex(10), secrets.token_hex(4), f"<sip:{OUT_NUMBER}@{REALM}>"
    sip.request("INVITE", uri, call_id, 1, tag, to, body=offer)
    challenge = await sip.wait(sip.is_response(call_id, "INVITE", True))
    r.check("INVITE is challenged with 407", status(challenge) == 407, f"{status(challenge)}")
    sip.request("ACK", uri, call_id, 1, tag, header(challenge, "To"))
    auth = digest(header(challenge, "Proxy-Authenticate"), "INVITE", uri)
    sip.request("INVITE", uri, call_id, 2, tag, to, body=offer, extra=[f"Proxy-Authorization: {auth}"])
    ok = await sip.wait(sip.is_response(call_id, "INVITE", True), 15)
    answer = ok.split("\r\n\r\n", 1)[1] if ok and "\r\n\r\n" in ok else ""
    r.check("the authenticated INVITE is answered 200 with an ICE-lite DTLS-SRTP answer",
            status(ok) == 200 and "a=ice-lite" in answer and "a=fingerprint:" in answer,
            " ".join([(ok or "no answer").split("\r\n")[0], *re.findall(r"^(m=.*|a=rtpmap:.*)$", answer, re.M)[:3]]))
    if status(ok) != 200:
        await pc.close()
        await ws.close()
        return None
    to_tagged = header(ok, "To")
    target = re.search(r"<([^>]+)>", header(ok, "Contact")).group(1)
    sip.request("ACK", target, call_id, 2, tag, to_tagged)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        error = ""
    except ValueError as e:  # the call still ends with BYE below
        error = f"setRemoteDescription: {e}"
    for _ in range(100 if not error else 0):
        if pc.connectionState in ("connected", "failed"):
            break
        await asyncio.sleep(0.1)
    r.check("aiortc: ICE and DTLS connected", pc.connectionState == "connected",
            f"{pc.iceConnectionState}/{pc.connectionState} {error}")
    kind, local, remote = selected_local_candidate(pc)
    r.check("aiortc's nominated pair uses its TURN relay candidate", kind == "relay", f"{kind} {local} -> {remote}")
    heard.clear()
    await asyncio.sleep(4 if not error else 0)
    tail = heard[-16000:]  # the last 2 s
    hz = dominant(tail, 8000) if len(tail) > 8000 else 0
    rms = (sum(v * v for v in tail) / len(tail)) ** 0.5 if tail else 0
    r.check(f"aiortc hears its {TONE_HZ} Hz tone back through the trunk's echo (2 %)", abs(hz - TONE_HZ) <= 0.02 * TONE_HZ,
            f"{hz} Hz, rms {rms:.0f}, {len(heard)} samples (8 kHz) in 4 s")
    if during is not None:
        await during(heard)

    sip.request("BYE", target, call_id, 3, tag, to_tagged)
    bye = await sip.wait(sip.is_response(call_id, "BYE", True))
    r.check("BYE from aiortc's side gets 200", status(bye) == 200, f"{status(bye)}")
    await pc.close()
    await ws.close()
    return True


def start_sipp(work, sipp_port, media_port):
    """sipp as the trunk on 127.0.0.1:`sipp_port` for one call, echoing RTP at `media_port` (it
    binds that port and +2); errors go to `work`/sipp_errors.log."""
    return subprocess.Popen([SIPP, "-sf", str(UAS_SCENARIO), "-i", "127.0.0.1", "-p", str(sipp_port),
                             "-mp", str(media_port), "-rtp_echo", "-set", "rtpport", str(media_port),
                             "-set", "hangup_ms", "0", "-m", "1", "-nostdin", "-timeout", "60s",
                             "-timeout_error", "-trace_err", "-error_file", str(work / "sipp_errors.log")],
                            cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def main(r):
    sipp_port = free_port()
    media_port = free_port(span=3, taken={sipp_port})  # -rtp_echo binds it and +2
    tb = GatewayServer(sipp_port)
    work = tb.dir  # kept for a post-mortem when a check fails (harness.main_guard)
    with tb:
        sipp = start_sipp(work, sipp_port, media_port)
        try:
            time.sleep(0.3)
            asyncio.run(asyncio.wait_for(call(r, tb), 60))
            try:
                code = sipp.wait(8)
            except subprocess.TimeoutExpired:
                code = "still running"
            err = ""
            if code != 0:
                err = (work / "sipp_errors.log").read_text(errors="replace")[-400:] if (work / "sipp_errors.log").exists() else ""
            r.check("sipp (the trunk) saw INVITE, ACK and BYE and exited 0", code == 0, f"exit {code} {err}")
        finally:
            if sipp.poll() is None:
                sipp.kill()
                sipp.wait()
        time.sleep(2.5)
        st, rows, to_gw, from_gw, body = usage_bytes(tb.admin_port)
        # Four seconds and more of audio each way through the allocation (~5 kB/s): over 10 kB.
        r.check(f"accounting: the call's media is accounted both ways under the user \"{USER}\"",
                st == 200 and rows >= 1 and to_gw > 10000 and from_gw > 10000,
                f"{st}, {rows} allocation rows, relay->gateway {to_gw} B, gateway->relay {from_gw} B"
                + ("" if st == 200 else f": {body!r}"))
        # The call's own record: who, how long, which codecs, relayed, bytes on both legs.
        st, calls, body = call_records(tb.admin_port)
        c = calls[0] if len(calls) == 1 else {}
        r.check(f"call record: one outbound call of \"{USER}\", answered (200), relayed, with its codecs",
                st == 200 and len(calls) == 1 and c.get("direction") == "outbound" and c.get("status") == 200
                and c.get("relayed") is True and str(c.get("codecs", "")).endswith("/PCMU")
                and c.get("realm") == REALM,
                f"{st}: {json.dumps(calls)[:400] if st == 200 else body!r}")
        r.check("call record: duration of the answered call and media bytes on both legs",
                c.get("duration_seconds", 0) >= 3 and c.get("browser_in_bytes", 0) > 10000
                and c.get("browser_out_bytes", 0) > 5000 and c.get("trunk_in_bytes", 0) > 10000
                and c.get("trunk_out_bytes", 0) > 10000,
                f"{c.get('duration_seconds')} s, browser in/out {c.get('browser_in_bytes')}/{c.get('browser_out_bytes')} B, "
                f"trunk in/out {c.get('trunk_in_bytes')}/{c.get('trunk_out_bytes')} B")
        r.check("turnbridge is still running", tb.alive())
        rc = tb.stop()
        r.check("turnbridge exits cleanly on SIGTERM", rc == 0, f"exit {rc}")


if __name__ == "__main__":
    main_guard(main)
