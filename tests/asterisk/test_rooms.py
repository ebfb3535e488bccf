"""Rooms with several callers, against the real sandbox Asterisk: while callers join and leave,
every caller in the room hears every reply spoken into it, matched piece by piece against what
was sent; and nothing is left behind.

Each reply is a known probe signal fed to the room's voice leg (the path every agent reply
takes); the callers listen through the test caller's own RTP ear. Phases: A alone, then B (and C)
joining, then leaving again: the room bridge's technology would change at each of those steps
without the room's anchor (docs/decisions.md, "Rooms")."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from ast_helpers import leftovers, wait_until
from audio_helpers import probe_signal, segment_match

from convener.app.application import ConvenerApp
from convener.app.listener import CallerListener
from convener.app.testcall import CallerLeg, CallerMedia, TestCaller

PROBE = probe_signal(1.0, seed=11)
MATCH = 0.75  # share of 250 ms pieces found; a lost phase scores 0


async def _app(config) -> ConvenerApp:
    app = ConvenerApp(config, feature_factories=[lambda call: CallerListener()])
    app._task = asyncio.create_task(app.run())  # type: ignore[attr-defined]
    await asyncio.wait_for(app.stream.connected.wait(), 10)
    return app


async def _stop(app: ConvenerApp) -> None:
    await app.stop()
    await asyncio.wait_for(app._task, 15)  # type: ignore[attr-defined]


async def _join(caller: TestCaller, room: str) -> tuple[CallerLeg, CallerMedia]:
    leg = await caller.place(room=room)
    await leg.wait_answered()
    media = await leg.open_media()
    await leg.wait_in_bridge()
    return leg, media


async def _reply(app: ConvenerApp, room: str, listeners: dict[str, CallerMedia]) -> dict[str, float]:
    """Speak the probe into the room; how much of it each listener heard."""
    voice = await app.room_voice(app.rooms.rooms[room])
    assert voice.pacer is not None
    t0 = time.monotonic()
    rid = f"probe-{t0}"
    voice.pacer.feed(rid, PROBE.tobytes(), 8000)
    voice.pacer.end_reply(rid)
    await asyncio.sleep(len(PROBE) / 8000 + 0.6)
    heard = {}
    for name, media in listeners.items():
        x = np.frombuffer(media.audio_between(t0, time.monotonic()), dtype="<i2")
        heard[name] = round(segment_match(x, PROBE), 2) if len(x) else 0.0
    return heard


async def _session(app: ConvenerApp, caller: TestCaller, room: str, callers: int) -> list[tuple[str, dict]]:
    """A alone; the others join one by one; then leave one by one. A reply in every phase."""
    phases: list[tuple[str, dict]] = []
    a = await _join(caller, room)
    present = {"A": a}
    phases.append(("A alone", await _reply(app, room, {"A": a[1]})))
    others = "BCD"[: callers - 1]
    for name in others:
        present[name] = await _join(caller, room)
        await asyncio.sleep(0.2)
        phases.append((f"{name} joined", await _reply(app, room, {k: v[1] for k, v in present.items()})))
    for name in reversed(others):
        leg, _ = present.pop(name)
        await leg.hangup()
        await leg.wait_ended()
        await asyncio.sleep(0.2)
        phases.append((f"{name} left", await _reply(app, room, {k: v[1] for k, v in present.items()})))
    await a[0].hangup()
    await a[0].wait_ended()
    return phases


async def _snapshot(ari) -> set[str]:
    left = await leftovers(ari)
    return set(left["channels"]) | set(left["bridges"])


async def _assert_clean_since(ari, app: ConvenerApp, before: set[str], timeout: float = 5.0) -> None:
    """Nothing this test made is left: no call tracked, no room state, no channel or bridge
    that was not in Asterisk before (another suite's leftovers are not ours to judge)."""
    await wait_until(lambda: not app.calls and not app.rooms.rooms and not app.rooms.channel_ids,
                     timeout)
    deadline = time.monotonic() + timeout
    while (new := await _snapshot(ari) - before):
        if time.monotonic() > deadline:
            raise AssertionError(f"leaked resources: {sorted(new)}")
        await asyncio.sleep(0.05)


def _failures(phases: list[tuple[str, dict]]) -> list[str]:
    return [f"{phase}: {who} heard {share:.0%}" for phase, heard in phases
            for who, share in heard.items() if share < MATCH]


async def _repeat(config, caller, ari, callers: int, runs: int) -> None:
    app = await _app(config)
    try:
        bad = []
        for i in range(runs):
            before = await _snapshot(ari)
            bad += [f"run {i}: {f}" for f in _failures(await _session(app, caller, "r1", callers))]
            await _assert_clean_since(ari, app, before)
        assert not bad, f"{len(bad)} replies not heard in {runs} runs: {bad}"
    finally:
        await _stop(app)


@pytest.mark.parametrize(("callers", "runs"), [(2, 2), (3, 1)])
async def test_every_caller_hears_every_reply_while_callers_come_and_go(config, sandbox, caller, ari,
                                                                        callers, runs):
    await _repeat(config, caller, ari, callers, runs=runs)


@pytest.mark.soak
@pytest.mark.parametrize("callers", [2, 3])
async def test_every_reply_heard_20_times(config, sandbox, caller, ari, callers):
    await _repeat(config, caller, ari, callers, runs=20)


async def test_twenty_join_leave_cycles_leave_nothing(config, sandbox, caller, ari):
    """A stays; B joins and leaves 20 times: the room (bridge, anchor, voice leg) lives on, and
    once A is gone too nothing of it is left in Asterisk."""
    app = await _app(config)
    try:
        before = await _snapshot(ari)
        a, _ = await _join(caller, "r2")
        room = app.rooms.rooms["r2"]
        await app.room_voice(room)
        for _ in range(20):
            b = await caller.place(room="r2")
            await b.wait_in_bridge()
            await b.hangup()
            await b.wait_ended()
        bridge = await ari.bridge(room.bridge_id)
        assert set(bridge.channels) == {a.remote_id, room.voice.channel_id, room.anchor.channel_id}
        await a.hangup()
        await _assert_clean_since(ari, app, before)
    finally:
        await _stop(app)


# -- what only one caller hears -----------------------------------------------------------------


def _voiced_s(media: CallerMedia, start: float, end: float) -> float:
    """Seconds of voice (frames above the caller's voice level) heard in [start, end]."""
    return sum(0.02 for f in media.heard if start <= f.at <= end and f.peak >= media.VOICE_PEAK)


async def test_greeting_and_private_utterance_reach_one_caller_only(config, sandbox, caller):
    """The greeting is played to the caller who joins, not to the room; an OFP private
    utterance to one caller (``private: true``, ``to.speakerUri``) is heard by that caller only;
    a reply to the room is heard by both."""
    from convener.app.stack import Stack
    from convener.ofp.session import AgentReply

    async with Stack(config, agents=False) as stack:
        app = stack.app
        assert app is not None
        a, am = await _join(caller, "r3")
        assert await am.wait_voice_after(time.monotonic() - 1, 8.0), "A heard no greeting"
        assert await am.wait_quiet(1.0, 15.0)
        t_b = time.monotonic()
        b, bm = await _join(caller, "r3")
        first = await bm.wait_voice_after(t_b, 8.0)
        assert first is not None, "B heard no greeting"
        assert await bm.wait_quiet(1.0, 15.0, since=first)
        assert _voiced_s(bm, t_b, time.monotonic()) > 1.0
        assert _voiced_s(am, t_b, time.monotonic()) == 0.0, "A heard B's greeting"

        conv = app.rooms.rooms["r3"].state["conversation"]
        b_uri = next(c.speaker_uri for c in app.calls.values() if c.id == b.remote_id)
        for to, hears, deaf in ((b_uri, bm, am), (None, bm, am)):
            t0 = time.monotonic()
            conv._speak_reply(AgentReply(agent_name="Weather", speaker_uri="tag:test,2026:w",
                                         text="This one is just for you.", private_to=to), None)
            got = await hears.wait_voice_after(t0, 8.0)
            assert got is not None, f"the addressee heard nothing (private_to={to})"
            assert await hears.wait_quiet(1.0, 15.0, since=got)
            other = _voiced_s(deaf, t0, time.monotonic())
            if to is None:
                assert other > 0.5, "a reply to the room did not reach A"
            else:
                assert other == 0.0, "A heard B's private utterance"
        await b.hangup()
        await a.hangup()


async def test_two_callers_with_different_requests_each_get_their_own_answer(config, sandbox, caller):
    """Spoken, through the example agents: A books a flight to Denver, B asks for one to Miami
    in the same room; A's booking goes on with A's words only (Boston to Denver, never Miami)."""
    from convener.app.callcheck import CallReport, VoiceCaller, _turn
    from convener.app.stack import Stack

    voice = VoiceCaller(config)
    await voice.warm()
    async with Stack(config) as stack:
        assert stack.app is not None
        legs = {}
        for name in "AB":
            leg, media = await _join(caller, "r4")
            first = await media.wait_voice_after(time.monotonic() - 1, 8.0)
            assert first is not None, f"{name} heard no greeting"
            assert await media.wait_quiet(1.2, 15.0, since=first)
            legs[name] = leg
        report = CallReport()
        for who, said in (("A", "Book a flight to Denver"), ("B", "Book a flight to Miami"),
                          ("A", "From Boston"), ("A", "Next Friday")):
            pcm = await voice.speak(said)
            await _turn(legs[who], voice, said, pcm, report, 10.0, 1.2, lambda m: None)
        heard = [t.heard.lower() for t in report.turns]
        assert "denver" in heard[0], heard
        assert "miami" in heard[1], heard
        assert "date" in heard[2] or "when" in heard[2], heard
        assert "boston" in heard[3] and "denver" in heard[3] and "miami" not in heard[3], heard
