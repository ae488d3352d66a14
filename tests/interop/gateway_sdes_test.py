# SPDX-License-Identifier: Apache-2.0
"""SDES-SRTP on the trunk leg (issue 14, test 3): Kamailio (Debian, tls and rtpengine modules) and
rtpengine (Debian rtpengine-daemon, userspace only) are a secure carrier in front of sipp.
turnbridge reaches Kamailio over TLS (a certificate this test makes) with srtp = "required";
Kamailio has rtpengine turn the RTP/SAVP + a=crypto (RFC 4568) offer into plain RTP/AVP toward
sipp (UAS, -rtp_echo) and answer with its own key. aiortc (the browser, through turnbridge's TURN
relay) sends a 1 kHz tone; it must come back within 2 %. A raw packet socket on lo captures the
trunk leg (turnbridge <-> rtpengine): every packet is SRTP (80-bit auth tag, payload that is no
PCMU tone), while the rtpengine <-> sipp leg, captured the same way, carries the tone in clear
(so the capture could see a clear tone if there were one). Then a number that Kamailio sends to
sipp without rtpengine: sipp answers without a=crypto, turnbridge hangs up (BYE), the browser gets
488, the call record says why, and no RTP ever leaves turnbridge toward sipp. Last, srtp =
"optional" (RFC 8643 RTP/AVP with a=crypto): SRTP with rtpengine (OSRTP-accept), plain RTP with
sipp alone, the tone back both times.

Run with /usr/bin/python3 as root (the packet capture). Loopback only; free ports; only our own
PIDs are killed.
interop-timeout: 150
"""
import asyncio
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop   # Python 3.11 (Debian 12); mu-law decoding of the captured payloads
import json
import os
import re
import secrets
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import gateway_aiortc_test as aiortc_test
from gateway_aiortc_test import (OUT_NUMBER, UAS_SCENARIO, GatewayServer, SipClient, WebSocket, call, call_records,
                                 digest, header, status)
from call_media_aiortc_test import dominant
from harness import REALM, USER, Turnbridge, free_port, main_guard
from hostile_sip import invite_bytes   # an INVITE to +15550177 with a plain RTP/AVP offer

from aiortc import RTCPeerConnection  # noqa: E402  (after gateway_aiortc_test's aioice patch)

SIPP = "/usr/bin/sipp"
KAMAILIO = "/usr/sbin/kamailio"
RTPENGINE = "/usr/bin/rtpengine"
CLEAR_NUMBER = "+15557002"   # Kamailio sends it to sipp without rtpengine: an answer without keys
TONE_HZ = 1000


def kamailio_modules():
    for d in ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/kamailio/modules",
              "/usr/lib/kamailio/modules", "/usr/lib64/kamailio/modules"):
        if (Path(d) / "tls.so").exists() and (Path(d) / "rtpengine.so").exists():
            return d
    return None


def kamailio_config(modules, tls_port, ng_port, sipp_port, tls_cfg):
    """TLS toward turnbridge, UDP toward sipp; OUT_NUMBER's media through rtpengine, RTP/SAVP with
    SDES on turnbridge's side and RTP/AVP on sipp's; CLEAR_NUMBER straight to sipp."""
    return f"""#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
enable_tls=yes
onsend_route_reply=yes
listen=udp:127.0.0.1:{tls_port}
listen=tls:127.0.0.1:{tls_port}
loadpath "{modules}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "tls.so"
loadmodule "rtpengine.so"
modparam("tls", "config", "{tls_cfg}")
modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:{ng_port}")

request_route {{
    xlog("L_NOTICE", "KAM $rm $ru from $proto:$si:$sp\\n");
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
    if (is_method("INVITE") && !has_totag()) {{
        if ($rU == "{OUT_NUMBER}") {{
            rtpengine_offer("transport-protocol=RTP/AVP OSRTP-accept replace-origin replace-session-connection");
            t_on_reply("SDES");
        }}
        $du = "sip:127.0.0.1:{sipp_port};transport=udp";
        t_relay();
        exit;
    }}
    if (is_method("BYE")) rtpengine_delete();
    t_relay();
}}

onreply_route[SDES] {{
    if (has_body("application/sdp")) rtpengine_answer("replace-origin replace-session-connection");
}}

# What leaves toward turnbridge over TLS, after rtpengine's changes (the log is the test's view).
onsend_route {{
    if ($snd(proto) == 3 && $snd(buf) =~ "a=crypto") xlog("L_NOTICE", "KAM answer toward turnbridge: $snd(buf)\\n");
}}
"""


