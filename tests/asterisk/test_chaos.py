"""Chaos soak: convener SIGKILLed at random points during many spoken calls, restarted each time.

At the end every caller was either resumed (heard convener again after a kill) or handed back
to the dialplan; no channel or bridge is left in Asterisk, no UDP socket in convener and no
floor state in the store; every turn convener recognised is in the transcripts.

    CONVENER_CHAOS_CALLS=50 CONVENER_CHAOS_KILLS=10 pytest -m soak tests/asterisk/test_chaos.py -s

(defaults 50 calls, 10 kills, 5 calls at a time; each call in a room of its own).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import sqlite3
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
from run_helpers import pid_sockets, spoken_rig

from convener.tools.callcheck import CallReport, _turn
from convener.tools.testcall import TestCaller

pytestmark = pytest.mark.soak

LINES = ["Book a flight to Denver", "From Boston"]


@dataclass
class Outcome:
    room: str
    placed: float = 0.0
    ended: float = 0.0
    turns_heard: int = 0
    heard_after_kill: bool = False
    fallback: bool = False
    error: str = ""
    voice_at: list[float] = field(default_factory=list)


async def test_chaos_kills_during_spoken_calls(creds, tmp_path, ari):
    calls = int(os.environ.get("CONVENER_CHAOS_CALLS", "50"))
    kills = int(os.environ.get("CONVENER_CHAOS_KILLS", "10"))
    parallel = int(os.environ.get("CONVENER_CHAOS_PARALLEL", "5"))
    rng = random.Random(int(os.environ.get("CONVENER_CHAOS_SEED", "13")))
    before = {c.id for c in await ari.channels()}
    rig = await spoken_rig(tmp_path, creds, LINES)
    agents, convener, config, voice, audio = rig.agents, rig.convener, rig.config, rig.voice, rig.audio
    kill_times: list[float] = []
    outcomes: list[Outcome] = []
    done = asyncio.Event()

    async def one_call(caller: TestCaller, i: int) -> None:
        o = Outcome(room=f"chaos{i}-{uuid.uuid4().hex[:4]}", placed=time.monotonic())
        outcomes.append(o)
        leg = await caller.place(config.calls.dialplan_extension, config.calls.dialplan_context, room=o.room)
        try:
            await leg.wait_answered()
            media = await leg.open_media(config.media)
            try:
                await leg.wait_in_bridge(timeout=30)  # convener may be restarting
            except TimeoutError:
                pass
            first = await media.wait_voice_after(time.monotonic(), 30.0)
            if first is not None:
                await media.wait_quiet(1.2, 15.0, since=first)
            report = CallReport()
            for said in LINES:
                if leg.ended:
                    break
                await _turn(leg, voice, said, audio[said], report, 25.0, 1.2, lambda _m: None)
            o.turns_heard = sum(t.latency_ms is not None for t in report.turns)
            o.voice_at = [t.heard_at for t in report.turns if t.heard_at is not None]
            if first is not None:
                o.voice_at.append(first)
        except Exception as e:
            o.error = f"{type(e).__name__}: {e}"
        finally:
            apps = [a for a, _ in leg.dialplan]
            o.fallback = "Stasis" in apps and apps.index("Stasis") < len(apps) - 1  # the dialplan went on
            o.ended = time.monotonic()
            await leg.hangup()

    async def chaos() -> None:
        for _ in range(kills):
            try:
                await asyncio.wait_for(done.wait(), rng.uniform(8.0, 25.0))
                return
            except TimeoutError:
                pass
            kill_times.append(time.monotonic())
            convener.kill()
            await convener.proc.wait()  # type: ignore[union-attr]
            await convener.start()
            await convener.ready(90)

    try:
        await convener.start()
        await convener.ready()
        async with TestCaller(creds.ari_url, creds.ari_user, creds.ari_password,
                              app=f"convener-caller-{uuid.uuid4().hex[:8]}") as caller:
            chaos_task = asyncio.create_task(chaos())
            gate = asyncio.Semaphore(parallel)

            async def gated(i: int) -> None:
                async with gate:
                    await one_call(caller, i)

            await asyncio.gather(*(gated(i) for i in range(calls)))
            done.set()
            await chaos_task
        await convener.ready(90)
        await asyncio.sleep(2.0)  # the last hang-ups reach convener
        assert convener.proc is not None
        udp = pid_sockets(convener.proc.pid, "udp")
    finally:
        code = await convener.stop()
        await agents.close()
    log = convener.tail(10_000_000)
    # Every caller up during a kill was resumed (heard convener after it) or handed back.
    for o in outcomes:
        hit = [k for k in kill_times if o.placed < k < o.ended]
        o.heard_after_kill = any(v > k for k in hit for v in o.voice_at)
        if o.turns_heard == len(LINES):
            continue  # served to the end (a kill while it hung up changes nothing for it)
        if hit:
            assert o.heard_after_kill or o.fallback, (o, hit)
        else:
            assert o.fallback, o  # no kill during it: served, or placed while convener was down
    print(f"{len(outcomes)} calls, {len(kill_times)} kills; calls up during a kill: "
          f"{sum(any(o.placed < k < o.ended for k in kill_times) for o in outcomes)}, resumed "
          f"{sum(o.heard_after_kill for o in outcomes)}, handed back {sum(o.fallback for o in outcomes)}")
    assert code == 0, log[-3000:]
    assert len(kill_times) == kills, f"only {len(kill_times)} kills happened: raise the calls"
    assert udp == [], f"convener holds UDP sockets with no call up: {udp}"
    # Every recognised turn is in the transcripts.
    recognised = Counter(m.group(1) for m in re.finditer(r"caller said '([^']*)'", log))
    db = sqlite3.connect(tmp_path / "transcripts.sqlite3")
    try:
        kept = Counter(t for (t,) in db.execute("SELECT text FROM turns WHERE speaker = 'caller'"))
        open_states = db.execute("SELECT COUNT(*) FROM floor_states").fetchone()[0]
    finally:
        db.close()
    assert not (recognised - kept), f"recognised but not in the transcripts: {recognised - kept}"
    print(f"recognised turns {sum(recognised.values())}, all in the transcripts; floor states left {open_states}")
    assert open_states == 0  # ended with their calls, or as not resumed after a restart
    deadline = time.monotonic() + 15
    while True:
        bridges = [b.id for b in await ari.bridges() if b.id.startswith("convener-")]
        channels = [c.id for c in await ari.channels() if c.id not in before]
        if not bridges and not channels:
            break
        assert time.monotonic() < deadline, (bridges, channels)
        await asyncio.sleep(0.2)
