"""A turn's words wait (bounded) for the beam's second decode; the decision never does."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from convener.app.conversation import CallerVoice
from convener.config import load_config
from convener.speech.asr import FinalTranscript


def voice(wait_ms: int) -> SimpleNamespace:
    config = load_config(None, env={})
    config.speech.whisper.refine_wait_ms = wait_ms
    return SimpleNamespace(app=SimpleNamespace(config=config))


CALL = SimpleNamespace(id="c1")


async def test_the_beams_words_become_the_turns_words() -> None:
    better = asyncio.get_running_loop().create_future()
    better.set_result(FinalTranscript("Show me flights to Paris in June.", 0.8))
    greedy = FinalTranscript("Show me flight to Paris and June.", 0.6, refined=better)
    got = await CallerVoice._refined(voice(400), CALL, greedy)  # type: ignore[arg-type]
    assert got.text == "Show me flights to Paris in June."


async def test_late_or_failed_beam_words_leave_the_greedy_ones() -> None:
    never = asyncio.get_running_loop().create_future()
    greedy = FinalTranscript("a flight to Denver", 0.6, refined=never)
    t0 = asyncio.get_running_loop().time()
    assert (await CallerVoice._refined(voice(50), CALL, greedy)).text == "a flight to Denver"  # type: ignore[arg-type]
    assert asyncio.get_running_loop().time() - t0 < 1.0
    assert not never.cancelled()  # shielded: the route-ahead callback may still use it
    failed = asyncio.get_running_loop().create_future()
    failed.set_exception(RuntimeError("decoder gone"))
    greedy = FinalTranscript("a flight to Denver", 0.6, refined=failed)
    assert (await CallerVoice._refined(voice(400), CALL, greedy)).text == "a flight to Denver"  # type: ignore[arg-type]
    plain = FinalTranscript("a flight to Denver", 0.9)
    assert await CallerVoice._refined(voice(400), CALL, plain) is plain  # type: ignore[arg-type]
