#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""10,000 allocate / refresh / delete cycles (RFC 8656 §7, §8), every tenth with a
ChannelBind and a relayed ChannelData, over 8 client 5-tuples so that both workers take part;
once with accounting off (the TURN core and net alone) and once with it on (the SQLite store).

scripts/test runs it twice:
- on the ASan build (build-asan, TURNBRIDGE_BIN): turnbridge is stopped by SIGTERM at the end,
  so LeakSanitizer checks the heap at exit; a report fails the harness's log check and the
  exit code (LSan exits 23). The RSS check is skipped there: ASan's quarantine keeps freed
  memory on purpose.
- on the release build: RSS after the cycles stays within 256 KiB of RSS after a 500-cycle
  warm-up with accounting off, and within 4 MiB with it on (SQLite's page cache grows with the
  database up to its 2 MiB per connection, then stays).

Bounded: CYCLES cycles and DEADLINE seconds. Only loopback.

interop-timeout: 240 (read by scripts/test)
"""
import socket
import time

from harness import PASSWORD, USER, Turnbridge, main_guard, rss, sanitized
from stun_client import TurnClient, error_code

CYCLES = 10_000
CLIENTS = 8
WARMUP = 500
DEADLINE = 170.0            # seconds for all the cycles
CORE_RSS_BOUND = 256 * 1024       # measured: 0 KiB over 40,000 cycles
STORE_RSS_BOUND = 4 * 1024 * 1024  # measured: about 2.5 MiB, the SQLite page cache


def cycle(client, n, peer):
    """One allocation's life; returns the name of the step that went wrong, or None."""
    try:
        client.allocate(lifetime=300)
    except Exception as e:  # StunError or TimeoutError
        return f"allocate: {e}"
    if n % 10 == 0:
        if error_code(client.channel_bind(0x4000 + n % 0x3FFF, peer)):
            return "channel bind"
        client.send_channel_data(0x4000 + n % 0x3FFF, b"soak %d" % n)
    if error_code(client.refresh(600)):
        return "refresh"
    if error_code(client.refresh(0)):
        return "delete"
    return None


def soak(results, label, extra_server, rss_bound):
    """CYCLES cycles on a fresh server; checks RSS growth from after WARMUP cycles to the end
    against `rss_bound` (release build only), then stops the server by SIGTERM."""
    with Turnbridge(extra_server=extra_server) as server:
        # A UDP sink as the peer: it only needs to exist.
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        peer = sink.getsockname()
        clients = [TurnClient(("127.0.0.1", server.port), USER, PASSWORD) for _ in range(CLIENTS)]
        errors, first_error, done = 0, None, 0
        before = baseline = rss(server.proc.pid)
        start = time.monotonic()
        try:
            for n in range(CYCLES):
                if time.monotonic() - start > DEADLINE / 2:
                    break
                err = cycle(clients[n % CLIENTS], n, peer)
                if err:
                    errors += 1
                    first_error = first_error or f"cycle {n}: {err}"
                done += 1
                if n + 1 == WARMUP:
                    baseline = rss(server.proc.pid)
            took = time.monotonic() - start
            time.sleep(0.5)
            after = rss(server.proc.pid)
        finally:
            for c in clients:
                c.close()
            sink.close()
        results.check(f"{label}: {CYCLES} allocate/refresh/delete cycles within {DEADLINE / 2:.0f} s",
                      done == CYCLES, f"{done} cycles in {took:.1f} s")
        results.check(f"{label}: every cycle succeeded", errors == 0, f"{errors} failed; first: {first_error}")
        results.check(f"{label}: turnbridge still running", server.alive(), "" if server.alive() else server.log_tail(10))
        summary = (f"{before >> 10} KiB at start, {baseline >> 10} KiB after {WARMUP} cycles, "
                   f"{after >> 10} KiB after {done}")
        if sanitized():
            print(f"# {label}: RSS {summary} (not checked: ASan's quarantine holds freed memory)", flush=True)
        else:
            results.check(f"{label}: RSS after the cycles is within {rss_bound >> 10} KiB of the warm-up level",
                          after - baseline < rss_bound, summary)
        # SIGTERM: the server frees everything and, on the ASan build, LeakSanitizer runs.
        rc = server.stop()
        results.check(f"{label}: turnbridge exits 0 on SIGTERM (with ASan: LeakSanitizer found no leak)",
                      rc == 0, f"exit code {rc}\n{server.log_tail(30)}" if rc else "exit code 0")


def test(results):
    # Without the store the core's memory must not move at all...
    soak(results, "accounting off", "\n[accounting]\nenabled = false\n", CORE_RSS_BOUND)
    # ...with it, SQLite's page cache (2 MiB per connection by default) fills up as the
    # database grows, then stays (measured: flat from about 12,000 cycles on).
    soak(results, "accounting on", "", STORE_RSS_BOUND)


if __name__ == "__main__":
    main_guard(test)
