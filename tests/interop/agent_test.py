# SPDX-License-Identifier: Apache-2.0
"""AI voice agents over Twilio Media Streams v1 (issue 17).

A test agent written with Python `websockets` checks every message turnbridge sends against the
published Twilio format (connected, start, media, dtmf, mark, stop: field names, and strings
where Twilio sends strings), records what it receives and plays its part of each scenario. First sipp
calls the echo DID and plays a pcap (3 s of tone, then RFC 4733 digits 1 5 #) through a UDP tap
that records what the gateway sends sipp. Then the trunk is a small SIP UAC over UDP in this
process (INVITE with a PCMU + telephone-event offer, ACK, RTP every 20 ms, RFC 4733 events, BYE),
so trunk-side arrival times and the agent's message times come from one clock.

  sipp    connected, start with from/to, 50 +/- 2 media/s of 160-byte payloads, chunk increasing;
          sipp's capture of the echo decodes to sipp's tone within 2 %; its digits arrive as dtmf
  echo    the agent echoes media: 50 +/- 2 media/s of 160-byte payloads, chunk increasing;
          the trunk decodes the echo to its own tone frequency within 2 %
  tone    the agent sends 5 s of 1 kHz in 100 ms: the trunk receives it paced at 20 ms (jitter
          < 5 ms, no loss); a mark after it comes back within 40 ms of its last packet
  clear   the agent clears mid-tone: trunk audio stops within 40 ms, the pending mark returns
  dtmf    RFC 4733 digits from the trunk arrive as dtmf events with the right digits
  hostile garbage JSON is ignored (counted); a flood is bounded (dropped, counted); an oversize
          message ends the call with a BYE to the trunk
  raw     hostile agents below the websockets library (issue 17 hardening): permessage-deflate
          in the upgrade it was not offered (503); a frame header of 2^63 bytes and one of 2^62
          (BYE at once, nothing buffered); a message in endless 1-byte fragments (BYE); a flood
          of 20,000 pings, 500 marks, 50 transfers to nobody and binary frames while the call
          goes on (the call stays up, transfers past 8 ignored, all counted as bad messages)
  refused an agent URL nobody listens on: 503 to the trunk within agent_connect_timeout
  untrusted  agent:wss:// whose certificate the system CA store does not sign: 503
  l16     a realm with agent_media_format = "l16": start.mediaFormat audio/x-l16 16000, 50 +/- 2
          media/s of 640-byte payloads decoding (signed 16-bit little-endian) to the UAC's tone
          within 2 %; the agent's 16 kHz L16 tone reaches the trunk as mu-law of that frequency
Everything is on loopback; the server is stopped by PID at the end.
"""
import asyncio
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
import audioop  # noqa: E402  (Python 3.11: mu-law in the standard library)
import base64
import json
import os
import math
import random
import re
import struct
import time
import urllib.request

import websockets

from harness import REALM, Turnbridge, free_port, main_guard

TOKEN = "agent-test-token"
AGENT_TOKEN = "agent-secret-7f3a"
DIDS = {"+15550171": "echo", "+15550172": "tone", "+15550173": "clear", "+15550174": "dtmf",
        "+15550175": "hostile", "+15550176": "refused", "+15550178": "untrusted"}
TONE_HZ = 440.0
AGENT_TONE_HZ = 1000.0
L16_REALM, L16_DID, L16_TONE_HZ = "l16.example.org", "+15550179", 1250.0


def tone_mulaw(hz, seconds, rate=8000, level=8000):
    n = int(rate * seconds)
    pcm = b"".join(struct.pack("<h", int(level * math.sin(2 * math.pi * hz * i / rate))) for i in range(n))
    return audioop.lin2ulaw(pcm, 2)


def frequency(mulaw):
    """The dominant frequency of mu-law audio at 8 kHz (an FFT peak with parabolic refinement)."""
    return frequency_l16(audioop.ulaw2lin(mulaw, 2), 8000)


def frequency_l16(pcm_le, rate):
    """The dominant frequency of signed 16-bit little-endian PCM at `rate`."""
    import numpy as np
    pcm = np.frombuffer(pcm_le, dtype="<i2").astype(float)
    if len(pcm) < rate // 10:
        return 0.0
    spec = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    k = int(np.argmax(spec[1:])) + 1
    if 1 <= k < len(spec) - 1:
        a, b, c = spec[k - 1], spec[k], spec[k + 1]
        k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return k * rate / len(pcm)


def tone_l16(hz, seconds, rate=16000, level=8000):
    return b"".join(struct.pack("<h", int(level * math.sin(2 * math.pi * hz * i / rate))) for i in range(int(rate * seconds)))


RAW_DIDS = {"+15550181": "raw-deflate", "+15550182": "raw-length63", "+15550183": "raw-length62",
            "+15550184": "raw-fragments", "+15550185": "raw-flood"}


