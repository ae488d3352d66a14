# SPDX-License-Identifier: Apache-2.0
# interop-timeout: 240
"""Accounting exactness and durability against the real server.

Exactness: a known number of packets of known sizes go through UDP, TCP and TLS allocations
(ChannelData and Send/Data indications), the allocations are closed, and `turnbridge report
--by allocation --format json` must show exactly those payload packets and bytes in each
direction, and wire bytes that match the framing (ChannelData header and stream padding,
Send/Data indication headers, and over TLS each record's header and tag, which the test's own
TLS client measures on its memory BIOs). Then coturn's turnutils_uclient and aioice's own TURN
client over UDP, TCP and TLS: what they sent and got back equals the report. The same through coturn's turnutils_uclient over UDP, TCP and
TLS: its own totals of messages sent and received equal what the report says was relayed.

Durability: `kill -9` while an allocation relays; after a restart, the closed allocation is
exact, and the cut-off one is closed as `crashed` having lost at most one flush interval.

Loopback only (127.0.0.1).
"""
import os
import socket
import sqlite3
import ssl
import subprocess
import threading
import time

from harness import Turnbridge, free_port, main_guard, report, uclient_drew_one_channel_twice
from stun_client import TurnClient

FLUSH = 1  # seconds; [accounting] flush_interval for these runs
USERS = {"u_udp": "p1", "u_tcp": "p2", "u_tls": "p3", "u_ind": "p4", "u_crash": "p5", "u_done": "p6", "u_late": "p7", "tu_udp": "q1", "tu_tcp": "q2", "tu_tls": "q3",
         "ai_udp": "a1", "ai_tcp": "a2", "ai_tls": "a3"}
CHANNEL = 0x4001


def pad(n):
    return (4 - n % 4) % 4


class CountingTls:
    """A TLS client over memory BIOs that counts ciphertext and plaintext each way, so the test
    knows exactly what TLS framing added on the wire (the client leg's wire bytes include it)."""

    def __init__(self, sock):
        self.sock = sock
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the test's own self-signed certificate
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        self.cipher_in = self.cipher_out = self.plain_in = self.plain_out = 0
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
        self._flush()

    def _flush(self):
        data = self.out.read()
        self.cipher_out += len(data)
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.cipher_in += len(chunk)
        self.inc.write(chunk)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def sendall(self, data):
        self.obj.write(data)  # one record per message, as browsers and coturn's clients do
        self.plain_out += len(data)
        self._flush()

    def recv(self, n):
        while True:
            try:
                data = self.obj.read(n)
                self.plain_in += len(data)
                return data
            except ssl.SSLWantReadError:
                self._fill()

    def close(self):
        self.sock.close()


class TlsTurnClient(TurnClient):
    """TurnClient over TLS: the same framing as TCP inside a TLS session."""

    def __init__(self, server, username, password, timeout=3.0):
        super().__init__(server, username, password, transport="tcp", timeout=timeout)
        self.sock = CountingTls(self.sock)
        self.sock.settimeout(timeout)

    def tls_overhead(self):
        """Ciphertext beyond plaintext so far, (sent, received)."""
        t = self.sock
        return t.cipher_out - t.plain_out, t.cipher_in - t.plain_in


def accounting_server():
    return Turnbridge(users=USERS, extra_server=f"\n[accounting]\nflush_interval = {FLUSH}\n")


def peer_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(3)
    return s


