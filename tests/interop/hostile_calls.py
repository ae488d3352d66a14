#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hostile_test.py cases: calls an outsider can start (issue 11).

- An inbound INVITE from the trunk's address to a DID whose only user has no browser registered
  (what a carrier sends for every call to an offline user) gets 480 and the server lives on; the
  same INVITE again, and from an address that is not the trunk's (403).
"""
import secrets
import socket
import time

from hostile_common import OFFLINE_DID, module_main


def invite(server, source_ip, did, sdp=True):
    """A trunk-style UDP INVITE to `did` from `source_ip`; returns (socket, call-id, bytes)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source_ip, 0))
    port = s.getsockname()[1]
    call_id = secrets.token_hex(8)
    body = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n") if sdp else ""
    msg = (f"INVITE sip:{did}@127.0.0.1:{server.sip_port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP {source_ip}:{port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
           f"Max-Forwards: 70\r\nFrom: <sip:+15550111@{source_ip}>;tag={secrets.token_hex(4)}\r\n"
           f"To: <sip:{did}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
           f"Contact: <sip:+15550111@{source_ip}:{port}>\r\n"
           + ("Content-Type: application/sdp\r\n" if sdp else "")
           + f"Content-Length: {len(body)}\r\n\r\n{body}").encode()
    s.sendto(msg, ("127.0.0.1", server.sip_port))
    return s, call_id, msg


def final_status(s, timeout=3.0):
    """The first final status code that comes back on `s`, or 0."""
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = s.recv(65536)
        except socket.timeout:
            return 0
        if data.startswith(b"SIP/2.0 "):
            code = int(data.split(b" ", 2)[1])
            if code >= 200:
                return code
    return 0


def offline_user(r, ctx):
    server = ctx.server
    for attempt in range(3):
        s, _, _ = invite(server, "127.0.0.1", OFFLINE_DID)
        code = final_status(s)
        s.close()
        r.check(f"inbound INVITE to an offline user from the trunk's address gets 480 (try {attempt + 1})",
                code == 480, f"got {code}")
        time.sleep(0.3)
    r.check("the server is alive after the calls to an offline user", server.alive())
    s, _, _ = invite(server, "127.0.0.7", OFFLINE_DID)
    code = final_status(s)
    s.close()
    r.check("the same INVITE from an address that is not the trunk's gets 403", code == 403, f"got {code}")
    ctx.during()


CASES = [("inbound call to an offline user", offline_user)]

if __name__ == "__main__":
    module_main(CASES)