class AgentServer(Turnbridge):
    def __init__(self, trunk_port, agent_port, tls_port=0, raw_port=0):
        self.tls_port, self.raw_port = tls_port, raw_port
        self.sip_port = free_port()
        self.admin_port = free_port(taken={self.sip_port})
        ws_port = free_port(taken={self.sip_port, self.admin_port})
        lo = free_port(span=20, taken={self.sip_port, self.admin_port, ws_port})
        super().__init__(extra_server=(f'sip_listen = ["127.0.0.1:{self.sip_port}"]\n'
                                       f'ws_listen = ["127.0.0.1:{ws_port}"]\n'
                                       f'media_ip = "127.0.0.1"\nmedia_ports = "{lo}-{lo + 19}"\n'
                                       + ('log_level = "debug"\n' if os.environ.get('AGENT_DEBUG') else '')))
        self.trunk_port, self.agent_port = trunk_port, agent_port

    def write_config(self):
        super().write_config()
        (self.dir / "agent.token").write_text(f"Bearer {AGENT_TOKEN}\n")   # a KEY_file secret
        dead = free_port()
        routes = ", ".join(
            f'"{did}" = ["agent:ws://127.0.0.1:{dead if name == "refused" else self.agent_port}/{name}"]'
            if name != "untrusted" else f'"{did}" = ["agent:wss://127.0.0.1:{self.tls_port}/{name}"]'
            for did, name in DIDS.items())
        if self.raw_port:
            routes += "".join(f', "{did}" = ["agent:ws://127.0.0.1:{self.raw_port}/{name}"]' for did, name in RAW_DIDS.items())
        with open(self.config_path, "a") as f:
            f.write(f'\n[realm."{REALM}".gateway]\nenabled = true\n'
                    f'trunk = "sip:127.0.0.1:{self.trunk_port};transport=udp"\n'
                    f'agent_connect_timeout = 2\nagent_playout_frames = 500\n'
                    f'agent_authorization_file = "agent.token"\n'
                    f'routes = {{ {routes} }}\n\n'
                    # Issue 17, L16: a second realm on the same trunk whose agents get 16 kHz L16.
                    f'[realm."{L16_REALM}"]\nusers = {{ l16 = "l16" }}\n\n'
                    f'[realm."{L16_REALM}".gateway]\nenabled = true\n'
                    f'trunk = "sip:127.0.0.1:{self.trunk_port};transport=udp"\n'
                    f'agent_media_format = "l16"\nagent_connect_timeout = 2\n'
                    f'routes = {{ "{L16_DID}" = ["agent:ws://127.0.0.1:{self.agent_port}/l16"] }}\n'
                    f'[realm."{L16_REALM}".gateway.agents]\n'
                    f'ai16 = {{ url = "ws://127.0.0.1:{self.agent_port}/ai16", media_format = "l16" }}\n\n'
                    f'[accounting]\nflush_interval = 1\n\n[admin]\nlisten = "127.0.0.1:{self.admin_port}"\n'
                    f'token = "{TOKEN}"\n')


# ---------------------------------------------------------------------------------------------
# The test agent

