# SPDX-License-Identifier: Apache-2.0
"""A small blocking TURN client for the interop tests, built on aioice.stun (Debian's
python3-aioice) for message encoding, MESSAGE-INTEGRITY and FINGERPRINT. It adds the few
RFC 8656 attributes aioice does not know (REQUESTED-ADDRESS-FAMILY, DATA, ...).

Only ever pointed at a turnbridge on loopback.
"""
import hashlib
import socket
import struct
import time

from aioice import stun

# RFC 8656 §18 / RFC 8489 §18.3 attributes aioice 0.8 lacks.
_EXTRA = [
    (0x0013, "DATA", stun.pack_bytes, stun.unpack_bytes),
    (0x0017, "REQUESTED-ADDRESS-FAMILY", stun.pack_unsigned, stun.unpack_unsigned),
    (0x0018, "EVEN-PORT", stun.pack_bytes, stun.unpack_bytes),
    (0x001A, "DONT-FRAGMENT", stun.pack_none, stun.unpack_none),
    (0x0022, "RESERVATION-TOKEN", stun.pack_bytes, stun.unpack_bytes),
    (0x8023, "ALTERNATE-SERVER", stun.pack_address, stun.unpack_address),  # RFC 8489 §14.15
    (0x8000, "ADDITIONAL-ADDRESS-FAMILY", stun.pack_unsigned, stun.unpack_unsigned),
    (0x8001, "ADDRESS-ERROR-CODE", stun.pack_bytes, stun.unpack_bytes),
]


def register_attributes():
    """Teach aioice.stun the attributes above (idempotent)."""
    for entry in _EXTRA:
        if entry[0] not in stun.ATTRIBUTES_BY_TYPE:
            stun.ATTRIBUTES.append(entry)
            stun.ATTRIBUTES_BY_TYPE[entry[0]] = entry
            stun.ATTRIBUTES_BY_NAME[entry[1]] = entry


register_attributes()

UDP_TRANSPORT = 0x11000000   # REQUESTED-TRANSPORT: protocol 17 in the first byte
FAMILY_IPV4 = 0x01000000     # REQUESTED-ADDRESS-FAMILY: family in the first byte
FAMILY_IPV6 = 0x02000000


class StunError(Exception):
    def __init__(self, response):
        self.response = response
        self.code, self.reason = response.attributes.get("ERROR-CODE", (0, ""))
        super().__init__(f"{self.code} {self.reason}")


def error_code(response):
    """The ERROR-CODE number of an error response, or 0 for a success response."""
    if response.message_class == stun.Class.ERROR:
        return response.attributes.get("ERROR-CODE", (0, ""))[0]
    return 0