def exchange(client, transport, indications, sizes_out, sizes_in):
    """Relays packets both ways through `client`'s allocation; returns the ground truth."""
    relay = client.allocate()
    peer = peer_socket()
    peer_addr = peer.getsockname()
    if indications:
        assert client.create_permission(peer_addr).message_class.name == "RESPONSE"
    else:
        assert client.channel_bind(CHANNEL, peer_addr).message_class.name == "RESPONSE"
    stream = transport != "udp"
    tls = isinstance(client, TlsTurnClient)

    def tls_framing(d, before):
        """TLS record bytes (header, tag) of the relayed message just sent (d=0) or received (1)."""
        return client.tls_overhead()[d] - before[d] if tls else 0

    truth = {"packets": [0, 0, 0, 0], "payload": [0, 0, 0, 0], "wire": [0, 0, 0, 0]}
    for i, n in enumerate(sizes_out):
        before = client.tls_overhead() if tls else None
        data = bytes([(i + k) % 251 for k in range(n)])
        if indications:
            from aioice import stun
            msg = stun.Message(message_method=stun.Method.SEND, message_class=stun.Class.INDICATION)
            msg.attributes["XOR-PEER-ADDRESS"] = peer_addr
            msg.attributes["DATA"] = data
            raw = bytes(msg)
            client.send_raw(raw)
            wire = len(raw)
        else:
            client.send_channel_data(CHANNEL, data)
            wire = 4 + n + (pad(n) if stream else 0)
        wire += tls_framing(0, before)
        got, _ = peer.recvfrom(65536)
        assert got == data, "payload changed on the way to the peer"
        truth["packets"][0] += 1; truth["payload"][0] += n; truth["wire"][0] += wire
        truth["packets"][1] += 1; truth["payload"][1] += n; truth["wire"][1] += n
    for i, n in enumerate(sizes_in):
        data = bytes([(3 * i + k) % 253 for k in range(n)])
        before = client.tls_overhead() if tls else None
        peer.sendto(data, (relay[0], relay[1]))
        kind, _, got = client.receive(timeout=3)
        assert got == data, "payload changed on the way to the client"
        if kind == "channel":
            wire = 4 + n + (pad(n) if stream else 0)
        else:  # Data indication: header, XOR-PEER-ADDRESS (IPv4), DATA header, padding
            wire = 20 + 12 + 4 + n + pad(n)
        wire += tls_framing(1, before)
        truth["packets"][2] += 1; truth["payload"][2] += n; truth["wire"][2] += n
        truth["packets"][3] += 1; truth["payload"][3] += n; truth["wire"][3] += wire
    peer.close()
    return truth


DIRS = ["client_to_relay", "relay_to_peer", "peer_to_relay", "relay_to_client"]


def compare(r, name, row, truth):
    ok = True
    detail = []
    for d, direction in enumerate(DIRS):
        for kind, field in (("packets", "packets"), ("payload", "payload_bytes"), ("wire", "wire_bytes")):
            got = row.get(f"{direction}_{field}")
            if got != truth[kind][d]:
                ok = False
                detail.append(f"{direction}_{field}: report {got}, truth {truth[kind][d]}")
    r.check(name, ok, "; ".join(detail) if detail else
            f"{truth['packets'][0]}+{truth['packets'][2]} packets, {sum(truth['payload'])} payload bytes")


def exactness(r):
    sizes_out = [1, 2, 3, 160, 161, 1000, 1199] * 6   # odd sizes exercise stream padding
    sizes_in = [5, 160, 999, 1200, 7] * 6
    cases = [("udp", "u_udp", False), ("tcp", "u_tcp", False), ("tls", "u_tls", False),
             ("udp", "u_ind", True)]
    with accounting_server() as tb:
        truths = {}
        for transport, user, indications in cases:
            if transport == "tls":
                c = TlsTurnClient(("127.0.0.1", tb.tls_port), user, USERS[user])
            else:
                c = TurnClient(("127.0.0.1", tb.port), user, USERS[user], transport=transport)
            truths[user] = (transport, indications, exchange(c, transport, indications, sizes_out, sizes_in))
            resp = c.refresh(0)
            r.check(f"{user}: Refresh 0 closes the allocation", resp.message_class.name == "RESPONSE")
            c.close()
        time.sleep(FLUSH * 2.5)
        for user, (transport, indications, truth) in truths.items():
            rows = report(tb, user)
            how = "indications" if indications else "channels"
            if not r.check(f"{transport}/{how}: one allocation reported for {user}", len(rows) == 1,
                           f"{len(rows)} rows"):
                continue
            compare(r, f"{transport}/{how}: report equals ground truth", rows[0], truth)
        stopped = tb.stop()
        r.check("server stops cleanly", stopped == 0, f"exit code {stopped}")