class Agent:
    """One Media Streams session as the agent sees it."""

    def __init__(self, l16=False):
        self.l16 = l16
        self.events = []        # (monotonic time, parsed message)
        self.errors = []        # format violations
        self.done = asyncio.Event()

    def check_format(self, m):
        ev = m.get("event")
        def need(cond, what):
            if not cond:
                self.errors.append(f"{ev}: {what}: {json.dumps(m)[:200]}")
        if ev == "connected":
            need(m.get("protocol") == "Call" and m.get("version") == "1.0.0", "protocol Call, version 1.0.0")
            return
        need(isinstance(m.get("sequenceNumber"), str) and m["sequenceNumber"].isdigit(), "sequenceNumber a digit string")
        need(isinstance(m.get("streamSid"), str) and re.fullmatch(r"MZ[0-9a-f]{32}", m["streamSid"]), "streamSid MZ+32 hex")
        if ev == "start":
            s = m.get("start", {})
            need(re.fullmatch(r"AC[0-9a-f]{32}", s.get("accountSid", "")), "start.accountSid")
            need(re.fullmatch(r"CA[0-9a-f]{32}", s.get("callSid", "")), "start.callSid")
            need(s.get("streamSid") == m.get("streamSid"), "start.streamSid")
            need(s.get("tracks") == ["inbound"], "start.tracks")
            need(isinstance(s.get("customParameters"), dict), "start.customParameters")
            want = ({"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1} if self.l16
                    else {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
            need(s.get("mediaFormat") == want, "start.mediaFormat")
        elif ev == "media":
            md = m.get("media", {})
            need(md.get("track") == "inbound", "media.track")
            need(isinstance(md.get("chunk"), str) and md["chunk"].isdigit(), "media.chunk a digit string")
            need(isinstance(md.get("timestamp"), str) and md["timestamp"].isdigit(), "media.timestamp a digit string")
            need(isinstance(md.get("payload"), str), "media.payload")
        elif ev == "dtmf":
            need(m.get("dtmf", {}).get("track") == "inbound_track", "dtmf.track")
            need(isinstance(m.get("dtmf", {}).get("digit"), str), "dtmf.digit")
        elif ev == "mark":
            need(isinstance(m.get("mark", {}).get("name"), str), "mark.name")
        elif ev == "stop":
            need(re.fullmatch(r"AC[0-9a-f]{32}", m.get("stop", {}).get("accountSid", "")), "stop.accountSid")
            need(re.fullmatch(r"CA[0-9a-f]{32}", m.get("stop", {}).get("callSid", "")), "stop.callSid")
        else:
            need(False, "unknown event")

    def of(self, event):
        return [(t, m) for t, m in self.events if m.get("event") == event]


AGENTS = {}   # scenario name -> Agent


async def agent_handler(ws, path=None):
    name = (path or ws.path).strip("/")
    agent = AGENTS.setdefault(name, Agent(l16=name == "l16"))
    agent.authorization = ws.request_headers.get("Authorization")
    sid = None

    async def send(obj):
        await ws.send(json.dumps(obj))

    async def media(audio):
        await send({"event": "media", "streamSid": sid, "media": {"payload": base64.b64encode(audio).decode()}})

    async def play_tone():
        # 5 s of 1 kHz in 100 ms: 50 messages of 100 ms each, 2 ms apart.
        audio = tone_mulaw(AGENT_TONE_HZ, 5.0)
        agent.tone_sent_at = time.monotonic()
        for i in range(0, len(audio), 800):
            await media(audio[i:i + 800])
            await asyncio.sleep(0.002)
        await send({"event": "mark", "streamSid": sid, "mark": {"name": "tone-end"}})

    try:
        async for raw in ws:
            now = time.monotonic()
            m = json.loads(raw)
            agent.events.append((now, m))
            agent.check_format(m)
            ev = m.get("event")
            if ev == "start":
                sid = m["streamSid"]
                if name in ("tone", "clear"):
                    asyncio.ensure_future(play_tone())
                if name == "l16":   # 3 s of 16 kHz L16 in 100 ms messages (3200 bytes), sent at once
                    async def play_l16():
                        audio = tone_l16(L16_TONE_HZ, 3.0)
                        for i in range(0, len(audio), 3200):
                            await media(audio[i:i + 3200])
                    asyncio.ensure_future(play_l16())
                if name == "clear":
                    async def clear_later():
                        await asyncio.sleep(1.5)
                        agent.clear_at = time.monotonic()
                        await send({"event": "clear", "streamSid": sid})
                    asyncio.ensure_future(clear_later())
                if name == "hostile":
                    async def hostile():
                        for bad in ("not json", "{\"event\": 5}", "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
                                    json.dumps({"event": "media", "media": {"payload": "***"}})):
                            await ws.send(bad)
                        # A flood: 30 s of audio at once, over the 10 s bound.
                        audio = bytes([0x55]) * 8000
                        for _ in range(30):
                            await media(audio)
                        await asyncio.sleep(0.5)
                        agent.huge_at = time.monotonic()
                        await ws.send("x" * (300 * 1024))   # over the 256 KiB message bound
                    asyncio.ensure_future(hostile())
            elif ev == "media" and name == "echo":
                await send({"event": "media", "streamSid": sid, "media": {"payload": m["media"]["payload"]}})
            elif ev == "stop":
                break
    except websockets.ConnectionClosed:
        pass
    finally:
        agent.closed_at = time.monotonic()
        agent.done.set()


# ---------------------------------------------------------------------------------------------
# Hostile agents below the websockets library: raw RFC 6455 on a plain asyncio server.

RAW = {}   # name -> {"upgraded": time, "ended": time}


def ws_frame(opcode, payload=b"", fin=True):
    """An unmasked (server) frame, RFC 6455 §5.2."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


async def raw_agent(reader, writer):
    import hashlib
    name = "?"
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        text = head.decode(errors="replace")
        name = text.split(" ", 2)[1].strip("/")
        key = header(text, "Sec-WebSocket-Key")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Accept: {accept}"]
        if name == "raw-deflate":   # RFC 6455 §9.1: an extension the client did not offer
            lines.append("Sec-WebSocket-Extensions: permessage-deflate")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        r = RAW.setdefault(name, {})
        r["upgraded"] = time.monotonic()
        await asyncio.wait_for(reader.read(1), 5)   # `connected` begins: the stream is up
        r["attack_at"] = time.monotonic()
        if name == "raw-length63":
            writer.write(bytes([0x81, 127]) + struct.pack("!Q", 1 << 63))
        elif name == "raw-length62":
            writer.write(bytes([0x81, 127]) + struct.pack("!Q", 1 << 62))
        elif name == "raw-fragments":
            writer.write(ws_frame(0x1, b"{", fin=False))
            for _ in range(200):
                writer.write(ws_frame(0x0, b" ", fin=False))
        elif name == "raw-flood":
            sid = "MZ" + "0" * 32
            writer.write(ws_frame(0x9) * 20000)   # pings, and this agent reads none of the pongs for a while
            for i in range(500):
                writer.write(ws_frame(0x1, json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": f"m{i}"}}).encode()))
            for _ in range(50):
                writer.write(ws_frame(0x1, json.dumps({"event": "transfer", "to": "nobody"}).encode()))
            for _ in range(20):
                writer.write(ws_frame(0x2, b"\x00\x01binary"))
            r["flooded"] = time.monotonic()
        await writer.drain()
        while await reader.read(65536):   # what turnbridge sends, until it closes
            pass
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        RAW.setdefault(name, {})["ended"] = time.monotonic()
        writer.close()


async def raw_scenarios(results, server):
    loop = asyncio.get_running_loop()
    _, sip = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", server.trunk_port))
    did = {name: d for d, name in RAW_DIDS.items()}
    before = metrics(server)

    call = TrunkCall(loop, server, sip, did["raw-deflate"])
    status = await call.invite()
    results.check("raw: an upgrade answered with permessage-deflate (never offered) is refused: 503 to the trunk",
                  status == 503 and "raw-deflate" in RAW, f"status {status}")
    call.close()

    for name, what in (("raw-length63", "a frame header of 2^63 bytes"), ("raw-length62", "a frame header of 2^62 bytes"),
                       ("raw-fragments", "a message in 200 fragments of 1 byte")):
        call = TrunkCall(loop, server, sip, did[name])
        status = await call.invite()
        bye_at = await call.wait_bye(3.0) if status == 200 else None
        at = RAW.get(name, {}).get("attack_at")
        results.check(f"raw: {what} ends the call at once with a BYE to the trunk",
                      status == 200 and bye_at is not None and at is not None and bye_at - at < 1.0,
                      f"status {status}, BYE {'%+.0f ms' % ((bye_at - at) * 1000) if bye_at and at else 'missing'}")
        call.close()

    call = TrunkCall(loop, server, sip, did["raw-flood"])
    status = await call.invite()
    if results.check("raw-flood: answered", status == 200, f"status {status}"):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "flooded" not in RAW.get("raw-flood", {}):
            await asyncio.sleep(0.05)
        bye_at = await call.wait_bye(1.5)
        results.check("raw-flood: 20,000 pings, 500 marks, 50 transfers and binary frames leave the call up", bye_at is None,
                      "BYE came" if bye_at else "")
        after = metrics(server)
        bad = after.get("bad_messages", 0) - before.get("bad_messages", 0)
        results.check("raw-flood: the 42 transfers past 8 and the 20 binary frames count as bad messages", bad >= 62,
                      f"{bad:.0f} more bad messages")
        log = server.log_path.read_text(errors="replace")
        asks = len(re.findall(r"the agent asks to transfer the caller to nobody", log))
        results.check("raw-flood: at most 8 transfer requests per call reach the router (and the log)", 1 <= asks <= 8,
                      f"{asks} logged")
        call.sip.transport.sendto(call.request("BYE", call.to_tag, cseq=2), call.gateway())
    call.close()
    sip.transport.close()


# ---------------------------------------------------------------------------------------------
# The trunk: a SIP UAC over UDP and its RTP

class Udp(asyncio.DatagramProtocol):
    def __init__(self):
        self.queue = asyncio.Queue()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.queue.put_nowait((time.monotonic(), data, addr))


def header(msg, name):
    m = re.search(rf"^{name}:\s*(.*?)\r?$", msg, re.M | re.I)
    return m.group(1) if m else ""


class TrunkCall:
    def __init__(self, loop, server, sip, did):
        self.loop, self.server, self.sip, self.did = loop, server, sip, did
        self.call_id = f"agent-{random.getrandbits(48):x}@127.0.0.1"
        self.tag = f"{random.getrandbits(32):x}"
        self.cseq = 1
        self.rtp = None
        self.received = []   # (time, seq, payload) of RTP from turnbridge
        self.status = None
        self.bye_from_gateway = None

    def gateway(self):
        return ("127.0.0.1", self.server.sip_port)

    def request(self, method, to_tag="", body="", cseq=None):
        tp = self.server.trunk_port
        to = f"<sip:{self.did}@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
        lines = [f"{method} sip:{self.did}@127.0.0.1:{self.server.sip_port} SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:{tp};branch=z9hG4bK{random.getrandbits(40):x};rport",
                 "Max-Forwards: 70", f"From: <sip:+15550100@127.0.0.1>;tag={self.tag}", f"To: {to}",
                 f"Call-ID: {self.call_id}", f"CSeq: {cseq or self.cseq} {method}",
                 f"Contact: <sip:trunk@127.0.0.1:{tp}>"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    async def invite(self, timeout=6.0, pt=0):
        """INVITE offering one G.711 codec (PT 0 PCMU or 8 PCMA) and telephone-event."""
        self.rtp_port = free_port()
        _, self.rtp = await self.loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", self.rtp_port))
        codec = {0: "PCMU", 8: "PCMA"}[pt]
        sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {self.rtp_port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {codec}/8000\r\n"
               "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n")
        self.t_invite = time.monotonic()
        self.sip.transport.sendto(self.request("INVITE", body=sdp), self.gateway())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                t, data, _ = await asyncio.wait_for(self.sip.queue.get(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
            msg = data.decode(errors="replace")
            if header(msg, "Call-ID") != self.call_id:
                continue
            m = re.match(r"SIP/2.0 (\d{3})", msg)
            if not m or int(m.group(1)) < 200:
                continue
            self.status, self.t_final = int(m.group(1)), t
            self.to_tag = re.search(r"tag=([^;>\s]+)", header(msg, "To")).group(1) \
                if "tag=" in header(msg, "To") else ""
            # ACK (RFC 3261 §17.1.1.3 for non-2xx, §13.2.2.4 for 2xx: same CSeq number)
            self.sip.transport.sendto(self.request("ACK", self.to_tag), self.gateway())
            if self.status == 200:
                body = msg.split("\r\n\r\n", 1)[1]
                self.media_addr = (re.search(r"c=IN IP4 (\S+)", body).group(1),
                                   int(re.search(r"m=audio (\d+)", body).group(1)))
                self.pt = int(re.search(r"m=audio \d+ RTP/AVP (\d+)", body).group(1))
                self.reader = asyncio.ensure_future(self.read_rtp())
            return self.status
        return None

    async def read_rtp(self):
        while True:
            t, data, _ = await self.rtp.queue.get()
            if len(data) >= 12:
                self.received.append((t, struct.unpack("!H", data[2:4])[0], data[12:]))

    async def send_audio(self, audio, seconds, pt=0):
        """RTP (PT `pt`: PCMU, or 8 PCMA) at 20 ms from `audio` for `seconds` (paced on the loop's clock)."""
        ssrc, seq, ts = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
        start = time.monotonic()
        n = int(seconds * 50)
        for i in range(n):
            frame = audio[(i * 160) % len(audio):][:160].ljust(160, b"\xff" if pt == 0 else b"\xd5")
            pkt = struct.pack("!BBHII", 0x80, pt, seq, ts, ssrc) + frame
            self.rtp.transport.sendto(pkt, self.media_addr)
            seq, ts = (seq + 1) & 0xFFFF, (ts + 160) & 0xFFFFFFFF
            await asyncio.sleep(max(0, start + (i + 1) * 0.02 - time.monotonic()))

    async def send_dtmf(self, digits):
        codes = {d: i for i, d in enumerate("0123456789*#ABCD")}
        ssrc, seq, ts = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
        for d in digits:
            for k in range(6):   # 3 updates, then the end packet three times (RFC 4733 §2.5.1.4)
                end = k >= 3
                dur = min(k + 1, 4) * 160
                payload = struct.pack("!BBH", codes[d], (0x80 if end else 0) | 10, dur)
                pkt = struct.pack("!BBHII", 0x80, (0x80 if k == 0 else 0) | 101, seq, ts, ssrc) + payload
                self.rtp.transport.sendto(pkt, self.media_addr)
                seq = (seq + 1) & 0xFFFF
                await asyncio.sleep(0.02)
            ts = (ts + 1600) & 0xFFFFFFFF
            await asyncio.sleep(0.1)

    async def bye(self):
        self.cseq += 1
        self.sip.transport.sendto(self.request("BYE", self.to_tag), self.gateway())
        await asyncio.sleep(0.3)

    async def wait_bye(self, timeout):
        """Wait for the gateway's BYE; answer it 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                t, data, addr = await asyncio.wait_for(self.sip.queue.get(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                return None
            msg = data.decode(errors="replace")
            if msg.startswith("BYE ") and header(msg, "Call-ID") == self.call_id:
                resp = ["SIP/2.0 200 OK"] + [ln for ln in msg.split("\r\n")
                                             if re.match(r"(Via|From|To|Call-ID|CSeq):", ln, re.I)]
                self.sip.transport.sendto(("\r\n".join(resp) + "\r\nContent-Length: 0\r\n\r\n").encode(), addr)
                return t
        return None

    def close(self):
        if self.rtp:
            self.rtp.transport.close()
        if getattr(self, "reader", None):
            self.reader.cancel()


def pacing(received):
    """(packets, lost by sequence, RFC 3550 §6.4.1 interarrival jitter in ms, max |inter-arrival -
    20 ms| in ms) of a talkspurt of 20 ms packets."""
    if len(received) < 3:
        return len(received), 0, 999.0, 999.0
    seqs = [s for _, s, _ in received]
    lost = sum(((b - a) & 0xFFFF) - 1 for a, b in zip(seqs, seqs[1:]))
    gaps = [(b[0] - a[0]) * 1000 for a, b in zip(received, received[1:])]
    jitter = 0.0
    for g in gaps:   # J += (|D| - J) / 16, D the transit difference (each packet is 20 ms of media)
        jitter += (abs(g - 20) - jitter) / 16
    return len(received), lost, jitter, max(abs(g - 20) for g in gaps)


# ---------------------------------------------------------------------------------------------

async def scenarios(results, server):
    loop = asyncio.get_running_loop()
    _, sip = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", server.trunk_port))
    did = {name: d for d, name in DIDS.items()}

    # 1. echo (again, from this process's UAC): the message sequence, 50 media/s, the echoed tone.
    AGENTS.pop("echo", None)   # sipp_call's session
    call = TrunkCall(loop, server, sip, did["echo"])
    status = await call.invite()
    results.check("echo: a DID routed to agent:ws:// is answered 200 once the agent's WebSocket is up", status == 200,
                  f"status {status}")
    if status == 200:
        await call.send_audio(tone_mulaw(TONE_HZ, 1.0), 3.0)
        await asyncio.sleep(0.3)
        await call.bye()
        a = AGENTS.get("echo", Agent())
        await asyncio.wait_for(a.done.wait(), 3)
        names = [m.get("event") for _, m in a.events]
        results.check("echo: the agent sees connected, then start, then media, and stop last",
                      names[:2] == ["connected", "start"] and names[-1] == "stop" and "media" in names, str(names[:3]))
        start = a.of("start")[0][1]["start"] if a.of("start") else {}
        cp = start.get("customParameters", {})
        results.check("echo: start carries from, to and realm in customParameters",
                      cp.get("from") == "+15550100" and cp.get("to") == did["echo"] and cp.get("realm") == REALM, str(cp))
        results.check("echo: every message has Twilio's fields and types", not a.errors, "; ".join(a.errors[:3]))
        media = a.of("media")
        sizes = {len(base64.b64decode(m["media"]["payload"])) for _, m in media}
        chunks = [int(m["media"]["chunk"]) for _, m in media]
        seqs = [int(m["sequenceNumber"]) for _, m in a.events if "sequenceNumber" in m]
        results.check("echo: media payloads are 160 bytes (20 ms of mu-law)", sizes == {160}, str(sizes))
        results.check("echo: chunk increases by one from 1, sequenceNumber by one from 1",
                      chunks == list(range(1, len(chunks) + 1)) and seqs == list(range(1, len(seqs) + 1)),
                      f"{chunks[:5]}... {seqs[:5]}...")
        steady = [t for t, _ in media[10:-10]]
        rate = (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 2 else 0
        results.check("echo: 50 +/- 2 media messages per second", abs(rate - 50) <= 2, f"{rate:.2f}/s over {len(media)}")
        got = b"".join(p for _, _, p in call.received[10:])
        f = frequency(got)
        results.check(f"echo: the trunk's capture of the echo decodes to its {TONE_HZ:.0f} Hz within 2 %",
                      abs(f - TONE_HZ) <= TONE_HZ * 0.02, f"{f:.1f} Hz from {len(got)} bytes")
    call.close()

    # 1a. pcma: a trunk that offers PCMA alone (a European carrier; sipp's built-in uac_pcap)
    # reaches the mu-law agent: A-law <-> mu-law both ways, PCMA in the answer.
    AGENTS.pop("echo", None)
    call = TrunkCall(loop, server, sip, did["echo"])
    status = await call.invite(pt=8)
    if results.check("pcma: a PCMA-only offer to a mu-law agent is answered 200 with PCMA (PT 8)",
                     status == 200 and call.pt == 8, f"status {status}, PT {getattr(call, 'pt', None)}"):
        pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * TONE_HZ * i / 8000))) for i in range(8000))
        await call.send_audio(audioop.lin2alaw(pcm, 2), 2.0, pt=8)
        await asyncio.sleep(0.3)
        await call.bye()
        a = AGENTS.get("echo", Agent())
        await asyncio.wait_for(a.done.wait(), 3)
        payloads = [base64.b64decode(m["media"]["payload"]) for _, m in a.of("media")]
        f = frequency(b"".join(payloads[10:]))
        results.check(f"pcma: the agent gets 160-byte mu-law payloads of the trunk's {TONE_HZ:.0f} Hz (2 %)",
                      {len(p) for p in payloads} == {160} and abs(f - TONE_HZ) <= TONE_HZ * 0.02 and not a.errors,
                      f"{f:.1f} Hz from {len(payloads)} messages {a.errors[:2]}")
        back = b"".join(p for _, _, p in call.received[10:])
        f = frequency_l16(audioop.alaw2lin(back, 2), 8000) if back else 0.0
        results.check(f"pcma: the echo comes back to the trunk as A-law of {TONE_HZ:.0f} Hz (2 %)",
                      abs(f - TONE_HZ) <= TONE_HZ * 0.02, f"{f:.1f} Hz from {len(call.received)} packets")
    call.close()

    # 1b. l16: the same over L16 16 kHz, both ways (a realm with agent_media_format = "l16").
    call = TrunkCall(loop, server, sip, L16_DID)
    status = await call.invite()
    if results.check("l16: a DID of a realm with agent_media_format = \"l16\" is answered", status == 200,
                     f"status {status}"):
        await call.send_audio(tone_mulaw(TONE_HZ, 1.0), 3.0)
        await asyncio.sleep(0.3)
        await call.bye()
        a = AGENTS.get("l16", Agent())
        await asyncio.wait_for(a.done.wait(), 3)
        start = a.of("start")[0][1]["start"] if a.of("start") else {}
        results.check("l16: start.mediaFormat is audio/x-l16 at 16000 Hz, one channel; every message in Twilio's shape",
                      start.get("mediaFormat") == {"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1}
                      and not a.errors, f"{start.get('mediaFormat')} {a.errors[:2]}")
        media = a.of("media")
        payloads = [base64.b64decode(m["media"]["payload"]) for _, m in media]
        sizes = {len(p) for p in payloads}
        steady = [t for t, _ in media[10:-10]]
        rate = (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 2 else 0
        results.check("l16: 50 +/- 2 media/s of 640-byte payloads (20 ms of 16 kHz 16-bit)",
                      abs(rate - 50) <= 2 and sizes == {640}, f"{rate:.2f}/s, sizes {sizes}, {len(media)} messages")
        f = frequency_l16(b"".join(payloads[10:]), 16000)
        results.check(f"l16: the payloads decode (signed 16-bit little-endian, 16 kHz) to the trunk's {TONE_HZ:.0f} Hz "
                      "within 2 %", abs(f - TONE_HZ) <= TONE_HZ * 0.02, f"{f:.1f} Hz")
        heard = b"".join(p for _, _, p in call.received[5:])
        f = frequency(heard)
        results.check(f"l16: the agent's 16 kHz L16 tone reaches the trunk as mu-law of {L16_TONE_HZ:.0f} Hz within 2 %",
                      abs(f - L16_TONE_HZ) <= L16_TONE_HZ * 0.02 and len(heard) >= 100 * 160,
                      f"{f:.1f} Hz from {len(call.received)} packets")
    call.close()

    # 2. tone: 5 s sent in 100 ms, paced at 20 ms; the mark after it.
    call = TrunkCall(loop, server, sip, did["tone"])
    status = await call.invite()
    if results.check("tone: answered", status == 200, f"status {status}"):
        await asyncio.sleep(5.6)
        a = AGENTS.get("tone", Agent())
        n, lost, jitter, worst = pacing(call.received)
        sent_in = getattr(a, "tone_sent_at", 0)
        results.check("tone: 5 s of agent audio reaches the trunk as 250 packets, none lost", n == 250 and lost == 0,
                      f"{n} packets, {lost} lost")
        results.check("tone: paced at 20 ms: RFC 3550 interarrival jitter under 5 ms", jitter < 5.0,
                      f"jitter {jitter:.2f} ms, worst inter-arrival {worst:.2f} ms off 20 ms")
        f = frequency(b"".join(p for _, _, p in call.received))
        results.check("tone: the trunk hears the agent's 1000 Hz", abs(f - AGENT_TONE_HZ) <= 20, f"{f:.1f} Hz")
        marks = a.of("mark")
        last = call.received[-1][0] if call.received else 0
        results.check("tone: the mark comes back within 40 ms of its audio's last packet",
                      len(marks) == 1 and marks[0][1]["mark"]["name"] == "tone-end" and abs(marks[0][0] - last) < 0.040,
                      f"{[(m['mark']['name'], round((t - last) * 1000, 1)) for t, m in marks]} ms; sent at +{(sent_in - call.t_final) * 1000:.0f} ms")
        await call.bye()
    call.close()

    # 3. clear: barge-in stops the trunk's audio within 40 ms and returns the pending mark.
    call = TrunkCall(loop, server, sip, did["clear"])
    status = await call.invite()
    if results.check("clear: answered", status == 200, f"status {status}"):
        await asyncio.sleep(2.5)
        a = AGENTS.get("clear", Agent())
        clear_at = getattr(a, "clear_at", None)
        after = [t for t, _, _ in call.received if clear_at and t > clear_at]
        before = [t for t, _, _ in call.received if clear_at and t <= clear_at]
        stop_ms = ((after[-1] - clear_at) * 1000) if after else 0.0
        results.check("clear: trunk audio stops within 40 ms of clear", clear_at and before and stop_ms < 40,
                      f"{len(before)} packets before, {len(after)} after, last +{stop_ms:.1f} ms")
        marks = a.of("mark")
        results.check("clear: the pending mark comes back at the clear",
                      len(marks) == 1 and clear_at and 0 <= marks[0][0] - clear_at < 0.040,
                      f"{[(m['mark']['name'], round((t - (clear_at or 0)) * 1000, 1)) for t, m in marks]}")
        await call.bye()
    call.close()

    # 4. dtmf: RFC 4733 events become dtmf messages.
    call = TrunkCall(loop, server, sip, did["dtmf"])
    status = await call.invite()
    if results.check("dtmf: answered", status == 200, f"status {status}"):
        await call.send_dtmf("15#")
        await asyncio.sleep(0.3)
        await call.bye()
        a = AGENTS.get("dtmf", Agent())
        await asyncio.wait_for(a.done.wait(), 3)
        digits = "".join(m["dtmf"]["digit"] for _, m in a.of("dtmf"))
        results.check("dtmf: RFC 4733 digits 1, 5, # arrive as three dtmf events", digits == "15#", repr(digits))
        results.check("dtmf: the dtmf messages have Twilio's fields", not a.errors, "; ".join(a.errors[:3]))
    call.close()

    # 5. hostile: garbage ignored, a flood bounded, an oversize message ends the call cleanly.
    call = TrunkCall(loop, server, sip, did["hostile"])
    status = await call.invite()
    if results.check("hostile: answered", status == 200, f"status {status}"):
        bye_at = await call.wait_bye(6.0)
        a = AGENTS.get("hostile", Agent())
        results.check("hostile: an oversize agent message ends the call with a BYE to the trunk",
                      bye_at is not None and getattr(a, "huge_at", None) and bye_at - a.huge_at < 1.0,
                      f"BYE {'at +%.0f ms' % ((bye_at - a.huge_at) * 1000) if bye_at and getattr(a, 'huge_at', None) else 'missing'}")
        n = len(call.received)
        results.check("hostile: the flood was bounded (at most 10 s of it played before the end)", n <= 500,
                      f"{n} packets")
    call.close()

    # 6. refused: nobody listens at the agent URL -> 503 within agent_connect_timeout (2 s).
    call = TrunkCall(loop, server, sip, did["refused"])
    status = await call.invite()
    took = (call.t_final - call.t_invite) if status else 99
    results.check("refused: an agent URL that refuses gets 503 to the trunk within 2 s", status == 503 and took < 2.5,
                  f"status {status} after {took:.2f} s")
    call.close()

    # 7. wss with a certificate no CA of the system store signed: TLS fails, 503.
    call = TrunkCall(loop, server, sip, did["untrusted"])
    status = await call.invite()
    results.check("untrusted: agent:wss:// with a self-signed certificate is refused (503), the agent never upgraded",
                  status == 503 and "untrusted" not in AGENTS, f"status {status}")
    call.close()
    sip.transport.close()


def metrics(server):
    req = urllib.request.Request(f"http://127.0.0.1:{server.admin_port}/metrics",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        text = r.read().decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^turnbridge_gateway_agent_events_total\{event="(\w+)"\} (\S+)$', text, re.M)}


# ---------------------------------------------------------------------------------------------
# sipp as the trunk: it calls the echo DID and plays a pcap (3 s of tone, then RFC 4733 digits);
# its SDP names a UDP tap of this process that records what the gateway sends sipp (sipp's
# capture) and forwards it to sipp's media port.

SIPP = "/usr/bin/sipp"
SIPP_DIGITS = "15#"


def write_pcap(path, tone_hz, seconds, digits):
    """Ethernet/IPv4/UDP RTP 20 ms apart: PCMU (PT 0) tone, then RFC 4733 events (PT 101)."""
    packets = []   # (RTP bytes, time in us)
    seq, ts, t = 0, 0, 0
    audio = tone_mulaw(tone_hz, seconds)
    for k in range(0, len(audio), 160):
        packets.append((struct.pack("!BBHII", 0x80, 0x80 if k == 0 else 0, seq, ts, 0x5EED1E55) + audio[k:k + 160], t))
        seq, ts, t = seq + 1, ts + 160, t + 20000
    codes = {d: i for i, d in enumerate("0123456789*#ABCD")}
    for d in digits:
        for k in range(6):   # 3 updates, the end packet 3 times (RFC 4733 §2.5.1.4), one timestamp
            end = k >= 3
            ev = struct.pack("!BBH", codes[d], (0x80 if end else 0) | 10, min(k + 1, 4) * 160)
            packets.append((struct.pack("!BBHII", 0x80, (0x80 if k == 0 else 0) | 101, seq, ts, 0x5EED1E55) + ev, t))
            seq, t = seq + 1, t + 20000
        ts, t = ts + 1600, t + 100000
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for rtp, us in packets:
        udp = struct.pack("!HHHH", 6000, 7000, 8 + len(rtp), 0) + rtp
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                                   bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])))
        csum = sum(struct.unpack("!10H", bytes(ip)))
        while csum > 0xFFFF:
            csum = (csum & 0xFFFF) + (csum >> 16)
        ip[10:12] = struct.pack("!H", ~csum & 0xFFFF)
        frame = bytes(12) + b"\x08\x00" + bytes(ip) + udp
        out.append(struct.pack("<IIII", 1700000000 + us // 1000000, us % 1000000, len(frame), len(frame)) + frame)
    with open(path, "wb") as f:
        f.write(b"".join(out))


SIPP_UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="turnbridge agent test: a trunk calling an agent DID">
  <Global variables="rtpport,did" />
  <send retrans="500"><![CDATA[
INVITE sip:[$did]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15550100@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[$did]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:trunk@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=trunk 1 1 IN IP4 [media_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [$rtpport] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv

]]></send>
  <recv response="100" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15550100@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <nop><action><exec play_pcap_audio="PCAP"/></action></nop>
  <pause milliseconds="4500"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15550100@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


class Tap(asyncio.DatagramProtocol):
    """Records what the gateway sends sipp and forwards it to sipp's media port (bounded)."""

    def __init__(self, sipp_media):
        self.sipp_media, self.got = sipp_media, []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if addr[1] != self.sipp_media and len(self.got) < 5000:
            self.got.append((time.monotonic(), data))
            self.transport.sendto(data, ("127.0.0.1", self.sipp_media))


async def sipp_call(results, server):
    loop = asyncio.get_running_loop()
    work = server.dir
    pcap = work / "tone.pcap"
    write_pcap(pcap, TONE_HZ, 3, SIPP_DIGITS)
    (work / "agent_uac.xml").write_text(SIPP_UAC.replace("PCAP", str(pcap)))   # sipp takes no variable there
    media = free_port(span=4)
    tap_port = free_port(span=2, taken=set(range(media, media + 4)))
    tap_t, tap = await loop.create_datagram_endpoint(lambda: Tap(media), local_addr=("127.0.0.1", tap_port))
    AGENTS.pop("echo", None)
    proc = await asyncio.create_subprocess_exec(
        SIPP, "-sf", str(work / "agent_uac.xml"), "-i", "127.0.0.1", "-p", str(server.trunk_port), "-mp", str(media),
        "-set", "rtpport", str(tap_port), "-set", "did", "+15550171",
        "-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error", f"127.0.0.1:{server.sip_port}",
        cwd=str(work), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        rc = await asyncio.wait_for(proc.wait(), 25)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        tap_t.close()
    results.check("sipp: sipp's call to the agent DID completes (INVITE, 200, ACK, pcap, BYE, 200)", rc == 0, f"exit {rc}")
    a = AGENTS.get("echo", Agent())
    await asyncio.wait_for(a.done.wait(), 3)
    names = [m.get("event") for _, m in a.events]
    cp = a.of("start")[0][1]["start"].get("customParameters", {}) if a.of("start") else {}
    results.check("sipp: the agent sees connected, start with from/to, media, dtmf, stop",
                  names[:2] == ["connected", "start"] and names[-1] == "stop" and cp.get("from") == "+15550100"
                  and cp.get("to") == "+15550171", f"{names[:3]} {cp}")
    results.check("sipp: every message has Twilio's fields and types", not a.errors, "; ".join(a.errors[:3]))
    results.check("sipp: the upgrade carries Authorization from agent_authorization_file",
                  getattr(a, "authorization", None) == f"Bearer {AGENT_TOKEN}", repr(getattr(a, "authorization", None)))
    media_msgs = a.of("media")
    sizes = {len(base64.b64decode(m["media"]["payload"])) for _, m in media_msgs}
    chunks = [int(m["media"]["chunk"]) for _, m in media_msgs]
    steady = [t for t, _ in media_msgs[10:-10]]
    rate = (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 2 else 0
    results.check("sipp: 50 +/- 2 media/s of 160-byte payloads with chunk increasing by one",
                  abs(rate - 50) <= 2 and sizes == {160} and chunks == list(range(1, len(chunks) + 1)),
                  f"{rate:.2f}/s, sizes {sizes}, {len(chunks)} chunks")
    echo = b"".join(d[12:] for _, d in tap.got if len(d) > 12 and (d[1] & 0x7F) == 0)
    f = frequency(echo[1600:])
    results.check(f"sipp: sipp's capture of the echo decodes to its {TONE_HZ:.0f} Hz within 2 %",
                  abs(f - TONE_HZ) <= TONE_HZ * 0.02, f"{f:.1f} Hz from {len(echo)} bytes")
    digits = "".join(m["dtmf"]["digit"] for _, m in a.of("dtmf"))
    results.check("sipp: RFC 4733 digits from sipp arrive as dtmf events with the right digits", digits == SIPP_DIGITS,
                  repr(digits))


def call_records(server):
    req = urllib.request.Request(f"http://127.0.0.1:{server.admin_port}/api/v1/calls?user=agent",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def run(results):
    trunk_port, agent_port, tls_port, raw_port = free_port(), free_port(), free_port(), free_port()

    async def main():
        import ssl
        import tempfile
        from harness import make_cert
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as d:
            cert, key = make_cert(d)
            tls.load_cert_chain(cert, key)
        async with websockets.serve(agent_handler, "127.0.0.1", agent_port, max_size=None), \
                websockets.serve(agent_handler, "127.0.0.1", tls_port, ssl=tls):
            raw = await asyncio.start_server(raw_agent, "127.0.0.1", raw_port)
            with AgentServer(trunk_port, agent_port, tls_port, raw_port) as server:
                await asyncio.wait_for(sipp_call(results, server), 35)
                await asyncio.wait_for(scenarios(results, server), 60)
                await asyncio.wait_for(raw_scenarios(results, server), 30)
                await asyncio.sleep(1.5)   # accounting flush_interval
                rows = call_records(server)
                mine = [r for r in rows if r.get("user") == "agent" and r.get("realm") == REALM]
                answered = [r for r in mine if r.get("status") == 200]
                l16 = [r for r in rows if r.get("realm") == L16_REALM]
                results.check("call records: the L16 agent call's codecs are PCMU/agent-l16",
                              [r.get("codecs") for r in l16] == ["PCMU/agent-l16"], str([r.get("codecs") for r in l16]))
                echo = max(answered, key=lambda r: r.get("trunk_in_bytes", 0), default={})
                results.check("call records: agent calls are call records with codecs PCMU/agent (one PCMA/agent), "
                              "trunk bytes both ways, and the refused one as 503",
                              len(answered) >= 6 and sorted(r.get("codecs") for r in answered)
                              == ["PCMA/agent"] + ["PCMU/agent"] * (len(answered) - 1)
                              and echo.get("trunk_in_bytes", 0) > 0 and echo.get("trunk_out_bytes", 0) > 0
                              and any(r.get("status") == 503 for r in mine),
                              f"{[(r.get('status'), r.get('end_reason'), r.get('trunk_in_bytes'), r.get('trunk_out_bytes')) for r in mine][:6]}")
                mx = metrics(server)
                results.check("/metrics: agent calls, failures, dropped frames and bad messages are counted",
                              mx.get("calls", 0) >= 6 and mx.get("failed", 0) >= 2 and mx.get("frames_dropped", 0) >= 500
                              and mx.get("bad_messages", 0) >= 4, str(mx))
                log = server.log_path.read_text(errors="replace")
                results.check("log: the refused agent and the oversize message are logged with a reason",
                              "agent: call" in log and "cannot connect to the agent" in log and "1009" in log)
                results.check("log: the flood's dropped frames are counted",
                              re.search(r"agent: call \S+ ended .* ([1-9]\d*) dropped", log) is not None)
                # Shutdown with an agent call up: BYE to the trunk, stop to the agent, exit 0.
                loop = asyncio.get_running_loop()
                _, sip = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", server.trunk_port))
                AGENTS.pop("echo", None)
                call = TrunkCall(loop, server, sip, "+15550171")
                status = await call.invite()
                await asyncio.sleep(0.3)
                rc = await loop.run_in_executor(None, server.stop)
                bye = await call.wait_bye(2)
                a = AGENTS.get("echo", Agent())
                await asyncio.wait_for(a.done.wait(), 3)
                last = a.events[-1][1].get("event") if a.events else None
                results.check("shutdown: a live agent call gets BYE to the trunk and stop to the agent; exit 0",
                              status == 200 and rc == 0 and bye is not None and last == "stop",
                              f"status {status}, exit {rc}, BYE {'yes' if bye else 'no'}, last event {last}")
                call.close()
                sip.transport.close()
            raw.close()

    asyncio.run(main())


if __name__ == "__main__":
    main_guard(run)
