# SPDX-License-Identifier: Apache-2.0
"""aiortc (Debian's python3-aiortc, a full WebRTC stack: aioice, DTLS, SRTP, Opus) as the browser
against gateway::CallMedia, run by build/tests/unit/gateway/call_media_driver on loopback UDP
sockets with a fake PCMU trunk inside. Checks ICE (aiortc is controlling toward our ICE-lite
agent), DTLS-SRTP, a 1 kHz tone from aiortc reaching the trunk as PCMU, a 600 Hz tone from the
trunk reaching aiortc (as Opus, then as PCMU passthrough), and close_notify on hang-up.

Run with /usr/bin/python3. aioice is limited to 127.0.0.1: nothing leaves loopback.
interop-timeout: 120
"""
import array
import asyncio
import fractions
import math
import subprocess
import sys

import aioice.ice

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # loopback only

import av  # noqa: E402
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription  # noqa: E402

from harness import REPO, main_guard  # noqa: E402

DRIVER = REPO / "build" / "tests" / "unit" / "gateway" / "call_media_driver"
SECONDS = 5


class Tone(MediaStreamTrack):
    """A 1 kHz sine at 48 kHz in 20 ms frames, paced in real time like a microphone."""
    kind = "audio"

    def __init__(self):
        super().__init__()
        self.n = 0
        self.t0 = None

    async def recv(self):
        loop = asyncio.get_event_loop()
        if self.t0 is None:
            self.t0 = loop.time()
        wait = self.t0 + self.n / 48000 - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        pcm = array.array("h", (int(8000 * math.sin(2 * math.pi * 1000 * (self.n + i) / 48000)) for i in range(960)))
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate = 48000
        frame.pts = self.n
        frame.time_base = fractions.Fraction(1, 48000)
        self.n += 960
        return frame


def dominant(x, rate):
    def goertzel(f):
        w = 2 * math.pi * f / rate
        c = 2 * math.cos(w)
        s1 = s2 = 0.0
        for v in x:
            s1, s2 = v + c * s1 - s2, s1
        return s1 * s1 + s2 * s2 - c * s1 * s2
    return max(range(100, 3900, 5), key=goertzel)


async def call(mode):
    pc = RTCPeerConnection()
    pc.addTrack(Tone())
    heard, rate = [], [48000]

    @pc.on("track")
    def on_track(track):
        async def pull():
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                channels = len(frame.layout.channels)
                pcm = array.array("h")
                pcm.frombytes(bytes(frame.planes[0])[: frame.samples * channels * 2])
                heard.extend(pcm[::channels])
                rate[0] = frame.sample_rate
        asyncio.ensure_future(pull())

    await pc.setLocalDescription(await pc.createOffer())
    driver = subprocess.Popen([str(DRIVER), str(SECONDS), mode], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        driver.stdin.write(pc.localDescription.sdp.replace("\r\n", "\n") + "END\n")
        driver.stdin.close()
        answer = ""
        for line in driver.stdout:
            if line.strip() == "END":
                break
            answer += line.rstrip("\n") + "\r\n"
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.sleep(SECONDS - 1)
        ice = pc.iceConnectionState
        connected = pc.connectionState
        await pc.close()  # sends close_notify
        result = driver.stdout.read()
        driver.wait(timeout=10)
    finally:
        if driver.poll() is None:
            driver.kill()
    fields = {}
    for line in result.splitlines():
        if line.startswith("RESULT "):
            head, _, failure = line[len("RESULT "):].partition(" failure=")
            fields = dict(kv.split("=", 1) for kv in head.split())
            fields["failure"] = failure
    step = rate[0] // 8000
    tail = heard[-rate[0]:][::step]  # the last second, at 8 kHz
    return answer, ice, connected, fields, (dominant(tail, 8000) if len(tail) > 4000 else 0)


def main(r):
    r.check("driver built", DRIVER.exists(), str(DRIVER))
    for mode, codecs in (("opus", "opus/PCMU"), ("pcmu", "PCMU/PCMU")):
        answer, ice, connected, fields, browser_hz = asyncio.run(call(mode))
        r.check(f"{mode}: answer is ICE-lite, passive DTLS",
                "a=ice-lite" in answer and "a=setup:passive" in answer)
        r.check(f"{mode}: aiortc ICE completed and DTLS connected", ice == "completed" and connected == "connected",
                f"{ice}/{connected}")
        r.check(f"{mode}: codecs", fields.get("codecs") == codecs, fields.get("codecs", "-"))
        trunk_hz = float(fields.get("trunk_heard_hz", 0))
        r.check(f"{mode}: aiortc's 1 kHz tone reaches the trunk as PCMU (2 %)", abs(trunk_hz - 1000) <= 20,
                f"{trunk_hz:.0f} Hz, rms {fields.get('trunk_rms')}")
        r.check(f"{mode}: the trunk's 600 Hz tone reaches aiortc (2 %)", abs(browser_hz - 600) <= 12,
                f"{browser_hz} Hz")
        r.check(f"{mode}: hang-up closes the media (close_notify)", fields.get("state") == "4",
                f"state {fields.get('state')}: {fields.get('failure')}")


if __name__ == "__main__":
    main_guard(main)
