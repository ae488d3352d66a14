#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hostile_test.py cases: hostile input from the trunk's own address (issue 13, must-show 7).

A call is set up first (the trunk calls the routed DID, a WebSocket browser answers) and must
outlive every attack: garbage datagrams from the trunk's address; a re-INVITE in that dialog
with broken SDP (488, RFC 3261 §14.2: the session stays as it was); a PRACK in that dialog for
an RSeq we never sent (481, RFC 3262 §3); an UPDATE and a PRACK for dialogs that do not exist
(481, RFC 3261 §12.2.2). Then the browser has had no BYE, and the trunk's BYE ends the call
with 200 (it was still there) and reaches the browser.
"""
import re
import secrets
import socket
import time

from hostile_calls import invite
from hostile_common import DID, module_main, sip_register_ws, ws_connect, ws_frame, ws_read_message

SIP_ERROR = 0


def header(msg, name):
    m = re.search(rf"^{name}:\s*(.*)$", msg, re.I | re.M)
    return m.group(1).strip() if m else ""


def browser_answer(offer_msg):
    """A browser's answer to the gateway's offer: its first codec, ICE and DTLS attributes."""
    offer = offer_msg.split("\r\n\r\n", 1)[1]
    m = re.search(r"^m=audio \d+ [A-Z/]+ (\d+)", offer, re.M)
    pt = m.group(1) if m else "0"
    rtpmap = re.search(rf"^a=rtpmap:{pt} (.*)$", offer, re.M)
    mid = re.search(r"^a=mid:(.*)$", offer, re.M)
    mid = mid.group(1).strip() if mid else "0"
    fp = ":".join(f"{b:02X}" for b in secrets.token_bytes(32))
    return "\r\n".join(["v=0", "o=- 2 1 IN IP4 127.0.0.1", "s=-", "t=0 0", f"a=group:BUNDLE {mid}",
                        f"m=audio 9 UDP/TLS/RTP/SAVPF {pt}", "c=IN IP4 0.0.0.0", f"a=mid:{mid}",
                        "a=ice-ufrag:pyXX", "a=ice-pwd:pythonpythonpythonpython", f"a=fingerprint:sha-256 {fp}",
                        "a=setup:active", "a=rtcp-mux", "a=sendrecv",
                        f"a=rtpmap:{pt} {rtpmap.group(1).strip() if rtpmap else 'PCMU/8000'}", ""])


def ws_response(req, code, reason, to_tag="", body="", contact=""):
    lines = [f"SIP/2.0 {code} {reason}"]
    for line in req.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        name = line.split(":", 1)[0].strip().lower()
        if name in ("via", "from", "call-id", "cseq"):
            lines.append(line)
        elif name == "to":
            lines.append(line + (f";tag={to_tag}" if to_tag and ";tag=" not in line else ""))
    if contact:
        lines.append(f"Contact: <{contact}>")
    if body:
        lines.append("Content-Type: application/sdp")
    lines += [f"Content-Length: {len(body.encode())}", "", body]
    return "\r\n".join(lines)


def ws_wait(ws, pred, timeout=5.0):
    """The next WebSocket SIP message matching `pred` (others are skipped), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = ws_read_message(ws, max(0.1, deadline - time.monotonic()))
        except (socket.timeout, ConnectionError):
            return None
        if data is None:
            return None
        text = data.decode(errors="replace")
        if pred(text):
            return text
    return None


def udp_wait(s, pred, timeout=3.0):
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = s.recv(65536).decode(errors="replace")
        except socket.timeout:
            return ""
        if pred(text):
            return text
    return ""


def status_of(text):
    return int(text.split(" ", 2)[1]) if text.startswith("SIP/2.0 ") else SIP_ERROR