def certificate(d):
    key, cert = d / "trunk-key.pem", d / "trunk.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost/O=trunk", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return key, cert


def children_of(pid):
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def tcp_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False


class Capture:
    """UDP datagrams on lo (AF_PACKET, root) between two port ranges, in a thread, bounded in
    count and time: (src port, dst port, UDP payload)."""

    def __init__(self, a_ports, b_ports, limit=20000):
        self.a, self.b, self.limit = a_ports, b_ports, limit
        self.packets = []
        self.stop_at = time.monotonic() + 60
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))   # ETH_P_ALL
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while time.monotonic() < self.stop_at and len(self.packets) < self.limit:
            try:
                frame, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] == socket.PACKET_OUTGOING or len(frame) < 14 + 28:
                continue   # lo shows each datagram twice: keep the delivered copy
            ip = frame[14:]
            if ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 15) * 4
            sport, dport, length = struct.unpack("!HHH", ip[ihl:ihl + 6])
            if (sport in self.a and dport in self.b) or (sport in self.b and dport in self.a):
                self.packets.append((sport, dport, bytes(ip[ihl + 8:ihl + length])))

    def close(self):
        self.stop_at = 0
        self.thread.join(2)
        self.sock.close()


def rtp_payloads(packets, src_ports, dst_ports, pt=0):
    """(sizes, payloads) of RTP packets with payload type `pt` from one range to the other."""
    sizes, payloads = [], []
    for s, d, b in packets:
        if s in src_ports and d in dst_ports and len(b) >= 12 and b[0] >> 6 == 2 and (b[1] & 0x7f) == pt:
            sizes.append(len(b))
            payloads.append(b[12:])
    return sizes, payloads


