"""Soak: 500 calls through the sandbox with the full voice pipeline, 20 at a time.

Run apart from the default suite: ``pytest -m soak``. Zero leaked Asterisk channels
or bridges, zero leaked sockets, and the process's memory grows by less than 64 MiB over the
last 400 calls (the first 100 fill the pools of VAD models, threads and connections)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asterisk"))

from ast_helpers import assert_clean

from convener.tools.stack import Stack
from convener.tools.testcall import TestCaller

pytestmark = pytest.mark.soak

CALLS = 500
CONCURRENCY = 20
MEMORY_BOUND_MB = 64
WARMUP = 100  # pools (VAD models, threads, HTTP connections) fill up over the first calls


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def socket_count() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


async def test_500_calls_leak_nothing(config, sandbox, creds, ari):
    config.voice.greeting = "Hello."
    async with Stack(config) as stack:
        app = stack.app
        assert app is not None
        async with TestCaller(creds.ari_url, creds.ari_user, creds.ari_password) as caller:

            async def one() -> None:
                leg = await caller.place("100")
                await leg.wait_in_bridge(20)
                await asyncio.sleep(0.5)
                await leg.hangup()
                await leg.wait_ended(20)

            started = time.monotonic()
            base_mem = base_sockets = None
            for done in range(0, CALLS, CONCURRENCY):
                await asyncio.gather(*(one() for _ in range(CONCURRENCY)))
                await assert_clean(ari, app, timeout=20)
                if base_mem is None and done + CONCURRENCY >= WARMUP:
                    base_mem, base_sockets = rss_mb(), socket_count()
                if (done // CONCURRENCY) % 5 == 4:
                    print(f"soak: {done + CONCURRENCY} calls, RSS {rss_mb():.0f} MiB, "
                          f"{socket_count()} sockets, {time.monotonic() - started:.0f} s", flush=True)
            print(f"soak: {app.setup_failures} caller(s) handed back to the dialplan after a failed setup")
            assert app.calls_total == CALLS and app.errors == 0
            assert app.setup_failures <= CALLS // 50  # under 2 %: Asterisk refusing a snoop under load
            growth = rss_mb() - base_mem
            print(f"soak: {CALLS} calls in {time.monotonic() - started:.0f} s, RSS growth over the last "
                  f"{CALLS - WARMUP} calls {growth:.1f} MiB")
            assert growth < MEMORY_BOUND_MB
            # The caller's pooled HTTP connections may vary by a few; RTP sockets must not grow.
            assert socket_count() <= base_sockets + 5