def durability(r):
    tb = accounting_server()
    tb.start()
    # One allocation that ends before the crash: it must survive exactly.
    done = TurnClient(("127.0.0.1", tb.port), "u_done", USERS["u_done"])
    truth_done = exchange(done, "udp", False, [100] * 20, [200] * 10)
    done.refresh(0)
    done.close()
    # One that is relaying when the server is killed.
    live = TurnClient(("127.0.0.1", tb.port), "u_crash", USERS["u_crash"])
    relay = live.allocate()
    peer = peer_socket()
    live.channel_bind(CHANNEL, peer.getsockname())
    sent = {"n": 0}
    stop = threading.Event()

    def pump():
        data = bytes(120)
        while not stop.is_set() and sent["n"] < 5000:
            live.send_channel_data(CHANNEL, data)
            sent["n"] += 1
            time.sleep(0.002)

    got = {"n": 0}

    def drain():  # read as it arrives: a full receive buffer would lose packets, not the server
        peer.settimeout(0.2)
        while True:
            try:
                peer.recvfrom(65536)
                got["n"] += 1
            except socket.timeout:
                if stop.is_set():
                    return

    t = threading.Thread(target=pump)
    d = threading.Thread(target=drain)
    d.start()
    t.start()
    time.sleep(FLUSH * 3.2)
    # One that ends just before the crash, well inside a flush interval: its end is written at once.
    late = TurnClient(("127.0.0.1", tb.port), "u_late", USERS["u_late"])
    truth_late = exchange(late, "udp", False, [300] * 7, [90] * 5)
    late.refresh(0)
    late.close()
    time.sleep(0.2)
    pid = tb.proc.pid
    os.kill(pid, 9)
    tb.proc.wait()
    stop.set()
    t.join()
    d.join()
    # What the peer really got is the ground truth of client->relay->peer at the kill.
    received = got["n"]
    peer.close()
    live.close()
    tb.proc = None
    r.check("server killed with SIGKILL mid-traffic", received > 0, f"{received} packets reached the peer")
    tb.start()  # the same config and database
    try:
        rows = report(tb, "u_done")
        if r.check("after restart: the closed allocation is still there", len(rows) == 1, f"{len(rows)} rows"):
            compare(r, "after restart: the closed allocation is exact", rows[0], truth_done)
        rows = report(tb, "u_late")
        if r.check("after restart: the allocation closed just before the kill is there", len(rows) == 1,
                   f"{len(rows)} rows"):
            compare(r, "after restart: the allocation closed just before the kill is exact", rows[0], truth_late)
        rows = report(tb, "u_crash")
        if r.check("after restart: the cut-off allocation is there", len(rows) == 1, f"{len(rows)} rows"):
            row = rows[0]
            packets = row.get("relay_to_peer_packets", -1)
            # At ~2 ms per packet, one flush interval is at most FLUSH/0.002 packets.
            bound = int(FLUSH / 0.002) + 50
            r.check("after restart: lost at most one flush interval",
                    received - bound <= packets <= received,
                    f"report {packets}, peer received {received}, allowed loss {bound}")
            # The reason is in the store itself (read-only; the server holds it open in WAL mode).
            db = sqlite3.connect(f"file:{tb.dir / 'turnbridge.db'}?mode=ro", uri=True)
            reasons = [x[0] for x in db.execute("SELECT end_reason FROM allocations WHERE account = 'u_crash'")]
            db.close()
            r.check("after restart: closed as crashed", reasons == ["crashed"], f"end_reason {reasons}")
    finally:
        tb.stop()