def tone_in(payloads, count=25):
    """The dominant frequency of `count` packets' 160 bytes decoded as PCMU, from the middle."""
    mid = payloads[len(payloads) // 2:len(payloads) // 2 + count]
    pcm = audioop.ulaw2lin(b"".join(p[:160] for p in mid), 2)
    samples = [int.from_bytes(pcm[i:i + 2], "little", signed=True) for i in range(0, len(pcm), 2)]
    return dominant(samples, 8000) if samples else 0


class SdesServer(GatewayServer):
    """GatewayServer toward Kamailio over TLS with srtp = "required"."""

    def __init__(self, tls_port, ca):
        self.ca = ca
        self.srtp = "required"
        super().__init__(tls_port)

    def write_config(self):
        Turnbridge.write_config(self)
        with open(self.config_path, "a") as f:
            f.write(f'\n[realm."{REALM}".gateway]\nenabled = true\n'
                    f'trunk = "sips:127.0.0.1:{self.trunk_port}"\ntrunk_ca = "{self.ca}"\nsrtp = "{self.srtp}"\n'
                    f'caller_id = "+15550100"\ncodecs = ["opus", "pcmu", "pcma"]\n'
                    f'[realm."{REALM}".gateway.routes]\n"+15550177" = ["{USER}"]\n\n'
                    f'[accounting]\nflush_interval = 1\n\n[admin]\nlisten = "127.0.0.1:{self.admin_port}"\n'
                    f'token = "t0ken"\n'
                    # A UDP trunk with srtp on: its keys would cross the network in clear SIP.
                    f'\n[realm."plain.example"]\nusers = {{ u = "p" }}\n[realm."plain.example".gateway]\n'
                    f'enabled = true\ntrunk = "sip:127.0.0.1:9;transport=udp"\nsrtp = "optional"\n')

    def media_range(self):
        m = re.search(r'media_ports = "(\d+)-(\d+)"', self.config_path.read_text())
        return range(int(m.group(1)), int(m.group(2)) + 1)


def start_sipp(work, sipp_port, media_port, name):
    return subprocess.Popen([SIPP, "-sf", str(UAS_SCENARIO), "-i", "127.0.0.1", "-p", str(sipp_port),
                             "-mp", str(media_port), "-rtp_echo", "-set", "rtpport", str(media_port),
                             "-set", "hangup_ms", "0", "-m", "1", "-nostdin", "-timeout", "40s",
                             "-timeout_error", "-trace_err", "-error_file", str(work / f"sipp_{name}.log")],
                            cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def inbound_without_keys(tb):
    """With the browser registered, the trunk's address (127.0.0.1) offers plain RTP/AVP over UDP:
    (the final status it gets, whether the browser was rung)."""
    ws = WebSocket()
    await ws.connect("127.0.0.1", tb.ws_port, "/sip", "sip")
    sip = SipClient(ws)
    await sip.register()

    def exchange():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            u.settimeout(0.5)
            u.sendto(invite_bytes("127.0.0.1", u.getsockname()[1], secrets.token_hex(8)), ("127.0.0.1", tb.sip_port))
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    m = u.recv(65535).decode(errors="replace")
                except socket.timeout:
                    continue
                if status(m) >= 200:
                    return status(m)
        return None
    final = await asyncio.to_thread(exchange)
    rung = await sip.wait(lambda m: m.startswith("INVITE "), 1.0)
    await ws.close()
    return final, rung is not None


async def refused_call(r, tb):
    """An INVITE to CLEAR_NUMBER (sipp answers without keys): the browser's final answer."""
    ws = WebSocket()
    await ws.connect("127.0.0.1", tb.ws_port, "/sip", "sip")
    sip = SipClient(ws)
    await sip.register()
    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp
    uri, call_id, tag = f"sip:{CLEAR_NUMBER}@{REALM}", secrets.token_hex(10), secrets.token_hex(4)
    to = f"<sip:{CLEAR_NUMBER}@{REALM}>"
    sip.request("INVITE", uri, call_id, 1, tag, to, body=offer)
    challenge = await sip.wait(sip.is_response(call_id, "INVITE", True))
    sip.request("ACK", uri, call_id, 1, tag, header(challenge, "To"))
    auth = digest(header(challenge, "Proxy-Authenticate"), "INVITE", uri)
    sip.request("INVITE", uri, call_id, 2, tag, to, body=offer, extra=[f"Proxy-Authorization: {auth}"])
    final = await sip.wait(sip.is_response(call_id, "INVITE", True), 15)
    if final is not None and status(final) >= 300:
        sip.request("ACK", uri, call_id, 2, tag, header(final, "To"))
    await pc.close()
    await ws.close()
    return status(final) if final else None


def main(r):
    modules = kamailio_modules()
    have = modules is not None and Path(KAMAILIO).exists() and Path(RTPENGINE).exists()
    r.check("kamailio (tls, rtpengine modules) and rtpengine are installed (scripts/setup)", have)
    if not have:
        return
    r.check("running as root (the trunk leg is captured with a raw packet socket)", os.geteuid() == 0)
    if os.geteuid() != 0:
        return
    taken = set()

    def pick(span=1):
        p = free_port(span=span, taken=taken)
        taken.update(range(p, p + span))
        return p

    kam_port, ng_port, sipp_port = pick(), pick(), pick()
    media_port = pick(3)            # sipp -rtp_echo binds it and +2
    rtp_lo = pick(20)               # rtpengine's media ports
    rtpengine_ports = range(rtp_lo, rtp_lo + 20)
    sipp_media = range(media_port, media_port + 3)
    key, cert = None, None
    procs = []
    tb = None
    try:
        tb = SdesServer(kam_port, "")
        work = tb.dir
        key, cert = certificate(work)
        tb.ca = str(cert)
        tls_cfg = work / "tls.cfg"
        tls_cfg.write_text(f"[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
                           f"private_key = {key}\ncertificate = {cert}\n\n[client:default]\nmethod = TLSv1.2+\n"
                           f"verify_certificate = no\nrequire_certificate = no\n")
        (work / "kamailio.cfg").write_text(kamailio_config(modules, kam_port, ng_port, sipp_port, tls_cfg))
        (work / "run").mkdir()
        # rtpengine in userspace only (no kernel table), foreground, its own pidfile; no config file.
        rtp_log = open(work / "rtpengine.log", "wb")
        rtpengine = subprocess.Popen([RTPENGINE, "--config-file=none", "--table=-1", "--foreground", "--log-stderr",
                                      "--interface=127.0.0.1", f"--listen-ng=127.0.0.1:{ng_port}",
                                      f"--port-min={rtp_lo}", f"--port-max={rtp_lo + 19}", "--log-level=6", "--log-level-crypto=7",
                                      f"--pidfile={work / 'rtpengine.pid'}"],
                                     stdin=subprocess.DEVNULL, stdout=rtp_log, stderr=subprocess.STDOUT, cwd=work)
        procs.append(rtpengine)
        kam_log = open(work / "kamailio.log", "wb")
        kam = subprocess.Popen([KAMAILIO, "-f", str(work / "kamailio.cfg"), "-DD", "-E", "-Y", str(work / "run"),
                                "-m", "32", "-M", "8"], stdin=subprocess.DEVNULL, stdout=kam_log,
                               stderr=subprocess.STDOUT, cwd=work)
        procs.append(kam)
        for _ in range(100):
            if tcp_open(kam_port) or kam.poll() is not None:
                break
            time.sleep(0.1)
        kam_text = lambda: (work / "kamailio.log").read_text(errors="replace")  # noqa: E731
        rtp_text = lambda: (work / "rtpengine.log").read_text(errors="replace")  # noqa: E731
        up = tcp_open(kam_port) and rtpengine.poll() is None
        r.check("kamailio listens on TLS and rtpengine runs (userspace, --table=-1)", up,
                f"kamailio: {kam_text()[-300:]!r} rtpengine: {rtp_text()[-300:]!r}")
        if not up:
            return
        with tb:
            ours = tb.media_range()
            warnings_ = [l for l in tb.log_path.read_text(errors="replace").splitlines() if "srtp is on but trunk" in l]
            r.check("srtp on a UDP trunk: one warning at start that its SDES keys cross in clear; none for the TLS trunk",
                    len(warnings_) == 1 and "realm plain.example" in warnings_[0], " | ".join(warnings_) or "no warning")

            # 1. SRTP through the carrier: the tone comes back; the trunk leg is SRTP only.
            trunk_leg = Capture(ours, rtpengine_ports)
            sipp_leg = Capture(rtpengine_ports, sipp_media)
            sipp = start_sipp(work, sipp_port, media_port, "sdes")
            procs.append(sipp)
            time.sleep(0.3)
            try:
                asyncio.run(asyncio.wait_for(call(r, tb), 60))
            except asyncio.TimeoutError:
                r.check("the SRTP call finished within 60 s", False)
            trunk_leg.close()
            sipp_leg.close()
            try:
                code = sipp.wait(8)
            except subprocess.TimeoutExpired:
                code = "still running"
            r.check("sipp (behind rtpengine) saw INVITE, ACK and BYE and exited 0", code == 0, f"exit {code}")
            at = kam_text().find("KAM answer toward turnbridge: ")
            sdp = kam_text()[at:at + 2000].split(" NOTICE: ")[0] if at >= 0 else ""
            r.check("rtpengine answered turnbridge's RTP/SAVP offer with RTP/SAVP and its own a=crypto",
                    "RTP/SAVP" in sdp and "a=crypto:" in sdp,
                    " | ".join(re.findall(r"(m=audio.*|a=crypto:\S+ \S+)", sdp)) or kam_text()[-400:])

            out_sizes, out_payloads = rtp_payloads(trunk_leg.packets, ours, rtpengine_ports)
            in_sizes, in_payloads = rtp_payloads(trunk_leg.packets, rtpengine_ports, ours)
            # RFC 3711 §4.2: AES_CM_128_HMAC_SHA1_80 appends a 10-byte tag: 12 + 160 + 10.
            r.check("turnbridge -> rtpengine: every RTP packet is SRTP (182 bytes: 160 of PCMU and an 80-bit tag)",
                    len(out_sizes) > 100 and set(out_sizes) == {182}, f"{len(out_sizes)} packets, sizes {sorted(set(out_sizes))[:5]}")
            r.check("rtpengine -> turnbridge: every RTP packet is SRTP (182 bytes)",
                    len(in_sizes) > 100 and set(in_sizes) == {182}, f"{len(in_sizes)} packets, sizes {sorted(set(in_sizes))[:5]}")
            clear_sizes, clear_payloads = rtp_payloads(sipp_leg.packets, rtpengine_ports, sipp_media)
            echo_sizes, echo_payloads = rtp_payloads(sipp_leg.packets, sipp_media, rtpengine_ports)
            clear_hz = tone_in(clear_payloads) if clear_payloads else 0
            r.check(f"control: on the rtpengine -> sipp leg the capture hears the {TONE_HZ} Hz tone in clear PCMU",
                    abs(clear_hz - TONE_HZ) <= 0.02 * TONE_HZ and set(clear_sizes) == {172},
                    f"{clear_hz} Hz, {len(clear_sizes)} packets, sizes {sorted(set(clear_sizes))[:5]}")
            out_hz = tone_in(out_payloads) if out_payloads else 0
            in_hz = tone_in(in_payloads) if in_payloads else 0
            r.check("the trunk leg's payloads are no PCMU tone either way (encrypted)",
                    out_payloads and in_payloads and abs(out_hz - TONE_HZ) > 0.05 * TONE_HZ
                    and abs(in_hz - TONE_HZ) > 0.05 * TONE_HZ, f"dominant {out_hz} Hz out, {in_hz} Hz in")
            srtp_log = re.findall(r".*(?:SRTP|crypto|SDES).*", rtp_text())
            r.check("rtpengine's log shows the SDES crypto suite of the call",
                    any("SDES crypto params: suite AES_CM_128_HMAC_SHA1" in l for l in srtp_log), (srtp_log[-1] if srtp_log else rtp_text()[-300:])[:300])

            # 2. srtp = required and a trunk that answers without keys: the call ends, never clear media.
            clear_leg = Capture(ours, sipp_media)
            sipp = start_sipp(work, sipp_port, media_port, "clear")
            procs.append(sipp)
            time.sleep(0.3)
            final = asyncio.run(asyncio.wait_for(refused_call(r, tb), 30))
            r.check("required: sipp answers without a=crypto, the browser gets 488", final == 488, f"{final}")
            try:
                code = sipp.wait(8)
            except subprocess.TimeoutExpired:
                code = "still running"
            r.check("required: turnbridge sends the trunk ACK and BYE (sipp exits 0)", code == 0, f"exit {code}")
            time.sleep(1)
            clear_leg.close()
            r.check("required: not one datagram from turnbridge's media ports reached sipp's",
                    not any(s in ours for s, _, _ in clear_leg.packets), f"{len(clear_leg.packets)} datagrams")
            log = tb.log_path.read_text(errors="replace")
            line = next((l for l in log.splitlines() if "ended: SRTP: " in l), "")
            r.check("required: the log says why (no a=crypto in the answer)", "no a=crypto in the answer" in line,
                    line.strip() or log[-400:])
            time.sleep(1.5)
            st, calls, body = call_records(tb.admin_port)
            reasons = [c.get("end_reason", "") for c in calls] if st == 200 else []
            r.check("required: the call record's end reason names SRTP",
                    any(x.startswith("media: SRTP") for x in reasons), f"{st} {reasons or body!r}")
            final, rung = asyncio.run(asyncio.wait_for(inbound_without_keys(tb), 20))
            r.check("required: an inbound offer without a=crypto gets 488 and rings nobody", final == 488 and not rung,
                    f"{final}, browser rung: {rung}")
            r.check("turnbridge is still running", tb.alive())
            rc = tb.stop()
            r.check("turnbridge exits cleanly on SIGTERM", rc == 0, f"exit {rc}")

        # 3. srtp = "optional" (RFC 8643: RTP/AVP with a=crypto): rtpengine (OSRTP-accept) takes the
        # keys and the leg is SRTP; sipp alone answers without keys and the call is plain RTP.
        tb.srtp = "optional"
        with tb:
            for number, srtp, label in ((OUT_NUMBER, True, "rtpengine takes the keys: SRTP"),
                                        (CLEAR_NUMBER, False, "sipp has none: plain RTP")):
                peer = rtpengine_ports if srtp else sipp_media
                leg = Capture(ours, peer)
                sipp = start_sipp(work, sipp_port, media_port, f"optional-{number}")
                procs.append(sipp)
                time.sleep(0.3)
                aiortc_test.OUT_NUMBER = number   # the number call() dials
                try:
                    asyncio.run(asyncio.wait_for(call(r, tb), 60))
                except asyncio.TimeoutError:
                    r.check(f"optional ({label}): the call finished within 60 s", False)
                finally:
                    aiortc_test.OUT_NUMBER = OUT_NUMBER
                leg.close()
                try:
                    code = sipp.wait(8)
                except subprocess.TimeoutExpired:
                    code = "still running"
                sizes, _ = rtp_payloads(leg.packets, ours, peer)
                want = 182 if srtp else 172
                r.check(f"optional ({label}): sipp exited 0 and every packet we sent was {want} bytes",
                        code == 0 and len(sizes) > 100 and set(sizes) == {want},
                        f"exit {code}, {len(sizes)} packets, sizes {sorted(set(sizes))[:5]}")
            rc = tb.stop()
            r.check("turnbridge (optional) exits cleanly on SIGTERM", rc == 0, f"exit {rc}")
    finally:
        for p in procs:
            if p.poll() is None:
                # Kamailio's workers outlive a SIGKILLed main process: theirs are killed by PID too.
                children = children_of(p.pid)
                p.kill()
                p.wait()
                for c in children:
                    try:
                        os.kill(c, 9)
                    except OSError:
                        pass
        if tb is not None:
            tb.stop()


if __name__ == "__main__":
    main_guard(main)
