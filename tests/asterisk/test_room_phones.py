"""Real SIP phones in one room, against the real sandbox Asterisk: two (and three) baresip
phones on the sandbox's PJSIP endpoints (phone1..phone3) dial ``room-NAME`` and join and leave
while replies are spoken; each phone's loudspeaker recording must contain every reply meant for
the room while it was in it, matched piece by piece against what was sent (as in
test_rooms.py: known probe signals fed to the room's voice leg, no speech recognition).

The steps: phone1 alone; each other phone joins *during* a 3 s reply (those already in must
hear all of it across the join), then a reply with it in; then they leave in reverse, again
during a reply, then a reply without them; phone1 leaves. After each run nothing is left in
Asterisk."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

import numpy as np
import pytest
from ast_helpers import assert_clean_since, snapshot, start_app, stop_app
from audio_helpers import probe_signal, segment_match
from baresip_helpers import HAVE_BARESIP, WHY_NOT, Phone, read_heard

from convener.app.application import ConvenerApp
from convener.ari.rest import AriClient

pytestmark = pytest.mark.skipif(not HAVE_BARESIP, reason=WHY_NOT)

MATCH = 0.75  # share of 250 ms pieces found (as test_rooms.py); a lost reply scores 0
LONG_S, SHORT_S = 2.5, 1.0


class RoomRun:
    """One run: phones come and go in room ``room``; what each must have heard is noted."""

    def __init__(self, app: ConvenerApp, ari: AriClient, room: str, seed: int) -> None:
        self.app, self.ari, self.room = app, ari, room
        self.seeds = itertools.count(seed)
        self.present: list[Phone] = []
        self.expected: list[tuple[str, np.ndarray, list[Phone]]] = []
        self.problems: list[str] = []

    async def _in_room(self, phone: Phone) -> bool:
        room = self.app.rooms.rooms.get(self.room)
        if room is None:
            return False
        return any(c.name.startswith(f"PJSIP/{phone.user}-") and c.id in room.members
                   for c in await self.ari.channels())

    async def join(self, phone: Phone) -> None:
        await phone.dial(f"sip:room-{self.room}@127.0.0.1:{phone.sip_port}")
        deadline = time.monotonic() + 10.0
        while not await self._in_room(phone):
            if time.monotonic() > deadline:
                raise AssertionError(f"{phone.user} never reached room {self.room}:\n{phone.log()}")
            await asyncio.sleep(0.02)
        self.present.append(phone)

    async def leave(self, phone: Phone) -> None:
        mark = await phone.hangup()
        self.present.remove(phone)
        await phone.wait_event("CALL_CLOSED", 10.0, since=mark)
        deadline = time.monotonic() + 10.0
        while await self._in_room(phone):
            if time.monotonic() > deadline:
                raise AssertionError(f"{phone.user} still in room {self.room} after hanging up")
            await asyncio.sleep(0.02)

    async def reply(self, label: str, seconds: float,
                    meanwhile: Callable[[], Awaitable[None]] | None = None) -> None:
        """Speak a new probe into the room (``meanwhile`` runs 0.3 s into it). Whoever is in
        the room all the while it plays must hear it."""
        probe = probe_signal(seconds, seed=next(self.seeds))
        before = list(self.present)
        voice = await self.app.room_voice(self.app.rooms.rooms[self.room])
        assert voice.pacer is not None
        t0, rid = time.monotonic(), f"{label}-{time.monotonic()}"
        voice.pacer.feed(rid, probe.tobytes(), 8000)
        voice.pacer.end_reply(rid)
        if meanwhile is not None:
            await asyncio.sleep(0.3)
            await meanwhile()
            if time.monotonic() > t0 + seconds:
                self.problems.append(f"{label}: the join/leave took until after the reply ended")
        await asyncio.sleep(max(0.0, t0 + seconds + 0.6 - time.monotonic()))
        self.expected.append((label, probe, [p for p in before if p in self.present]))

    async def session(self, phones: list[Phone]) -> None:
        first, others = phones[0], phones[1:]
        await self.join(first)
        await asyncio.sleep(0.3)
        await self.reply(f"{first.user} alone", SHORT_S)
        for p in others:
            await self.reply(f"{p.user} joining", LONG_S, lambda p=p: self.join(p))
            await self.reply(f"{p.user} in", SHORT_S)
        for p in reversed(others):
            await self.reply(f"{p.user} leaving", LONG_S, lambda p=p: self.leave(p))
            await self.reply(f"{p.user} left", SHORT_S)
        await self.leave(first)

    def judge(self, heard: dict[Phone, np.ndarray]) -> tuple[list[str], list[float]]:
        """(replies not heard, every share) over what each phone recorded in this run."""
        bad, shares = list(self.problems), []
        for label, probe, listeners in self.expected:
            for p in listeners:
                share = segment_match(heard[p], probe) if len(heard[p]) else 0.0
                shares.append(share)
                if share < MATCH:
                    bad.append(f"{label}: {p.user} heard {share:.0%}")
        return bad, shares


async def _repeat(config, creds, ari, tmp_path, count: int, runs: int) -> None:
    app = await start_app(config)
    phones = [Phone(f"phone{i + 1}", creds.sip_password, creds.sip_port, tmp_path / f"phone{i + 1}")
              for i in range(count)]
    try:
        await asyncio.gather(*(p.start() for p in phones))
        bad, shares = [], []
        t0 = time.monotonic()
        for i in range(runs):
            before = await snapshot(ari)
            recorded = {p: set(p.recordings()) for p in phones}
            run = RoomRun(app, ari, f"sp{count}", seed=1000 * i + 100)
            await run.session(phones)
            await asyncio.sleep(0.3)  # each phone's recording is closed with its call
            heard = {p: np.concatenate([read_heard(f) for f in p.recordings() if f not in recorded[p]]
                                       or [np.zeros(0, dtype=np.int16)]) for p in phones}
            run_bad, run_shares = run.judge(heard)
            bad += [f"run {i}: {b}" for b in run_bad]
            shares += run_shares
            await assert_clean_since(ari, app, before)
        per_run = (time.monotonic() - t0) / runs
        print(f"{count} SIP phones, {runs} runs: {len(shares) - len(bad)}/{len(shares)} replies heard "
              f"by each phone in the room; lowest share {min(shares):.2f}; {per_run:.1f} s a run; "
              f"failures {bad}")
        assert not bad, f"{len(bad)} replies not heard in {runs} runs: {bad}"
    finally:
        for p in phones:
            await p.close()
        await stop_app(app)


@pytest.mark.parametrize("count", [2, 3])
async def test_sip_phones_hear_every_reply_while_phones_come_and_go(config, sandbox, creds, ari,
                                                                    tmp_path, count):
    await _repeat(config, creds, ari, tmp_path, count, runs=1)


@pytest.mark.soak
@pytest.mark.timeout(470)  # 3 phones: about 22 s a run
@pytest.mark.parametrize("count", [2, 3])
async def test_sip_phones_hear_every_reply_20_times(config, sandbox, creds, ari, tmp_path, count):
    await _repeat(config, creds, ari, tmp_path, count, runs=20)