class TurnClient:
    """One client 5-tuple (UDP or TCP) toward the server, with long-term credentials."""

    def __init__(self, server, username, password, transport="udp", timeout=3.0):
        self.server = server
        self.username, self.password = username, password
        self.transport = transport
        self.timeout = timeout
        fam = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        if transport == "udp":
            self.sock = socket.socket(fam, socket.SOCK_DGRAM)
            self.sock.connect(server)
        else:
            self.sock = socket.create_connection(server, timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.realm = self.nonce = self.key = None
        self.pending = []   # datagrams that arrived while waiting for a response

    def close(self):
        self.sock.close()

    # -- framing ----------------------------------------------------------------------------
    def send_raw(self, data):
        if self.transport == "udp":
            self.sock.send(data)
        else:
            pad = stun.padding_length(len(data))
            self.sock.sendall(data + bytes(pad))

    def recv_raw(self, timeout):
        """One datagram (UDP) or one framed STUN/ChannelData message (TCP)."""
        self.sock.settimeout(timeout)
        if self.transport == "udp":
            return self.sock.recv(65536)
        while True:
            if len(self.buf) >= 4:
                first, length = struct.unpack("!HH", self.buf[:4])
                if first & 0xC000 == 0x4000:     # ChannelData, padded on streams (RFC 8656 §12.5)
                    total = 4 + length + stun.padding_length(length)
                else:
                    total = 20 + length
                if len(self.buf) >= total:
                    msg, self.buf = self.buf[:total], self.buf[total:]
                    return msg
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    # -- transactions -----------------------------------------------------------------------
    def sign(self, msg):
        msg.attributes.pop("MESSAGE-INTEGRITY", None)
        msg.attributes.pop("FINGERPRINT", None)
        msg.attributes["USERNAME"] = self.username
        msg.attributes["REALM"] = self.realm
        msg.attributes["NONCE"] = self.nonce
        msg.add_message_integrity(self.key)

    def transact(self, msg):
        """Send `msg`, return the response (success or error) with its transaction ID."""
        data = bytes(msg)
        rto, deadline = 0.5, time.monotonic() + self.timeout
        self.send_raw(data)
        next_retry = time.monotonic() + rto
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"no response to {msg.message_method.name}")
            try:
                raw = self.recv_raw(max(0.01, min(deadline, next_retry) - now))
            except socket.timeout:
                if self.transport == "udp" and time.monotonic() >= next_retry:
                    self.send_raw(data)              # RFC 8489 §6.2.1 retransmission
                    rto *= 2
                    next_retry = time.monotonic() + rto
                continue
            try:
                resp = stun.parse_message(raw)
            except ValueError:
                self.pending.append(raw)
                continue
            if resp.transaction_id != msg.transaction_id:
                self.pending.append(raw)
                continue
            return resp

    def request(self, method, attrs=None, authenticate=True):
        """A request with long-term credentials: learns REALM and NONCE from the first 401,
        follows one 438 (stale nonce). Returns the final response."""
        for _ in range(3):
            msg = stun.Message(message_method=method, message_class=stun.Class.REQUEST)
            for k, v in (attrs or {}).items():
                msg.attributes[k] = v
            if authenticate and self.key:
                self.sign(msg)
            resp = self.transact(msg)
            code = error_code(resp)
            if authenticate and code in (401, 438) and "NONCE" in resp.attributes and (
                    code == 438 or self.key is None):
                self.nonce = resp.attributes["NONCE"]
                self.realm = resp.attributes.get("REALM", self.realm)
                self.key = hashlib.md5(
                    f"{self.username}:{self.realm}:{self.password}".encode()).digest()
                continue
            return resp
        return resp

    # -- TURN methods -----------------------------------------------------------------------
    def allocate(self, family=None, lifetime=600):
        attrs = {"LIFETIME": lifetime, "REQUESTED-TRANSPORT": UDP_TRANSPORT}
        if family is not None:
            attrs["REQUESTED-ADDRESS-FAMILY"] = family
        resp = self.request(stun.Method.ALLOCATE, attrs)
        if error_code(resp):
            raise StunError(resp)
        return resp.attributes["XOR-RELAYED-ADDRESS"]

    def create_permission(self, peer):
        return self.request(stun.Method.CREATE_PERMISSION, {"XOR-PEER-ADDRESS": peer})

    def channel_bind(self, channel, peer):
        return self.request(stun.Method.CHANNEL_BIND,
                            {"CHANNEL-NUMBER": channel, "XOR-PEER-ADDRESS": peer})

    def refresh(self, lifetime):
        return self.request(stun.Method.REFRESH, {"LIFETIME": lifetime})

    def send_indication(self, peer, data):
        msg = stun.Message(message_method=stun.Method.SEND, message_class=stun.Class.INDICATION)
        msg.attributes["XOR-PEER-ADDRESS"] = peer
        msg.attributes["DATA"] = data
        self.send_raw(bytes(msg))

    def send_channel_data(self, channel, data):
        self.send_raw(struct.pack("!HH", channel, len(data)) + data)

    def receive(self, timeout=2.0):
        """The next non-response message: ('data', peer, bytes) for a Data indication,
        ('channel', number, bytes) for ChannelData."""
        deadline = time.monotonic() + timeout
        while True:
            if self.pending:
                raw = self.pending.pop(0)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("nothing received")
                try:
                    raw = self.recv_raw(left)
                except socket.timeout:
                    raise TimeoutError("nothing received") from None
            first, length = struct.unpack("!HH", raw[:4])
            if first & 0xC000 == 0x4000:
                return ("channel", first, raw[4:4 + length])
            try:
                msg = stun.parse_message(raw)
            except ValueError:
                continue
            if msg.message_method == stun.Method.DATA and msg.message_class == stun.Class.INDICATION:
                return ("data", msg.attributes.get("XOR-PEER-ADDRESS"), msg.attributes.get("DATA"))
