# SPDX-License-Identifier: Apache-2.0
"""Call quality on the trunk leg (issue 14, test 6): RTCP toward the trunk and loss, jitter and MOS
in the call record. aiortc is the browser (gateway_aiortc_test.call), sipp the trunk echoing RTP,
and between turnbridge and sipp a lossy UDP proxy written here: sipp's SDP names the proxy's
port (-set rtpport), so turnbridge sends its RTP there; the proxy forwards it to sipp's media
port and the echo back, dropping every 20th echoed packet (exactly 5 %) on the lossy call and none
on the clean one. The proxy also listens on its port + 1 for turnbridge's RTCP (RFC 3550 §11), and
answers each SR with an RR saying 3 % of turnbridge's packets were lost.

Checks: the lossy call's record has trunk_in_loss_pct within 4-6 % and a lower trunk_in MOS than
the clean call's (which loses nothing); turnbridge sent SRs to the trunk's RTP port + 1 with its
CNAME; the proxy's RR shows as trunk_out loss near 3 % with a round trip; the same fields in
`turnbridge report --calls --format json` and the table; /metrics has the MOS histogram and lost
counters.

Run with /usr/bin/python3. Loopback only; free ports; only our own PIDs are killed.
interop-timeout: 120
"""
import asyncio
import json
import socket
import struct
import subprocess
import threading
import time
import urllib.request

from gateway_aiortc_test import SIPP, UAS_SCENARIO, GatewayServer, TOKEN, call, call_records
from harness import BINARY, USER, free_port, main_guard