def turnutils_exactness(r):
    """coturn's turnutils_uclient as the ground truth: its own totals of messages sent and
    received must equal what the report says left toward the peer and toward the client."""
    from turnutils_test import parse
    peer_port = free_port(span=2)
    peer = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(peer_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with accounting_server() as tb:
            runs = {}
            for transport, user, flags in (("udp", "tu_udp", []), ("tcp", "tu_tcp", ["-t"]),
                                           ("tls", "tu_tls", ["-t", "-S"])):
                port = tb.tls_port if "-S" in flags else tb.port
                for _ in range(2):
                    out = subprocess.run(["turnutils_uclient", "-u", user, "-w", USERS[user], "-e", "127.0.0.1",
                                          "-r", str(peer_port), "-p", str(port), "-n", "150", "-m", "3", "-l",
                                          "172", "-z", "5", "-c", *flags, "127.0.0.1"],
                                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
                    if not uclient_drew_one_channel_twice(out.stdout + out.stderr):
                        break
                runs[user] = (transport, parse(out.stdout + out.stderr))
            time.sleep(FLUSH * 2.5)
            for user, (transport, totals) in runs.items():
                if not r.check(f"turnutils {transport}: uclient reported totals", bool(totals and totals["sent"]),
                               str(totals)):
                    continue
                rows = report(tb, user, by="user")
                row = rows[0] if rows else {}
                got = (row.get("relay_to_peer_packets"), row.get("relay_to_client_packets"),
                       row.get("relay_to_peer_payload_bytes"), row.get("relay_to_client_payload_bytes"))
                want = (totals["sent"], totals["recv"], totals["sent"] * 172, totals["recv"] * 172)
                r.check(f"turnutils {transport}: report equals uclient's own totals", got == want,
                        f"report {got}, uclient {want}")
    finally:
        peer.terminate()
        peer.wait()


def aioice_exactness(r):
    """aioice's own TURN client (what aiortc uses) as a third ground truth: every datagram it
    sends reaches the peer and every echo reaches it, so the report's payload counts must
    equal what was sent each way, over UDP, TCP and TLS."""
    import asyncio
    from aioice_test import Collector, open_endpoint

    sizes = [1, 99, 160, 1000, 1200] * 8

    async def one(tb, transport, user):
        loop = asyncio.get_running_loop()
        peer_t, peer = await loop.create_datagram_endpoint(Collector, local_addr=("127.0.0.1", 0))
        peer_addr = peer_t.get_extra_info("sockname")
        turn, client = await open_endpoint(tb, transport, user, USERS[user])
        relayed = turn.get_extra_info("sockname")
        out = back = 0
        try:
            for i, n in enumerate(sizes):
                data = bytes([i % 251]) * n
                turn.sendto(data, peer_addr)
                got, _ = await peer.get()
                out += got == data
                echo = bytes([(i + 7) % 251]) * (n + 3)
                peer_t.sendto(echo, relayed)
                got, _ = await client.get()
                back += got == echo
        finally:
            turn.close()       # aioice deletes its allocation (Refresh, lifetime 0)
            await asyncio.sleep(0.5)
            peer_t.close()
        return out, back

    with accounting_server() as tb:
        counts = {}
        for transport in ("udp", "tcp", "tls"):
            user = f"ai_{transport}"
            counts[user] = (transport, asyncio.run(one(tb, transport, user)))
        time.sleep(FLUSH * 2.5)
        want_out = sum(sizes)
        want_back = sum(n + 3 for n in sizes)
        for user, (transport, (out, back)) in counts.items():
            if not r.check(f"aioice {transport}: every datagram arrived intact both ways",
                           out == len(sizes) and back == len(sizes), f"{out} and {back} of {len(sizes)}"):
                continue
            rows = report(tb, user, by="user")
            row = rows[0] if rows else {}
            got = tuple(row.get(f"{d}_{k}") for k in ("packets", "payload_bytes") for d in DIRS)
            want = (len(sizes),) * 4 + (want_out, want_out, want_back, want_back)
            r.check(f"aioice {transport}: report equals what aioice and the peer exchanged", got == want,
                    f"report {got}, truth {want}")
            # aioice binds a channel before its first datagram, so every message is ChannelData:
            # a 4-byte header, padded to 4 bytes on streams, and over TLS 1.3 one record each
            # (5-byte header, 1 content-type byte, 16-byte AEAD tag).
            stream = transport != "udp"
            record = 22 if transport == "tls" else 0
            wire_up = sum(4 + n + (pad(n) if stream else 0) + record for n in sizes)
            wire_down = sum(4 + n + 3 + (pad(n + 3) if stream else 0) + record for n in sizes)
            got_wire = (row.get("client_to_relay_wire_bytes"), row.get("relay_to_client_wire_bytes"))
            r.check(f"aioice {transport}: wire bytes match the framing", got_wire == (wire_up, wire_down),
                    f"report {got_wire}, framing {(wire_up, wire_down)}")


def main(r):
    exactness(r)
    turnutils_exactness(r)
    aioice_exactness(r)
    durability(r)


if __name__ == "__main__":
    main_guard(main)
