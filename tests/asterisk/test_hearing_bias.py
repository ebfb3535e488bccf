"""Through the real sandbox: every caller turn reaches the recogniser with the conversation's bias
(configured vocabulary, the agents' names, and the question the agent just asked)."""

from __future__ import annotations

import pytest

from convener.speech.bias import BiasContext
from convener.speech.whisper_asr import WhisperAsr
from convener.tools.callcheck import VoiceCaller, spoken_call
from convener.tools.stack import Stack


async def test_turns_are_biased_by_the_conversation(config, sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    config.speech.vocabulary = ["Albuquerque"]
    seen: list[BiasContext] = []
    original = WhisperAsr.transcribe_pcm

    async def spy(self: WhisperAsr, pcm: bytes, sample_rate: int, bias: BiasContext | None = None):  # type: ignore[no-untyped-def]
        if bias is not None:  # convener's turns (the test caller hears replies without a bias)
            seen.append(bias)
        return await original(self, pcm, sample_rate, bias=bias)

    monkeypatch.setattr(WhisperAsr, "transcribe_pcm", spy)
    async with Stack(config) as stack:
        report = await spoken_call(config, ["Book a flight to Denver", "From Boston"], voice=VoiceCaller(config))
    assert report.ok, report
    assert stack.app is not None and stack.app.errors == 0
    assert seen, "the recogniser never got a bias"
    first = seen[0]
    assert first.terms[0] == "Albuquerque" and {"Flights", "Hotels", "Weather"} <= set(first.terms)
    assert first.question == ""
    # the flights agent asked where from; the caller's answer was recognised with that question
    assert any(b.question == "Where are you flying from?" for b in seen[1:]), [b.question for b in seen]