class LossyProxy:
    """UDP between turnbridge (facing socket `port`) and sipp's media port (from a socket of its
    own). Drops every `every`-th datagram from sipp toward turnbridge (0: none). RTCP arriving on
    `port` + 1 is counted and answered with an RR reporting `rr_loss` of the sender's packets."""

    def __init__(self, sipp_media, every, rr_loss=0.03):
        self.every, self.rr_loss, self.sipp = every, rr_loss, ("127.0.0.1", sipp_media)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        port = free_port(span=2)
        self.front.bind(("127.0.0.1", port))
        self.port = port
        self.rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtcp.bind(("127.0.0.1", port + 1))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.peer = None            # turnbridge's trunk RTP address
        self.to_sipp = self.from_sipp = self.dropped = 0
        self.reports = []           # (packet type, sender packets, CNAME seen) of turnbridge's RTCP
        self.stop = False
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._forward, self._echo, self._rtcp)]
        for t in self.threads:
            t.start()

    def _loop(self, sock, handle):
        sock.settimeout(0.2)
        while not self.stop:
            try:
                data, src = sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            handle(data, src)

    def _forward(self):
        def handle(data, src):
            self.peer = src
            self.to_sipp += 1
            self.back.sendto(data, self.sipp)
        self._loop(self.front, handle)

    def _echo(self):
        def handle(data, src):
            self.from_sipp += 1
            if self.every and self.from_sipp % self.every == 0:
                self.dropped += 1
                return
            if self.peer:
                self.front.sendto(data, self.peer)
        self._loop(self.back, handle)

    def _rtcp(self):
        def handle(data, src):
            if len(data) < 8:
                return
            pt, ssrc = data[1], struct.unpack("!I", data[4:8])[0]
            packets = struct.unpack("!I", data[20:24])[0] if pt == 200 and len(data) >= 28 else 0
            self.reports.append((pt, packets, b"turnbridge" in data))
            if pt != 200:
                return
            # RFC 3550 §6.4.2: an RR with one block about turnbridge's stream; LSR = the middle 32
            # bits of its SR's NTP time, DLSR 0 (answered at once).
            lsr = struct.unpack("!I", data[10:14])[0]
            lost = int(round(packets * self.rr_loss))
            block = struct.pack("!IIIIII", ssrc, (int(self.rr_loss * 256) << 24) | lost, packets, 80, lsr, 0)
            rr = struct.pack("!BBHI", 0x81, 201, (8 + len(block)) // 4 - 1, 0x5150) + block
            self.rtcp.sendto(rr, src)
        self._loop(self.rtcp, handle)

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join(2)
        for s in (self.front, self.rtcp, self.back):
            s.close()


def start_trunk(tb, media, sdp_port):
    """sipp as in gateway_aiortc_test.start_sipp, echoing at `media` but naming `sdp_port` (the
    proxy) in its SDP."""
    return subprocess.Popen([SIPP, "-sf", str(UAS_SCENARIO), "-i", "127.0.0.1", "-p", str(tb.trunk_port),
                             "-mp", str(media), "-rtp_echo", "-set", "rtpport", str(sdp_port),
                             "-set", "hangup_ms", "0", "-m", "1", "-nostdin", "-timeout", "60s",
                             "-timeout_error", "-trace_err", "-error_file", str(tb.dir / "sipp_errors.log")],
                            cwd=tb.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def one_call(r, tb, every, label):
    """One call through a proxy dropping every `every`-th echoed datagram (0: none); returns the
    proxy's counts."""
    media = free_port(span=3)  # sipp -rtp_echo binds it and +2
    proxy = LossyProxy(media, every)
    sipp = start_trunk(tb, media, proxy.port)
    try:
        time.sleep(0.3)
        answered = asyncio.run(asyncio.wait_for(call(r, tb, during=lambda heard: asyncio.sleep(2)), 60))
        r.check(f"{label} call: answered and ended", answered is True)
        try:
            code = sipp.wait(8)
        except subprocess.TimeoutExpired:
            code = "still running"
        r.check(f"{label} call: sipp saw INVITE, ACK and BYE", code == 0, f"exit {code}")
    finally:
        if sipp.poll() is None:
            sipp.kill()
            sipp.wait()
        proxy.close()
    return proxy


def report_calls(tb, fmt):
    out = subprocess.run([str(BINARY), "report", "--calls", "--config", str(tb.config_path), "--user", USER,
                          "--format", fmt], capture_output=True, text=True, timeout=30)
    return out.returncode, out.stdout, out.stderr


def metrics(tb):
    req = urllib.request.Request(f"http://127.0.0.1:{tb.admin_port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


def main(r):
    sipp_port = free_port()
    tb = GatewayServer(sipp_port)
    with tb:
        clean = one_call(r, tb, 0, "clean")
        lossy = one_call(r, tb, 20, "lossy")
        r.check("the proxy dropped 5 % of the echo on the lossy call only",
                clean.dropped == 0 and lossy.dropped > 10 and lossy.dropped == lossy.from_sipp // 20,
                f"clean {clean.dropped}/{clean.from_sipp}, lossy {lossy.dropped}/{lossy.from_sipp}")
        srs = [rep for rep in clean.reports + lossy.reports if rep[0] == 200]
        r.check("turnbridge sent RTCP SRs with its CNAME to the trunk's RTP port + 1 (RFC 3550 §6.4.1, §11)",
                len(srs) >= 2 and all(rep[2] for rep in srs) and all(rep[1] > 0 for rep in srs),
                f"{len(clean.reports)} + {len(lossy.reports)} reports: {(clean.reports + lossy.reports)[:4]}")
        time.sleep(2.5)  # the accounting flush
        st, calls, body = call_records(tb.admin_port)
        calls = sorted(calls, key=lambda c: c.get("start_ms", 0)) if st == 200 else []
        r.check("/api/v1/calls lists both calls", st == 200 and len(calls) == 2, f"{st} {len(calls)} {body[:100]!r}")
        c, l = (calls + [{}, {}])[:2]
        q = lambda rec, leg: {k[len(leg) + 1:]: v for k, v in rec.items()  # noqa: E731
                              if k.startswith(leg + "_") and k.split("_", 2)[-1] in ("lost", "loss_pct", "jitter_ms", "mos")}
        detail = f"clean trunk_in {q(c, 'trunk_in')}, lossy trunk_in {q(l, 'trunk_in')}"
        r.check("clean call: trunk_in loss under 1 % and a MOS above 4",
                c.get("trunk_in_loss_pct") is not None and c["trunk_in_loss_pct"] < 1 and c.get("trunk_in_mos", 0) > 4, detail)
        r.check("lossy call: trunk_in loss 4-6 % (5 % dropped by the proxy)",
                l.get("trunk_in_loss_pct") is not None and 4 <= l["trunk_in_loss_pct"] <= 6, detail)
        r.check("lossy call: trunk_in MOS lower than the clean call's",
                l.get("trunk_in_mos") is not None and c.get("trunk_in_mos") is not None
                and l["trunk_in_mos"] < c["trunk_in_mos"] - 0.2, detail)
        r.check("lossy call: trunk_in jitter measured (ms)", isinstance(l.get("trunk_in_jitter_ms"), (int, float)), detail)
        r.check("the proxy's RR (3 % of turnbridge's packets lost) is the trunk_out quality",
                l.get("trunk_out_loss_pct") is not None and 2 <= l["trunk_out_loss_pct"] <= 4
                and l.get("trunk_out_mos", 5) < c.get("trunk_in_mos", 0),
                f"lossy trunk_out {q(l, 'trunk_out')}")
        r.check("browser_in (aiortc's SRTP stream) is measured with no loss on loopback",
                l.get("browser_in_loss_pct") is not None and l["browser_in_loss_pct"] < 1, f"browser_in {q(l, 'browser_in')}")

        rc, out, err = report_calls(tb, "json")
        rows = sorted(json.loads(out), key=lambda x: x.get("start_ms", 0)) if rc == 0 else []
        r.check("`turnbridge report --calls --format json` has the same quality fields",
                len(rows) == 2 and rows[1].get("trunk_in_loss_pct") == l.get("trunk_in_loss_pct")
                and rows[0].get("trunk_in_mos") == c.get("trunk_in_mos"), f"rc {rc} {err[:200]} {out[:300]}")
        rc, out, err = report_calls(tb, "table")
        r.check("`turnbridge report --calls` table shows loss and MOS columns",
                rc == 0 and "LOSS IN B/T" in out and "MOS IN B/T" in out and "%" in out, out[:600])

        text = metrics(tb)
        mos_count = [line for line in text.splitlines()
                     if line.startswith("turnbridge_gateway_call_mos_count{") and 'leg="trunk",direction="in"' in line]
        lost = [line for line in text.splitlines()
                if line.startswith("turnbridge_gateway_call_rtp_lost_total{") and 'leg="trunk",direction="in"' in line]
        r.check("/metrics: the MOS histogram counts both calls' trunk_in and the lost counter has the lossy call's",
                mos_count and mos_count[0].endswith(" 2") and lost and int(lost[0].rsplit(" ", 1)[1]) >= 10,
                f"{mos_count} {lost}")
        r.check("turnbridge is still running", tb.alive())
        rc = tb.stop()
        r.check("turnbridge exits cleanly on SIGTERM", rc == 0, f"exit {rc}")


if __name__ == "__main__":
    main_guard(main)