class TrunkCall:
    """An answered inbound call, seen from the trunk's UDP socket and the browser's WebSocket."""

    def __init__(self, server):
        self.server = server
        self.ws = ws_connect(server.ws_port)
        self.registered = sip_register_ws(server, sock=self.ws) == 200
        self.s, self.call_id, msg = invite(server, "127.0.0.1", DID)
        text = msg.decode()
        self.from_hdr = header(text, "From")
        self.port = self.s.getsockname()[1]
        self.browser_invite = ws_wait(self.ws, lambda m: m.startswith("INVITE "))
        self.ok = ""
        if not self.browser_invite:
            return
        self.ws.sendall(ws_frame(ws_response(self.browser_invite, 200, "OK", to_tag=secrets.token_hex(4),
                                             body=browser_answer(self.browser_invite),
                                             contact="sip:b@x.invalid;transport=ws").encode()))
        ws_wait(self.ws, lambda m: m.startswith("ACK "), 3.0)
        self.ok = udp_wait(self.s, lambda m: status_of(m) >= 200)
        if status_of(self.ok) == 200:
            self.to_hdr = header(self.ok, "To")
            self.target = re.search(r"<([^>]+)>", header(self.ok, "Contact")).group(1)
            self.send("ACK", 1)
        self.cseq = 1

    def answered(self):
        return self.registered and status_of(self.ok) == 200

    def request(self, method, cseq, extra="", body="", call_id=None, to=None, branch=None):
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        return (f"{method} {getattr(self, 'target', 'sip:x@127.0.0.1')} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch or 'z9hG4bK' + secrets.token_hex(8)};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: {self.from_hdr}\r\nTo: {to or self.to_hdr}\r\n"
                f"Call-ID: {call_id or self.call_id}\r\nCSeq: {cseq} {method}\r\n"
                f"Contact: <sip:+15550111@127.0.0.1:{self.port}>\r\n{extra}{ctype}"
                f"Content-Length: {len(body.encode())}\r\n\r\n{body}").encode()

    def send(self, method, cseq, **kw):
        self.s.sendto(self.request(method, cseq, **kw), ("127.0.0.1", self.server.sip_port))

    def ask(self, method, **kw):
        """An in-dialog request (next CSeq) from the trunk; its final response's status."""
        self.cseq += 1
        self.send(method, self.cseq, **kw)
        return status_of(udp_wait(self.s, lambda m: status_of(m) >= 200 and f"{self.cseq} {method}" in m))

    def close(self):
        for sock in (self.s, self.ws):
            try:
                sock.close()
            except OSError:
                pass


def hostile_trunk(r, ctx):
    server = ctx.server
    call = TrunkCall(server)
    try:
        if not r.check("a call from the trunk is answered by a WebSocket browser", call.answered(),
                       f"registered {call.registered}; browser INVITE {bool(call.browser_invite)}; "
                       f"trunk got {call.ok.split(chr(13))[0] if call.ok else 'nothing'}"):
            ctx.during()
            return
        # Garbage from the trunk's own address (the port differs: the trunk's, but a new socket).
        g = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        g.bind(("127.0.0.1", 0))
        junk = [secrets.token_bytes(n) for n in (1, 20, 400, 1400)] + [
            b"INVITE sip:x SIP/2.0\r\n\r\n", b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n",
            b"BYE " + call.target.encode() + b" SIP/2.0\r\nCall-ID: " + call.call_id.encode() + b"\r\n\r\n",
            call.request("UPDATE", 99)[:120], b"\x00" * 1500, b"\r\n\r\n"]
        for i in range(200):
            g.sendto(junk[i % len(junk)], ("127.0.0.1", server.sip_port))
        g.close()
        time.sleep(0.3)
        branch = "z9hG4bK" + secrets.token_hex(8)
        code = call.ask("INVITE", body="v=0\r\nthis is no SDP at all\r\nm=audio banana\r\n", branch=branch)
        r.check("a re-INVITE with broken SDP in the call's dialog gets 488", code == 488, f"got {code}")
        # RFC 3261 §17.1.1.3: the ACK of a non-2xx is part of its transaction (same branch).
        call.send("ACK", call.cseq, branch=branch)
        code = call.ask("PRACK", extra="RAck: 77 1 INVITE\r\n")
        r.check("a PRACK in the call's dialog for an RSeq never sent gets 481 (RFC 3262 §3)", code == 481, f"got {code}")
        stranger_to = f"<sip:{DID}@127.0.0.1>;tag={secrets.token_hex(4)}"
        for method in ("UPDATE", "PRACK"):
            code = call.ask(method, call_id=secrets.token_hex(8), to=stranger_to,
                            extra="RAck: 1 1 INVITE\r\n" if method == "PRACK" else "")
            r.check(f"{'an' if method == 'UPDATE' else 'a'} {method} for a dialog that does not exist gets 481", code == 481, f"got {code}")
        ctx.during()
        bye = ws_wait(call.ws, lambda m: m.startswith("BYE "), 1.0)
        r.check("the browser got no BYE: the call outlived the attacks", bye is None, (bye or "")[:200])
        code = call.ask("BYE")
        r.check("the trunk's BYE afterwards gets 200: the call was still up", code == 200, f"got {code}")
        bye = ws_wait(call.ws, lambda m: m.startswith("BYE "), 3.0)
        r.check("and reaches the browser", bye is not None)
        if bye:
            call.ws.sendall(ws_frame(ws_response(bye, 200, "OK").encode()))
    finally:
        call.close()


CASES = [("hostile input from the trunk during a call", hostile_trunk)]

if __name__ == "__main__":
    module_main(CASES)
