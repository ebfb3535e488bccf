"""Benchmark: call setup through the real sandbox Asterisk.

Prints p50/p95 over N calls (default 100) of
- originate → caller leg answered (Asterisk + dialplan, not convener),
- StasisStart received by convener → caller in the room's bridge (convener's own work),
- originate → caller in the bridge (what a caller waits for, including the dialplan's Answer()).

Run: .venv/bin/python bench/call_setup.py [--calls 100] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys

from convener.app.application import ConvenerApp
from convener.config import load_config
from convener.sandbox.runtime import Sandbox
from convener.tools.testcall import TestCaller


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def line(name: str, values: list[float]) -> str:
    return (f"{name:<42} p50 {pct(values, 50):8.1f} ms   p95 {pct(values, 95):8.1f} ms   "
            f"mean {statistics.fmean(values):8.1f} ms   n={len(values)}")


async def main(calls: int, concurrency: int) -> int:
    creds = Sandbox().up()
    cfg = load_config(None, env={})
    cfg.ari.url, cfg.ari.user, cfg.ari.password = creds.ari_url, creds.ari_user, creds.ari_password
    app = ConvenerApp(cfg)
    task = asyncio.create_task(app.run())
    await asyncio.wait_for(app.stream.connected.wait(), 10)
    answered: list[float] = []
    in_bridge: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    async with TestCaller(creds.ari_url, creds.ari_user, creds.ari_password) as caller:

        async def one() -> None:
            async with sem:
                leg = await caller.place("100")
                answered.append(await leg.wait_answered() * 1000)
                await leg.wait_in_bridge()
                assert leg.in_bridge_at is not None
                in_bridge.append((leg.in_bridge_at - leg.placed_at) * 1000)
                await leg.hangup()
                await leg.wait_ended()

        for i in range(0, calls, 10):
            await asyncio.gather(*(one() for _ in range(min(10, calls - i))))
            print(f"  {min(i + 10, calls)}/{calls} calls", file=sys.stderr, flush=True)
    for _ in range(100):
        if not app.calls:
            break
        await asyncio.sleep(0.05)
    await app.stop()
    await task
    setup = list(app.setup_times)
    print(f"call setup over {calls} calls, concurrency {concurrency}, Asterisk sandbox on loopback")
    print(line("originate -> caller answered", answered))
    print(line("StasisStart -> caller in bridge (convener)", setup))
    print(line("originate -> caller in bridge (end to end)", in_bridge))
    print(f"unhandled errors: {app.errors}")
    return 0 if app.errors == 0 else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=1)
    a = ap.parse_args()
    sys.exit(asyncio.run(main(a.calls, a.concurrency)))
