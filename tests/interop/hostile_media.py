#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hostile_test.py cases: a stranger's media toward a live gateway call (issue 11).

- RTP from a stranger to a live call's media ports: aiortc calls through the TURN relay to sipp
  (the trunk, echoing RTP), as in gateway_aiortc_test.py; once the echoed tone is heard,
  127.0.0.3 sends PCMU/RTP and STUN Binding requests to every port of the media range (the
  call's trunk leg and browser leg among them) for several seconds. The echoed tone must keep
  coming back (the trunk still gets the call's audio: its address was not re-learnt from the
  stranger), the stranger must receive nothing (no audio, no ICE answer), the call goes on to
  its BYE, and turnbridge_gateway_media_dropped_total{leg=...,reason="source"} rises on both legs.

Run with /usr/bin/python3 (aiortc, sipp). Loopback only; only our own PIDs are killed.
interop-timeout: 150
"""
import asyncio
import re
import socket
import struct
import subprocess
import threading
import time

from gateway_aiortc_test import TONE_HZ, call, dominant, start_sipp  # the aiortc browser and the sipp trunk
from hostile_common import admin_get, free_port, module_main, stun_binding, wait_for

ATTACKER = "127.0.0.3"
ATTACK_SECONDS = 4.0
ROUND = 0.02            # one packet to every port of the range per 20 ms (2,000 packets/s)


def dropped(server):
    """{leg: count} of turnbridge_gateway_media_dropped_total{reason="source"}; {} if unreadable."""
    status, body = admin_get(server, "/metrics")
    if status != 200:
        return {}
    return {leg.decode(): int(n) for leg, n in re.findall(
        rb'^turnbridge_gateway_media_dropped_total\{leg="(\w+)",reason="source"\} (\d+)$', body, re.M)}


def spray(server, stop, received, counts):
    """PCMU/RTP to each media port every ROUND, a STUN Binding to each every 10th round, from
    ATTACKER; whatever comes back goes to `received`. Bounded by ATTACK_SECONDS * 3."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ATTACKER, 0))
    s.setblocking(False)
    ports = range(server.media_lo, server.media_lo + 40)
    seq, deadline = 0, time.monotonic() + ATTACK_SECONDS * 3
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            t0 = time.monotonic()
            rtp = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160 & 0xFFFFFFFF, 0x0BADF00D) + b"\xff" * 160
            for p in ports:
                for datagram in ([rtp] + ([stun_binding(bytes(12))] if seq % 10 == 0 else [])):
                    try:
                        s.sendto(datagram, ("127.0.0.1", p))
                        counts["sent"] += 1
                    except OSError:
                        pass
            seq += 1
            while True:
                try:
                    data, src = s.recvfrom(4096)
                    received.append((src, len(data)))
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:   # an ICMP error from a port nobody listens on
                    continue
            stop.wait(max(0.0, ROUND - (time.monotonic() - t0)))
    finally:
        s.close()


def stranger_rtp(r, ctx):
    server = ctx.server
    before = dropped(server)
    r.check("/metrics lists turnbridge_gateway_media_dropped_total for both legs before the attack",
            set(before) == {"browser", "trunk"}, f"{before}")
    media_port = free_port(span=3, taken=set(range(server.media_lo, server.media_lo + 40)) | {server.trunk_port})
    sipp = start_sipp(server.dir, server.trunk_port, media_port)
    received, counts = [], {"sent": 0}

    async def under_attack(heard):
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        attacker = threading.Thread(target=spray, args=(server, stop, received, counts), daemon=True)
        attacker.start()
        await asyncio.sleep(0.5)   # the stranger's packets reach the call before anything else
        mark = len(heard)
        await loop.run_in_executor(None, ctx.during)   # the legitimate clients, blocking: off the loop
        left = ATTACK_SECONDS - 0.5
        await asyncio.sleep(max(left, 2.0))
        tail = heard[mark:][-16000:]   # the last 2 s heard under attack
        stop.set()
        await loop.run_in_executor(None, attacker.join, 5)
        hz = dominant(tail, 8000) if len(tail) > 8000 else 0
        r.check(f"under attack, aiortc still hears its {TONE_HZ} Hz tone echoed by the trunk (the trunk gets the call's audio)",
                abs(hz - TONE_HZ) <= 0.02 * TONE_HZ, f"{hz} Hz over {len(tail)} samples; {counts['sent']} datagrams sent by {ATTACKER}")
        r.check(f"{ATTACKER} got nothing back from any media port (no audio, no ICE answer)", not received,
                f"{len(received)} datagrams, first from {received[0][0] if received else None}")

    try:
        time.sleep(0.3)
        answered = asyncio.run(asyncio.wait_for(call(r, server, during=under_attack), 90))
        r.check("the call under attack was answered and ended with BYE", answered is True)
        try:
            code = sipp.wait(8)
        except subprocess.TimeoutExpired:
            code = "still running"
        r.check("sipp (the trunk) saw INVITE, ACK and BYE and exited 0", code == 0, f"exit {code}")
    finally:
        if sipp.poll() is None:
            sipp.kill()
            sipp.wait()
        if ctx.served is None:   # the call failed before the attack: the frame still wants its clients
            ctx.during()
    # Workers post their counters every flush_interval (1 s here).
    after = wait_for(lambda: (d := dropped(server)) and d.get("trunk", 0) > before.get("trunk", 0)
                     and d.get("browser", 0) > before.get("browser", 0) and d, 5.0) or dropped(server)
    r.check("turnbridge_gateway_media_dropped_total{reason=\"source\"} rose on the trunk leg and the browser leg",
            after.get("trunk", 0) > before.get("trunk", 0) and after.get("browser", 0) > before.get("browser", 0),
            f"{before} -> {after}")


CASES = [("RTP from a stranger to a live call's media ports", stranger_rtp)]

if __name__ == "__main__":
    module_main(CASES)
