"""``convener demo``: the whole thing on a fresh machine, on the offline defaults.

Starts the sandbox Asterisk (building it the first time), the example agents and convener, then
places a test call that books a flight to Denver turn by turn, printing who said what with the
latency the caller experienced, and the per-stage breakdown convener recorded for each turn.
"""

from __future__ import annotations

import asyncio
import sys

from convener.config import Config

SCRIPT = (
    "Book a flight to Denver",
    "From Boston",
    "Next Friday",
    "Yes, please book it",
    "What is the weather in Denver",
)


def _out(msg: str) -> None:
    print(msg, flush=True)


def _progress(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


async def run_demo(config: Config, items: tuple[str, ...] = SCRIPT, keep: bool = False) -> int:
    from convener.sandbox.runtime import Sandbox
    from convener.tools.callcheck import spoken_call
    from convener.tools.stack import Stack

    sandbox = Sandbox(progress=_progress)
    was_running = bool(sandbox.pid())
    creds = await asyncio.to_thread(sandbox.up)
    config.ari.url, config.ari.user, config.ari.password = creds.ari_url, creds.ari_user, creds.ari_password
    try:
        async with Stack(config, progress=_progress) as stack:
            _out("--- call: dialling 100 ---")
            report = await spoken_call(config, list(items), progress=_out)
            _out("--- where the time went (convener's own marks, ms) ---")
            assert stack.app is not None
            for timings, text in stack.app.turns:
                stages = timings.breakdown_ms()
                _out(f"{text[:40]!r}: " + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()))
            lat = [t.latency_ms for t in report.turns if t.latency_ms is not None]
            if lat:
                lat.sort()
                _out(f"--- {len(lat)} turns, latency at the caller: median {lat[len(lat) // 2]:.0f} ms, "
                     f"max {lat[-1]:.0f} ms ---")
            if report.error:
                _out(report.error)
            return 0 if report.ok else 1
    finally:
        if not keep and not was_running:
            await asyncio.to_thread(sandbox.down)
