"""The TTS cache: repeated replies from memory, cut syntheses never kept, bounded by bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from convener.speech.tts import TtsChunk
from convener.speech.tts_cache import CachedTts, cached


class Counting:
    name, sample_rate, supports_ssml = "fake", 8000, False

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def warm(self) -> None:
        pass

    async def synthesize(self, text: str, cancel: asyncio.Event | None = None) -> AsyncIterator[TtsChunk]:
        self.calls.append(text)
        for i, sentence in enumerate(text.split(". ")):
            if cancel is not None and cancel.is_set():
                return
            yield TtsChunk(sentence.encode() * 100, 8000, sentence, i)


async def collect(tts: CachedTts, text: str, cancel: asyncio.Event | None = None) -> list[TtsChunk]:
    out = []
    async for c in tts.synthesize(text, cancel):
        out.append(c)
        if cancel is not None and len(out) == 1:
            cancel.set()  # barge-in after the first sentence
    return out


async def test_a_repeated_reply_is_not_synthesised_again() -> None:
    inner = Counting()
    tts = CachedTts(inner, 1_000_000)
    first = await collect(tts, "Connecting you to Flights. One moment")
    again = await collect(tts, "Connecting you to Flights. One moment")
    assert again == first and inner.calls == ["Connecting you to Flights. One moment"] and tts.hits == 1
    assert tts.name == "fake" and tts.sample_rate == 8000


async def test_a_cut_synthesis_is_not_kept() -> None:
    inner = Counting()
    tts = CachedTts(inner, 1_000_000)
    assert len(await collect(tts, "A. B. C", asyncio.Event())) == 1
    assert len(await collect(tts, "A. B. C")) == 3
    assert inner.calls == ["A. B. C", "A. B. C"]


async def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    inner = Counting()
    tts = CachedTts(inner, 4000)  # one text is ~1000-1200 bytes here
    for t in ("one", "two", "three", "one", "four", "five"):
        await collect(tts, t * 3)
    assert tts._bytes <= 4000
    inner.calls.clear()
    await collect(tts, "one" * 3)  # used recently: kept
    await collect(tts, "two" * 3)  # the oldest: dropped
    assert inner.calls == ["two" * 3]


def test_zero_turns_the_cache_off() -> None:
    inner = Counting()
    assert cached(inner, 0) is inner  # type: ignore[arg-type]
    assert isinstance(cached(inner, 8), CachedTts)  # type: ignore[arg-type]
