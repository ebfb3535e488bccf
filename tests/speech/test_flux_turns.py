"""Flux drives the end of turn: EagerEndOfTurn prepares, TurnResumed cancels, EndOfTurn is final.

Against the local Deepgram protocol server (tests/fakes/deepgram_server.py), which sends the
eager events when ``eager_eot_threshold`` is in the query."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from convener.speech.asr import AsrEvent, EagerEndOfTurn, EndOfTurn, FinalTranscript, TurnResumed
from convener.speech.channel import frames
from convener.speech.deepgram_flux import DeepgramFluxAsr
from convener.speech.settings import DeepgramSettings
from convener.speech.turns.flux import Cancel, Final, FluxTurnGate, Prepare
from fakes.deepgram_server import FakeDeepgram

KEY = "dg-test-key-flux"
RATE = 8000


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgram]:
    server = FakeDeepgram(api_key=KEY, transcripts=["i'd like to book a flight to denver please"])
    await server.start()
    yield server
    await server.stop()


def voice(ms: int) -> bytes:
    t = np.arange(RATE * ms // 1000) / RATE
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return b"\0\0" * (RATE * ms // 1000)


async def events_until_end(session: object, limit: float = 5.0) -> list[AsrEvent]:
    out: list[AsrEvent] = []

    async def collect() -> None:
        async for ev in session.events():  # type: ignore[attr-defined]
            out.append(ev)
            if isinstance(ev, EndOfTurn):
                return

    await asyncio.wait_for(collect(), limit)
    return out


async def test_eager_then_resumed_then_final_through_the_gate(fake: FakeDeepgram) -> None:
    asr = DeepgramFluxAsr(DeepgramSettings(api_key=KEY, base_url=fake.base_url))
    session = await asr.open_session(RATE)
    try:
        # "I'd like to book a flight to" … 300 ms … "Denver, please" … silence
        for f in frames(voice(900) + silence(300) + voice(800) + silence(700), RATE):
            await session.feed(f)
        events = await events_until_end(session)
    finally:
        await session.close()
        await asr.aclose()
    assert fake.connections[0].params["eager_eot_threshold"] == "0.5"
    kinds = [type(e) for e in events if isinstance(e, EagerEndOfTurn | TurnResumed | EndOfTurn)]
    assert kinds == [EagerEndOfTurn, TurnResumed, EagerEndOfTurn, EndOfTurn]
    gate = FluxTurnGate()
    actions = [a for e in events if (a := gate.on_event(e)) is not None]
    assert [type(a) for a in actions] == [Prepare, Cancel, Prepare, Final]
    assert actions[1].text == actions[0].text  # what was prepared is what gets dropped
    final = actions[-1]
    assert final.text == "i'd like to book a flight to denver please"  # the whole turn, once
    assert gate.prepares == 2 and gate.cancels == 1


def test_nothing_is_final_before_end_of_turn() -> None:
    gate = FluxTurnGate()
    stream: list[AsrEvent] = [EagerEndOfTurn("book a flight to"), TurnResumed(),
                              EagerEndOfTurn("book a flight to denver"),
                              FinalTranscript("book a flight to denver", 0.9)]
    assert not any(isinstance(gate.on_event(e), Final) for e in stream)
    assert gate.prepared == "book a flight to denver"
    final = gate.on_event(EndOfTurn(""))
    assert final == Final("book a flight to denver", prepared=True) and gate.hits == 1
    assert gate.prepared is None
    assert gate.on_event(TurnResumed()) is None  # nothing prepared: nothing to cancel


def test_eager_events_can_be_turned_off(fake: FakeDeepgram) -> None:
    from convener.speech.deepgram_flux import DeepgramFluxSession

    s = DeepgramFluxSession.__new__(DeepgramFluxSession)
    s.settings, s.encoding, s.sample_rate = DeepgramSettings(flux_eager_eot_threshold=0), "mulaw", RATE
    s.bias = None
    assert "eager_eot_threshold" not in s.params()
