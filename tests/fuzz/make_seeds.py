#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the hand-made seed inputs of the channel_data, turn_server and sip_router fuzz targets."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
COOKIE = 0x2112A442


def attr(t, v):
    pad = (4 - len(v) % 4) % 4
    return struct.pack("!HH", t, len(v)) + v + b"\0" * pad


def msg(method, cls, attrs, tid=b"\x01" * 12):
    body = b"".join(attrs)
    mtype = (method & 0xF) | ((method & 0x70) << 1) | ((method & 0xF80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7)
    return struct.pack("!HHI", mtype, len(body), COOKIE) + tid + body


def xor_addr(ip4, port):
    a = bytes(int(x) for x in ip4.split("."))
    xa = bytes(b ^ c for b, c in zip(a, struct.pack("!I", COOKIE)))
    return struct.pack("!BBH", 0, 1, port ^ (COOKIE >> 16)) + xa


def rec(op, data):
    return struct.pack("!BH", op, len(data)) + data


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


udp = attr(0x0019, b"\x11\0\0\0")
alloc = msg(3, 0, [udp])
alloc_even = msg(3, 0, [udp, attr(0x0018, b"\x80")], tid=b"\x02" * 12)
alloc_dual = msg(3, 0, [udp, attr(0x8000, b"\x02\0\0\0")], tid=b"\x03" * 12)
perm = msg(8, 0, [attr(0x0012, xor_addr("127.0.0.1", 40000))], tid=b"\x04" * 12)
perm_denied = msg(8, 0, [attr(0x0012, xor_addr("10.0.0.1", 40000))], tid=b"\x05" * 12)
chbind = msg(9, 0, [attr(0x000C, b"\x40\x01\0\0"), attr(0x0012, xor_addr("127.0.0.1", 40001))], tid=b"\x06" * 12)
refresh0 = msg(4, 0, [attr(0x000D, b"\0\0\0\0")], tid=b"\x07" * 12)
send_ind = msg(6, 1, [attr(0x0012, xor_addr("127.0.0.1", 40000)), attr(0x0013, b"hello")], tid=b"\x08" * 12)
chdata = b"\x40\x01\x00\x05hello\0\0\0"
binding = msg(1, 0, [], tid=b"\x09" * 12)

write("turn_server", "allocate_relay_both_ways",
      rec(0, alloc) + rec(1, alloc) + rec(1, perm) + rec(1, chbind) + rec(0, send_ind) + rec(0, chdata)
      + rec(2, b"\x00peer") + rec(2, b"\x01peer") + rec(3, b"\x1f") + rec(1, refresh0))
write("turn_server", "even_port_and_dual", rec(1, alloc_even) + rec(0x11, alloc_dual) + rec(0x21, alloc) + rec(4, b""))
write("turn_server", "denied_and_expiry", rec(1, alloc) + rec(1, perm_denied) + rec(3, b"\xff") + rec(3, b"\xff")
      + rec(3, b"\xff") + rec(0, binding))
write("turn_server", "tcp_close", rec(0x21, alloc) + rec(0x21, chbind) + rec(0x20, chdata) + rec(0x24, b""))
write("channel_data", "channel_data", chdata)
write("channel_data", "stun_then_channel", binding + chdata + binding)
write("channel_data", "garbage", b"\xc0\x00\x00\x00")

# sip_router: scripts of steps (tests/fuzz/sip_router.cpp reads one opcode byte, then its fields).
MEDIA_OURS, MEDIA_NONE, MEDIA_PASS = bytes([14, 2]), bytes([14, 0]), bytes([14, 1])
REGISTER_ALICE = bytes([0, 0, 0, 1, 1, 0])                 # alice on WebSocket 7, right password
INVITE_OUT = bytes([1, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0])      # alice calls +15557001 with SDP, digest ok
TRUNK_180, TRUNK_200, TRUNK_487 = bytes([5, 1, 0]), bytes([5, 3, 0, 1, 1]), bytes([5, 8, 0])
BROWSER_ACK, BROWSER_BYE, BROWSER_CANCEL = bytes([3, 1, 1]), bytes([4, 1]), bytes([2, 1])
TIMER_4S, TIMER_32S, TIMER_200S = bytes([10, 3]), bytes([10, 4]), bytes([10, 6])
INBOUND = lambda did, stranger=False: bytes([6, did, 0 if stranger else 1, 1])  # noqa: E731
write("sip_router", "inbound_offline_user", MEDIA_OURS + INBOUND(2) + TIMER_4S + INBOUND(2) + TIMER_200S)
write("sip_router", "inbound_offline_user_from_stranger", MEDIA_OURS + INBOUND(2, True) + TIMER_200S)
write("sip_router", "outbound_answered_bye", MEDIA_OURS + REGISTER_ALICE + INVITE_OUT + TRUNK_180 + TRUNK_200
      + BROWSER_ACK + TIMER_4S + BROWSER_BYE + TIMER_32S + TIMER_200S)
write("sip_router", "outbound_cancelled", MEDIA_OURS + REGISTER_ALICE + INVITE_OUT + TRUNK_180 + BROWSER_CANCEL
      + TRUNK_487 + TIMER_200S)
write("sip_router", "outbound_media_fails", MEDIA_OURS + REGISTER_ALICE + INVITE_OUT + TRUNK_200 + BROWSER_ACK
      + bytes([12]) + TIMER_32S + TIMER_200S)
write("sip_router", "inbound_answered_bye", MEDIA_OURS + REGISTER_ALICE + INBOUND(0) + bytes([8, 1, 0])
      + bytes([8, 2, 0, 1, 1, 0]) + bytes([7, 1, 1]) + bytes([7, 2]) + TIMER_200S)
write("sip_router", "inbound_browser_gone", MEDIA_PASS + REGISTER_ALICE + INBOUND(1) + bytes([11, 0]) + TIMER_200S)
write("sip_router", "no_media_ports", MEDIA_NONE + REGISTER_ALICE + INVITE_OUT + INBOUND(0) + TIMER_200S)
write("sip_router", "options_and_garbage", bytes([9, 1, 0, 1, 9, 0, 0, 9, 0, 1])
      + bytes([13, 5]) + b"\x01\x02\r\n\r\n" + bytes([1]) + TIMER_200S)
